"""Connecting to a team journal's PostgreSQL server, and its schema (issue 16).

The schema is created and migrated by the library: ``patchwork_schema`` holds its version
number, and :func:`migrate` applies the missing steps of :data:`MIGRATIONS` in one
transaction under an advisory lock (so two annotators opening at once migrate once).
Credentials come from the URL, the ``PG*`` environment variables or a pgpass file (libpq
reads them); :func:`describe` names a server without them, for messages and logs.
"""

from __future__ import annotations

import json
import logging

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .errors import JournalUnavailableError

log = logging.getLogger(__name__)

#: Version of the schema this library writes; the newest key of :data:`MIGRATIONS`.
SCHEMA_VERSION = 3

#: The NOTIFY channel of every team journal; the payload names project, action and session.
CHANNEL = "patchwork_journal"

#: pg_advisory_xact_lock key held while migrating ("pw" + "schema" as a number).
_MIGRATION_LOCK = 0x7077_5343_4845_4D41

#: Statements that bring the schema from version ``n - 1`` to ``n``.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE patchwork_projects (
            project text PRIMARY KEY,
            last_action bigint NOT NULL DEFAULT 0,
            created double precision NOT NULL
        )""",
        """CREATE TABLE patchwork_snapshots (
            project text PRIMARY KEY REFERENCES patchwork_projects,
            upto_action bigint NOT NULL,
            nrows integer NOT NULL,
            classes text NOT NULL,
            filepath bytea NOT NULL,
            flags bytea NOT NULL,
            labels bytea NOT NULL
        )""",
        """CREATE TABLE patchwork_actions (
            project text NOT NULL REFERENCES patchwork_projects,
            id bigint NOT NULL,
            time double precision NOT NULL,
            kind text NOT NULL,
            detail text,
            seconds double precision,
            undoes bigint,
            annotator text NOT NULL,
            session text NOT NULL,
            PRIMARY KEY (project, id)
        )""",
        """CREATE TABLE patchwork_events (
            project text NOT NULL,
            action bigint NOT NULL,
            seq integer NOT NULL,
            row_index integer NOT NULL,
            field text NOT NULL,
            old double precision,
            new double precision,
            PRIMARY KEY (project, action, seq),
            FOREIGN KEY (project, action) REFERENCES patchwork_actions
        )""",
        """CREATE TABLE patchwork_exports (
            project text NOT NULL REFERENCES patchwork_projects,
            place text NOT NULL,
            record text NOT NULL,
            PRIMARY KEY (project, place)
        )""",
    ],
    2: [
        """CREATE TABLE patchwork_claims (
            project text NOT NULL REFERENCES patchwork_projects,
            row_index integer NOT NULL,
            annotator text NOT NULL,
            session text NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (project, row_index, annotator)
        )""",
    ],
    # each event names its action's annotator, so row-level security can check who
    # writes it (:mod:`.pg_roles`); events written before have none (NULL passes the key)
    3: [
        "ALTER TABLE patchwork_events ADD COLUMN annotator text",
        """ALTER TABLE patchwork_actions ADD CONSTRAINT patchwork_actions_annotator
            UNIQUE (project, id, annotator)""",
        """ALTER TABLE patchwork_events ADD CONSTRAINT patchwork_events_annotator
            FOREIGN KEY (project, action, annotator)
            REFERENCES patchwork_actions (project, id, annotator)""",
        """CREATE TABLE patchwork_members (
            project text NOT NULL,
            annotator text NOT NULL,
            PRIMARY KEY (project, annotator)
        )""",
    ],
}


def describe(url: str) -> str:
    """``url`` without its password (and other options), for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection with synchronous commit on (a commit returns once durable);
    giving up after 10 s unless the URL sets ``connect_timeout``.

    Raises
    ------
    JournalUnavailableError
        When the server cannot be reached or refuses the login.
    """
    options = {} if "connect_timeout" in conninfo_to_dict(url) else {"connect_timeout": 10}
    try:
        conn = psycopg.connect(
            url, autocommit=True, application_name="patchwork_widget", **options
        )
    except psycopg.OperationalError as error:
        raise JournalUnavailableError(
            f"cannot reach the label journal at {describe(url)}: {error}"
        ) from None
    conn.execute("SET synchronous_commit = on")
    return conn


def schema_version(conn: psycopg.Connection) -> int:
    """The schema version in the database (0: none yet)."""
    exists = conn.execute("SELECT to_regclass('patchwork_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM patchwork_schema").fetchone()
    return 0 if row is None else row[0]


def migrate(conn: psycopg.Connection, where: str) -> None:
    """Bring the database's schema to :data:`SCHEMA_VERSION` (nothing to do if it is).

    Raises
    ------
    ValueError
        When the database has a newer schema than this library knows.
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS patchwork_schema "
            "(id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
        )
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"the label journal at {where} has schema version {version}; this version "
                f"of patchwork_widget reads up to {SCHEMA_VERSION}: upgrade patchwork_widget"
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            log.info("label journal at %s: schema migrated to version %d", where, step)
        conn.execute(
            "INSERT INTO patchwork_schema VALUES (1, %s) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )


def notify_payload(project: str, action: int, session: str) -> str:
    """The NOTIFY payload of a committed action."""
    return json.dumps({"project": project, "action": action, "session": session})
