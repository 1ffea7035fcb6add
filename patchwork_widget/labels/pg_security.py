"""What the annotator roles of a team journal may do: the privileges of the group role
:data:`GROUP` and the row-level security (issue 16; schema 4, issue 24).

:func:`secure` sets them, idempotently: :func:`.pg_roles.grant_annotator` runs it, and a
schema migration (:func:`.pg_schema.migrate`) runs it again in a database that has the
group, so roles set up under an older schema get the new rules. A member of the group:

- inserts an action, or its cell events, only with
  ``annotator = current_user`` and only in a project it was granted; an event must belong
  to an action of the same annotator (a foreign key); it can neither change nor delete
  actions or events;
- never updates ``patchwork_projects``: it takes a project's turn to write through the
  ``patchwork_lock`` function (granted projects only; see :mod:`.pg_schema`), and action
  ids advance through a trigger, one per inserted action, so it can neither stop others'
  writes nor leave gaps in the ids;
- claims rows only under its own name, and deletes only its own or expired claims;
- writes export records (``patchwork_exports``) only under its own name;
- reads every table, creates a project it was granted (its first open), but does not
  rewrite a project's snapshot (compaction is left to the owner: see docs/team.md).

Roles outside :data:`GROUP` (the owner, or a login shared the way it was before) keep
the access they had.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

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
