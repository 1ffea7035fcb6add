"""Per-annotator database roles: an annotator writes annotations only under their own name
(issue 16, security).

An administrator (the owner of the tables, with the right to create roles) runs
:func:`grant_annotator` once per annotator and project. It creates the login role named
after the annotator (with a password, if given), makes it a member of the group role
:data:`.pg_security.GROUP` and of the project, and, the first time, turns on the
row-level security that keeps each annotator to their own name and granted projects (see
:mod:`.pg_security`).

Passwords go to the server only; nothing here logs them.
"""

from __future__ import annotations

import logging

from psycopg import sql

from .pg_schema import connect, describe, migrate
from .pg_security import GROUP, secure

log = logging.getLogger(__name__)


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
