"""Connecting to a team journal's PostgreSQL server, and its schema (issue 16).

The schema is created and migrated by the library: ``patchwork_schema`` holds its version
number, and :func:`migrate` applies the missing steps of :data:`MIGRATIONS` in one
transaction under an advisory lock (so two annotators opening at once migrate once); a
database whose annotator roles were set up (:mod:`.pg_roles`) gets their privileges and
row-level security of the new version (:mod:`.pg_security`) in the same transaction.

Writers take a project's turn through :func:`begin_turn` (the ``patchwork_lock``
function, which checks that the caller may write the project) and action ids advance
only through a trigger on ``patchwork_actions``: no annotator role updates
``patchwork_projects`` itself (schema version 4).
Credentials come from the URL, the ``PG*`` environment variables or a pgpass file (libpq
reads them); :func:`describe` names a server without them, for messages and logs.
"""

from __future__ import annotations

import json
import logging

import psycopg
from psycopg.conninfo import conninfo_to_dict

from psycopg import sql

from .errors import JournalUnavailableError
from .pg_security import secure

log = logging.getLogger(__name__)

#: Version of the schema this library writes; the newest key of :data:`MIGRATIONS`.
SCHEMA_VERSION = 4

#: The application name of the library's connections (followed by the annotator's name).
APPLICATION = "patchwork_widget"

#: The NOTIFY channel of every team journal; the payload names project, action and session.
CHANNEL = "patchwork_journal"

#: pg_advisory_xact_lock key held while migrating ("pw" + "schema" as a number).
_MIGRATION_LOCK = 0x7077_5343_4845_4D41

#: Seconds a writer waits for a project's turn (another writer's transaction) before it
#: gives up with :class:`.errors.ProjectLockedError`; a store's own turn lasts milliseconds.
LOCK_TIMEOUT = 5.0

#: Statements that bring the schema from version ``n - 1`` to ``n``; ``{schema}`` is the
#: schema the tables are in (functions that run as their owner search only it).
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
    # no direct UPDATE of patchwork_projects by annotator roles: a project's turn is taken
    # by patchwork_lock (running as the owner, for the owner's roles and the project's
    # members only) and ids advance by one per inserted action, through a trigger; each
    # action carries its call's idempotency key; an export record names its annotator
    4: [
        """CREATE FUNCTION patchwork_lock(p text) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp
        AS $$
        DECLARE
            last bigint;
        BEGIN
            IF NOT has_table_privilege(session_user, 'patchwork_projects', 'UPDATE')
               AND NOT EXISTS (SELECT 1 FROM patchwork_members m
                               WHERE m.project = p AND m.annotator = session_user) THEN
                RAISE EXCEPTION 'role % may not write project %', session_user, p
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            SELECT last_action INTO last FROM patchwork_projects WHERE project = p FOR UPDATE;
            RETURN last;
        END
        $$""",
        """CREATE FUNCTION patchwork_count_action() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp
        AS $$
        BEGIN
            UPDATE patchwork_projects SET last_action = NEW.id
            WHERE project = NEW.project AND last_action = NEW.id - 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'action % of project % does not follow its newest action',
                    NEW.id, NEW.project USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END
        $$""",
        """CREATE TRIGGER patchwork_count_action BEFORE INSERT ON patchwork_actions
        FOR EACH ROW EXECUTE FUNCTION patchwork_count_action()""",
        "ALTER TABLE patchwork_actions ADD COLUMN key text",
        """ALTER TABLE patchwork_actions ADD CONSTRAINT patchwork_actions_key
            UNIQUE (project, key)""",
        "ALTER TABLE patchwork_exports ADD COLUMN annotator text NOT NULL DEFAULT ''",
        "ALTER TABLE patchwork_exports ALTER COLUMN annotator DROP DEFAULT",
        "ALTER TABLE patchwork_exports DROP CONSTRAINT patchwork_exports_pkey",
        "ALTER TABLE patchwork_exports ADD PRIMARY KEY (project, place, annotator)",
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


def connect(url: str, annotator: str | None = None) -> psycopg.Connection:
    """An autocommit connection with synchronous commit on (a commit returns once durable);
    giving up after 10 s unless the URL sets ``connect_timeout``. Its application name
    names ``annotator``, if given (see :func:`lock_holder`).

    Raises
    ------
    JournalUnavailableError
        When the server cannot be reached or refuses the login.
    """
    options = {} if "connect_timeout" in conninfo_to_dict(url) else {"connect_timeout": 10}
    try:
        conn = psycopg.connect(
            url, autocommit=True, application_name=application_name(annotator), **options
        )
    except psycopg.OperationalError as error:
        raise JournalUnavailableError(
            f"cannot reach the label journal at {describe(url)}: {error}"
        ) from None
    conn.execute("SET synchronous_commit = on")
    return conn


def application_name(annotator: str | None) -> str:
    """The application name of a connection of ``annotator`` (the server keeps 63 bytes)."""
    return APPLICATION if annotator is None else f"{APPLICATION} {annotator}"


def lock_holder(conn: psycopg.Connection) -> str:
    """Who holds a project's row lock, as far as the server shows it: the oldest other
    transaction that locked rows of ``patchwork_projects`` (the annotator its application
    name gives, its role and server process, and since when where this role may see it),
    or "another session"."""
    row = conn.execute(
        "SELECT a.application_name, a.usename, a.pid, "
        "to_char(a.xact_start AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'relation' "
        "AND l.relation = to_regclass('patchwork_projects') AND l.granted "
        "AND l.mode <> 'AccessShareLock' AND l.pid <> pg_backend_pid() "
        "ORDER BY a.xact_start LIMIT 1"
    ).fetchone()
    if row is None:
        return "another session"
    app, role, pid, since = row
    details = [f"role {role!r}", f"server process {pid}"]
    if since is not None:
        details.append(f"in a transaction since {since} UTC")
    prefix = APPLICATION + " "
    if app.startswith(prefix):
        return f"annotator {app[len(prefix):]!r} ({', '.join(details)})"
    return f"role {role!r} ({', '.join(details[1:])})"


def begin_turn(conn: psycopg.Connection, project: str) -> psycopg.Cursor:
    """Begin a transaction holding ``project``'s turn to write (its row lock, waited for
    at most :data:`LOCK_TIMEOUT` seconds); the cursor's row is the project's newest action
    id. Runs ``patchwork_lock``, which refuses (``insufficient_privilege``) a role that may
    not write the project; pipelines with the caller's next statements."""
    conn.execute("BEGIN")
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{LOCK_TIMEOUT * 1000:.0f}ms",))
    return conn.execute("SELECT patchwork_lock(%s)", (project,))


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
    PermissionError
        When the schema is older and this role may not change it (an annotator role:
        the database's owner upgrades it by opening a project once).
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return
    try:
        with conn.transaction():
            _migrate(conn, where)
    except psycopg.errors.InsufficientPrivilege as error:
        raise PermissionError(
            f"the label journal at {where} has schema version {schema_version(conn)} and "
            f"this version of patchwork_widget needs {SCHEMA_VERSION}, which this role may "
            f"not create ({error.diag.message_primary}): the database's owner upgrades it by "
            "opening a project once (or running grant_annotator)"
        ) from None


def _migrate(conn: psycopg.Connection, where: str) -> None:
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
    if version == SCHEMA_VERSION:  # another annotator migrated it meanwhile
        return
    schema = sql.Identifier(conn.execute("SELECT current_schema()").fetchone()[0])
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[step]:
            conn.execute(sql.SQL(statement).format(schema=schema))
        log.info("label journal at %s: schema migrated to version %d", where, step)
    conn.execute(
        "INSERT INTO patchwork_schema VALUES (1, %s) "
        "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        (SCHEMA_VERSION,),
    )
    if secure(conn, create=False):
        log.info("label journal at %s: annotator roles' privileges renewed", where)


def notify_payload(project: str, action: int, session: str) -> str:
    """The NOTIFY payload of a committed action."""
    return json.dumps({"project": project, "action": action, "session": session})
