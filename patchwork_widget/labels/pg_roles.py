"""Per-annotator database roles: an annotator writes annotations only under their own name
(issue 16, security).

An administrator (the owner of the tables, with the right to create roles) runs
:func:`grant_annotator` once per annotator and project. It creates the login role named
after the annotator (with a password, if given), makes it a member of the group role
:data:`GROUP` and of the project, and, the first time, turns on row-level security:

- a member of :data:`GROUP` may insert an action, or its cell events, only with
  ``annotator = current_user`` and only in a project it was granted; an event must belong
  to an action of the same annotator (a foreign key); it can neither change nor delete
  actions or events;
- it never updates ``patchwork_projects``: it takes a project's turn to write through the
  ``patchwork_lock`` function (granted projects only; see :mod:`.pg_schema`), and action
  ids advance through a trigger, one per inserted action, so it can neither stop others'
  writes nor leave gaps in the ids;
- it claims rows only under its own name, and deletes only its own or expired claims;
- it writes export records (``patchwork_exports``) only under its own name;
- it reads every table, creates a project it was granted (its first open), but does not
  rewrite a project's snapshot (compaction is left to the owner: see docs/team.md).

Roles outside :data:`GROUP` (the owner, or a login shared the way it was before) keep
the access they had. Passwords go to the server only; nothing here logs them.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from .pg_schema import connect, describe, migrate

log = logging.getLogger(__name__)

#: The group role of every annotator role.
GROUP = "patchwork_annotator"

_IS_ANNOTATOR = f"pg_has_role(current_user, '{GROUP}', 'MEMBER')"
_MEMBER = ("EXISTS (SELECT 1 FROM patchwork_members m WHERE m.project = {table}.project "
           "AND m.annotator = current_user)")
_OWN = "annotator = current_user AND " + _MEMBER

#: The tables under row-level security, and what a member of :data:`GROUP` may insert.
_INSERTS = {
    "patchwork_projects": _MEMBER,
    "patchwork_snapshots": _MEMBER,
    "patchwork_actions": _OWN,
    "patchwork_events": _OWN,
    "patchwork_claims": _OWN,
    "patchwork_exports": _OWN,
}

#: (table, policy name, command, USING, WITH CHECK) of the row-level security.
_POLICIES = [
    *[
        (table, name, command, using, check and check.format(table=table))
        for table, insert in _INSERTS.items()
        for name, command, using, check in [
            ("patchwork_read", "SELECT", "true", None),
            ("patchwork_others", "ALL", f"NOT {_IS_ANNOTATOR}", f"NOT {_IS_ANNOTATOR}"),
            ("patchwork_own", "INSERT", None, insert),
        ]
    ],
    ("patchwork_claims", "patchwork_own_update", "UPDATE", "annotator = current_user",
     "annotator = current_user"),
    ("patchwork_claims", "patchwork_own_delete", "DELETE",
     "annotator = current_user OR expires < extract(epoch FROM clock_timestamp())", None),
    ("patchwork_exports", "patchwork_own_update", "UPDATE", "annotator = current_user",
     _OWN.format(table="patchwork_exports")),
]

#: What :data:`GROUP` may do per table (row-level security narrows the rows); anything
#: else is revoked, e.g. the UPDATE of ``patchwork_projects`` that schema 3 granted.
_PRIVILEGES = {
    "patchwork_schema": "SELECT",
    "patchwork_members": "SELECT",
    "patchwork_projects": "SELECT, INSERT (project, created)",
    "patchwork_snapshots": "SELECT, INSERT",
    "patchwork_actions": "SELECT, INSERT",
    "patchwork_events": "SELECT, INSERT",
    "patchwork_exports": "SELECT, INSERT, UPDATE",
    "patchwork_claims": "SELECT, INSERT, UPDATE, DELETE",
}


def grant_annotator(url: str, project: str, annotator: str, password: str | None = None) -> None:
    """Let ``annotator`` label ``project``, writing only under their own name.

    Parameters
    ----------
    url
        The database, as its owner (an administrator who may create roles).
    project
        The project to grant (it need not exist yet).
    annotator
        The annotator's name: also the name of their login role, so they connect as
        ``postgresql://<annotator>:<password>@host/db`` and open stores with
        ``annotator=<annotator>``.
    password
        The role's password (set or changed); None leaves it as it is (or none: e.g.
        for certificate or peer logins).

    Raises
    ------
    ValueError
        For an empty name, project or password.
    JournalUnavailableError
        When the server cannot be reached.
    """
    for name, value in (("project", project), ("annotator", annotator)):
        if not (isinstance(value, str) and value.strip()):
            raise ValueError(f"{name} must be a non-empty name; got {value!r}")
    if password is not None and not (isinstance(password, str) and password):
        raise ValueError("password must be a non-empty string or None")
    where = describe(url)
    with connect(url) as conn:
        migrate(conn, where)
        with conn.transaction():
            secure(conn)
            role = sql.Identifier(annotator)
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (annotator,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            if password is not None:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    role, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(GROUP), role))
            conn.execute("INSERT INTO patchwork_members VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (project, annotator))
    log.info("annotator %r may label project %r at %s", annotator, project, where)


def revoke_annotator(url: str, project: str, annotator: str) -> None:
    """Stop ``annotator`` from writing to ``project`` (their role and history stay)."""
    with connect(url) as conn:
        conn.execute("DELETE FROM patchwork_members WHERE project = %s AND annotator = %s",
                     (project, annotator))
    log.info("annotator %r may no longer label project %r at %s", annotator, project,
             describe(url))


def secure(conn: psycopg.Connection, create: bool = True) -> bool:
    """Give :data:`GROUP` its privileges and turn on the row-level security (idempotent;
    run inside the caller's transaction). With ``create=False`` (a schema migration) a
    database without the group is left alone; return whether the group exists now."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (GROUP,)).fetchone()
    if not exists:
        if not create:
            return False
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
    group = sql.Identifier(GROUP)
    for table, privileges in _PRIVILEGES.items():
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), group))
        conn.execute(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(
            sql.Identifier(table), group))
    for table in _INSERTS:
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(
            sql.Identifier(table)))
    for table, name, command, using, check in _POLICIES:
        conn.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
            sql.Identifier(name), sql.Identifier(table)))
        statement = f"CREATE POLICY {{}} ON {{}} FOR {command}"
        statement += f" USING ({using})" if using else ""
        statement += f" WITH CHECK ({check})" if check else ""
        conn.execute(sql.SQL(statement).format(sql.Identifier(name), sql.Identifier(table)))
    return True
