"""The PostgreSQL journal behind a team LabelStore (issue 16).

Several annotators' stores write one project at once. The tables (see :mod:`.pg_schema`)
mirror the SQLite journal's (snapshot, actions, events), each row keyed by project, and
every action names its annotator. Action ids are numbered per project without gaps, in
commit order: a writer first locks its project's row (``SELECT ... FOR UPDATE``), so
writers take turns, and each one sees every earlier action before it validates its own
change (:meth:`PgJournal.writing` hands them to the store). An action is acknowledged only
after its transaction committed with ``synchronous_commit`` on; the commit also sends a
NOTIFY that other stores' :class:`.listener.Listener` hear.

Exactly once: every action carries its call's idempotency key (session id + sequence,
unique per project). When the connection is lost after the COMMIT was sent, the outcome
is looked up by that key under the project's lock (so the lost transaction has ended):
a committed call is acknowledged as usual, one that was not is reported as not saved,
and while the server cannot be asked the call fails with :class:`OutcomeUnknownError`
("may already be saved"); the next call settles it first, and a retry of a call that
did commit is then acknowledged without being written again.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from . import pg_claims, pg_schema
from .errors import JournalUnavailableError, OutcomeUnknownError, ProjectLockedError
from .listener import Listener
from .pg_schema import (
    CHANNEL,
    begin_turn,
    connect,
    describe,
    lock_holder,
    migrate,
    notify_payload,
)
from .records import CLASS_EDITS, Change, Event, decode_snapshot, encode_snapshot

log = logging.getLogger(__name__)

#: One statement writes an action (a trigger advances the project's ``last_action``), its
#: events and its notification (sent at commit).
_APPEND = """
WITH action AS (
    INSERT INTO patchwork_actions (project, id, time, kind, detail, seconds, undoes,
        annotator, session, key)
    VALUES (%(project)s, %(id)s, %(time)s, %(kind)s, %(detail)s, %(seconds)s, %(undoes)s,
        %(annotator)s, %(session)s, %(key)s)
), events AS (
    INSERT INTO patchwork_events (project, action, seq, row_index, field, old, new, annotator)
    SELECT %(project)s, %(id)s, e.seq - 1, e.row_index, e.field, e.old, e.new, %(annotator)s
    FROM unnest(%(rows)s::integer[], %(fields)s::text[], %(old)s::float8[],
                %(new)s::float8[]) WITH ORDINALITY AS e (row_index, field, old, new, seq)
)
SELECT pg_notify(%(channel)s, %(note)s)
"""

#: The action written with an idempotency key, if any.
_FIND_KEY = "SELECT id FROM patchwork_actions WHERE project=%s AND key=%s"


@dataclass(frozen=True)
class _Call:
    """A call whose action was sent for commit: its key, id and what it wrote."""

    key: str
    action: int
    fingerprint: str


class PgJournal:
    """One project of a team journal on a PostgreSQL server (a
    :class:`~.backend.JournalBackend`).

    Parameters
    ----------
    url
        ``postgresql://[user[:password]@]host[:port]/dbname``; a password may also come
        from ``PGPASSWORD`` or a pgpass file.
    project
        The project's name (one database holds many).
    user
        The annotator, recorded on every action written through this object.
    session
        Recorded on every action; notifications from it are not this store's news.
    export_path
        The store's export file (its export record is kept per host, path and annotator).

    Raises
    ------
    JournalUnavailableError
        When the server cannot be reached.
    """

    where: str
    name: str
    shared: bool
    user: str
    session: str

    def __init__(
        self, url: str, project: str, user: str, session: str, export_path: Path
    ) -> None:
        self.where = f"{describe(url)} project {project!r}"  # for messages
        self.name = f"project {project!r}"
        self.shared = True  # several stores write the project at once
        self.user = user
        self.session = session
        self.project = project
        self._url = url
        self._place = f"{socket.gethostname()}:{os.path.abspath(export_path)}"
        self._conn: psycopg.Connection | None = None
        self._next: int | None = None  # the id of the action being written
        self._staged: tuple[str, dict] | None = None  # its statement, until the commit
        self._call: _Call | None = None  # the staged action's call
        self._calls = itertools.count(1)  # the sequence of the idempotency keys
        self._doubt: _Call | None = None  # a call whose commit was not confirmed
        self._retry: _Call | None = None  # such a call, found committed: not written again
        self._listener: Listener | None = None
        with self._unavailable_as_error():
            migrate(self._connection(), self.where)

    # -- connection ----------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        """The connection, opened again if the server dropped it."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self._url, self.user)
        return self._conn

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        """Raise a lost connection as :class:`JournalUnavailableError` (nothing committed:
        a loss after the COMMIT was sent is settled in :meth:`writing`), a lock timeout as
        :class:`ProjectLockedError` naming the holder, and a refusal of the server's
        row-level security as ``PermissionError``."""
        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise ProjectLockedError(
                f"the label journal at {self.where} is locked by {self._holder()}, which "
                f"held the project's turn to write for over {pg_schema.LOCK_TIMEOUT:g} s; "
                "nothing was saved; try again"
            ) from None
        except psycopg.errors.InsufficientPrivilege as error:
            raise PermissionError(
                f"the label journal at {self.where} refused {self.user!r}: "
                f"{error.diag.message_primary}; an annotator's database role writes only "
                "under its own name (annotator=<role>) in the projects granted to it "
                "(see grant_annotator in docs/team.md)"
            ) from None
        except psycopg.OperationalError as error:
            raise JournalUnavailableError(
                f"the label journal at {self.where} is unreachable; nothing was saved: "
                f"{type(error).__name__}: {error}"
            ) from None

    def _fetch(self, query: str, params: tuple = ()) -> list[tuple]:
        with self._unavailable_as_error():
            return self._connection().execute(query, params).fetchall()

    # -- the journal interface -----------------------------------------------------------

    def initialised(self) -> bool:
        """Whether the project exists (creating it is one transaction)."""
        return bool(
            self._fetch("SELECT 1 FROM patchwork_snapshots WHERE project=%s", (self.project,))
        )

    def create(self, df: pd.DataFrame) -> bool:
        """Create the project with ``df`` as its base snapshot, unless another annotator
        just did; return whether this call created it."""
        with self._unavailable_as_error():
            conn = self._connection()
            with conn.transaction():
                created = conn.execute(
                    "INSERT INTO patchwork_projects (project, created) VALUES (%s, %s) "
                    "ON CONFLICT (project) DO NOTHING RETURNING project",
                    (self.project, time.time()),
                ).fetchone()
                if created is None:
                    return False
                conn.execute(
                    "INSERT INTO patchwork_snapshots VALUES (%s, 0, %s, %s, %s, %s, %s)",
                    (self.project, *encode_snapshot(df)),
                )
        return True

    def load_snapshot(self) -> tuple[pd.DataFrame, int]:
        """Return the snapshot table and the id of the last action folded into it."""
        upto, *blobs = self._fetch(
            "SELECT upto_action, nrows, classes, filepath, flags, labels "
            "FROM patchwork_snapshots WHERE project=%s",
            (self.project,),
        )[0]
        return decode_snapshot(*blobs), upto

    def write_snapshot(self, df: pd.DataFrame, upto_action: int, applied: int) -> bool:
        """Replace the snapshot with ``df`` if it holds all the project's actions, the
        newest being ``upto_action``; return whether the snapshot now covers them.

        The store applies every project's action in order, so holding the newest means
        holding all (``applied`` is not needed here); another store may have written
        the snapshot already. An annotator role (:mod:`.pg_security`) may not rewrite the
        snapshot, and another session may hold the project's turn past the lock timeout:
        then nothing is written (False); compaction is only an optimisation.
        """
        try:
            return self._replace_snapshot(df, upto_action)
        except (PermissionError, ProjectLockedError) as error:
            log.info("not compacting: %s", error)
            return False

    def _replace_snapshot(self, df: pd.DataFrame, upto_action: int) -> bool:
        with self._unavailable_as_error():
            conn = self._connection()
            try:
                with conn.pipeline():
                    turn = begin_turn(conn, self.project)
                    snapshot = conn.execute(
                        "SELECT upto_action FROM patchwork_snapshots WHERE project=%s",
                        (self.project,),
                    )
                (last,), (upto,) = turn.fetchone(), snapshot.fetchone()
                if last != upto_action:  # actions (in order) ``df`` does not hold
                    conn.execute("ROLLBACK")
                    return False
                if upto >= upto_action:  # another store's snapshot already covers them
                    conn.execute("ROLLBACK")
                    return True
                conn.execute(
                    "UPDATE patchwork_snapshots SET upto_action=%s, nrows=%s, classes=%s, "
                    "filepath=%s, flags=%s, labels=%s WHERE project=%s",
                    (upto_action, *encode_snapshot(df), self.project),
                )
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        return True

    def writing(self, after: int) -> AbstractContextManager[list[Change] | None]:
        """Take the project's turn to write, for one :meth:`append`.

        Yields the actions other stores committed after ``after`` (see
        :meth:`changes_after`), or None if there are none; the store applies them before
        validating its change. When the block ends the appended action is written and
        committed (durably) in one round trip; if the block raises, the transaction rolls
        back. A call whose commit was not confirmed before is settled first (see the
        module's docstring).

        Raises
        ------
        ProjectLockedError
            When another session holds the turn for over ``pg_schema.LOCK_TIMEOUT`` s.
        OutcomeUnknownError
            When the connection was lost after the COMMIT was sent and the server cannot
            be asked whether it committed.
        """
        return self._turn(after)

    @contextmanager
    def _turn(self, after: int) -> Iterator[list[Change] | None]:
        """:meth:`writing`'s context: the project's row locked, then the commit."""
        with self._unavailable_as_error():
            conn = self._connection()
            try:
                with conn.pipeline():
                    turn = begin_turn(conn, self.project)
                    doubt = self._doubt
                    found = None if doubt is None else conn.execute(
                        _FIND_KEY, (self.project, doubt.key))
                last = turn.fetchone()[0]
                if doubt is not None:
                    self._settled(doubt, found.fetchone())
                self._next, self._staged, self._call = last + 1, None, None
                yield self.changes_after(after) if last > after else None
                self._commit(conn)
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                self._next = self._staged = self._call = None

    def _commit(self, conn: psycopg.Connection) -> None:
        """Write the staged action and COMMIT; if the connection is lost meanwhile, find
        out whether the server committed (returning if it did). With nothing staged (a
        retry of a saved call) the transaction only ends."""
        if self._staged is None:
            self._rollback(conn)
            return
        try:
            with conn.pipeline():
                conn.execute(*self._staged)
                conn.execute("COMMIT")
        except psycopg.OperationalError as error:
            self._rollback(conn)
            self._doubt = self._call
            log.warning("the commit of action %d to %s was not confirmed (%s); asking the "
                        "server", self._call.action, self.where, type(error).__name__)
            if not self._settle():
                raise

    def _settle(self) -> bool:
        """Whether the call in doubt committed, asked under the project's lock (taken once
        the lost transaction ended).

        Raises
        ------
        OutcomeUnknownError
            When the server cannot be asked now (the doubt stays, for the next call).
        """
        doubt = self._doubt
        try:
            conn = self._connection()
            with conn.pipeline():
                begin_turn(conn, self.project)
                found = conn.execute(_FIND_KEY, (self.project, doubt.key))
            row = found.fetchone()
            conn.execute("ROLLBACK")
        except (psycopg.OperationalError, JournalUnavailableError) as error:
            if self._conn is not None:
                self._rollback(self._conn)
            raise OutcomeUnknownError(
                f"the label journal at {self.where} lost the connection after the change "
                f"was sent for commit, and cannot be asked now ({type(error).__name__}): it "
                "may already be saved; the next change checks, and doing this change again "
                "never saves it twice"
            ) from None
        return self._settled(doubt, row)

    def _settled(self, doubt: _Call, found: tuple | None) -> bool:
        """Note whether the call in ``doubt`` committed (``found``: its action's row)."""
        self._doubt = None
        if found is None:
            log.info("the change sent as action %d to %s was not saved", doubt.action,
                     self.where)
            return False
        self._retry = _Call(doubt.key, found[0], doubt.fingerprint)
        log.info("the change sent as action %d to %s was saved", found[0], self.where)
        return True

    @staticmethod
    def _rollback(conn: psycopg.Connection) -> None:
        """End the transaction of ``conn``, if it is still usable."""
        if not (conn.closed or conn.broken):
            try:
                conn.execute("ROLLBACK")
            except psycopg.OperationalError:
                pass  # lost now: the server rolls back by itself

    def _holder(self) -> str:
        """Who holds the project's turn (see :func:`.pg_schema.lock_holder`)."""
        try:
            return lock_holder(self._connection())
        except (psycopg.Error, JournalUnavailableError):
            return "another session"

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` (on a listener thread) when another store commits."""
        self._listener = Listener(self._url, self.project, self.session, on_change)

    def unwatch(self) -> None:
        """Stop calling the :meth:`watch` function; idempotent."""
        if self._listener is not None:
            self._listener.stop()

    def append(
        self,
        kind: str,
        events: Iterable[Event],
        seconds: float | None = None,
        detail: dict | None = None,
        undoes: int | None = None,
    ) -> int:
        """Stage one action and its cell events inside :meth:`writing` (which writes and
        commits them as it ends, with a new idempotency key); return the action's id.

        The retry of a call whose commit was in doubt and turned out saved (the same kind,
        cells, values, detail and undone action, the next call after it) stages nothing
        and returns the saved action's id.
        """
        if self._next is None:
            raise RuntimeError("PgJournal.append is called once inside PgJournal.writing()")
        action, self._next = self._next, None
        events = list(events)
        rows, fields, old, new = (list(c) for c in zip(*events)) if events else ([],) * 4
        detail = None if detail is None else json.dumps(detail)
        fingerprint = json.dumps([kind, rows, fields, new, detail, undoes])
        retry, self._retry = self._retry, None
        if retry is not None and retry.fingerprint == fingerprint:
            log.info("action %d of %s is saved already: not written again", retry.action,
                     self.where)
            return retry.action
        key = f"{self.session}:{next(self._calls)}"
        self._call = _Call(key, action, fingerprint)
        self._staged = (
            _APPEND,
            {
                "project": self.project, "id": action, "time": time.time(), "kind": kind,
                "detail": detail, "seconds": seconds, "undoes": undoes,
                "annotator": self.user, "session": self.session, "key": key, "rows": rows,
                "fields": fields, "old": old, "new": new, "channel": CHANNEL,
                "note": notify_payload(self.project, action, self.session),
            },
        )
        return action

    def record_export(self, upto_action: int, size: int, mtime_ns: int) -> None:
        """Note that this store's export file holds the table after ``upto_action``."""
        record = {"upto": upto_action, "size": size, "mtime_ns": mtime_ns, "time": time.time()}
        with self._unavailable_as_error():
            self._connection().execute(
                "INSERT INTO patchwork_exports (project, place, annotator, record) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (project, place, annotator) "
                "DO UPDATE SET record = excluded.record",
                (self.project, self._place, self.user, json.dumps(record)),
            )

    def export_record(self) -> dict | None:
        """The last :meth:`record_export` of this host's export file by this annotator."""
        rows = self._fetch(
            "SELECT record FROM patchwork_exports WHERE project=%s AND place=%s "
            "AND annotator=%s",
            (self.project, self._place, self.user),
        )
        return json.loads(rows[0][0]) if rows else None

    def first_action_time(self, after: int) -> float | None:
        """The time of the oldest action with id > ``after`` (None if there is none)."""
        return self._fetch(
            "SELECT min(time) FROM patchwork_actions WHERE project=%s AND id > %s",
            (self.project, after),
        )[0][0]

    def pending(self, after: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Actions with id > ``after`` (``id``, ``kind``, ``detail``, ``user``) and their
        events (``action``, ``row``, ``field``, ``new``), both in order."""
        actions = pd.DataFrame(
            self._fetch(
                "SELECT id, kind, detail, annotator FROM patchwork_actions "
                "WHERE project=%s AND id > %s ORDER BY id",
                (self.project, after),
            ),
            columns=["id", "kind", "detail", "user"],
        )
        upto = int(actions["id"].iloc[-1]) if len(actions) else after
        events = pd.DataFrame(
            self._fetch(
                "SELECT action, row_index, field, new FROM patchwork_events "
                "WHERE project=%s AND action > %s AND action <= %s ORDER BY action, seq",
                (self.project, after, upto),
            ),
            columns=["action", "row", "field", "new"],
        )
        events["new"] = events["new"].astype(float)
        return actions, events

    def changes_after(self, after: int) -> list[Change]:
        """The actions with id > ``after`` as :class:`Change` objects, in order (one
        round trip: what other stores' commits cost this one)."""
        rows = self._fetch(
            "SELECT a.id, a.kind, a.detail, a.annotator, "
            "coalesce(array_agg(e.row_index ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL "
            "AND a.kind <> ALL(%s)), '{}'), "
            "coalesce(array_agg(e.field ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL "
            "AND a.kind <> ALL(%s)), '{}'), "
            "coalesce(array_agg(e.new ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL "
            "AND a.kind <> ALL(%s)), '{}') "
            "FROM patchwork_actions a LEFT JOIN patchwork_events e "
            "ON e.project = a.project AND e.action = a.id "
            "WHERE a.project = %s AND a.id > %s GROUP BY a.project, a.id ORDER BY a.id",
            (*[list(CLASS_EDITS)] * 3, self.project, after),
        )
        return [Change(*row) for row in rows]

    def action_events(self, action: int) -> list[Event]:
        """The cell events of one action, in order."""
        return self._fetch(
            "SELECT row_index, field, old, new FROM patchwork_events "
            "WHERE project=%s AND action=%s ORDER BY seq",
            (self.project, action),
        )

    def last_action(self) -> int:
        """The id of the project's newest action, 0 if none."""
        return self._fetch(
            "SELECT last_action FROM patchwork_projects WHERE project=%s", (self.project,)
        )[0][0]

    def details(self, kind: str) -> list[dict]:
        """The details of the project's actions of ``kind``, oldest first."""
        rows = self._fetch(
            "SELECT detail FROM patchwork_actions WHERE project=%s AND kind=%s ORDER BY id",
            (self.project, kind),
        )
        return [json.loads(r[0]) for r in rows]

    def undo_stack(self) -> list[int]:
        """This annotator's annotate actions after the project's last class edit that are
        not undone, oldest first."""
        rows = self._fetch(
            "SELECT id FROM patchwork_actions a WHERE project=%s AND kind='annotate' "
            "AND annotator=%s AND id > (SELECT coalesce(max(id), 0) FROM patchwork_actions "
            "WHERE project=%s AND kind = ANY(%s)) AND NOT EXISTS (SELECT 1 FROM "
            "patchwork_actions u WHERE u.project=a.project AND u.undoes=a.id) ORDER BY id",
            (self.project, self.user, self.project, list(CLASS_EDITS)),
        )
        return [r[0] for r in rows]

    def read_history(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """All the project's actions and events (the annotator as ``user``)."""
        actions = pd.DataFrame(
            self._fetch(
                "SELECT id, time, kind, detail, seconds, undoes, annotator, session "
                "FROM patchwork_actions WHERE project=%s ORDER BY id",
                (self.project,),
            ),
            columns=["action", "time", "kind", "detail", "seconds", "undoes", "user", "session"],
        )
        events = pd.DataFrame(
            self._fetch(
                "SELECT seq, action, row_index, field, old, new FROM patchwork_events "
                "WHERE project=%s ORDER BY action, seq",
                (self.project,),
            ),
            columns=["seq", "action", "row", "field", "old", "new"],
        )
        return actions, events

    def claim(self, candidates: list[int], n: int, lease: float, overlap: float) -> list[int]:
        """Claim up to ``n`` of ``candidates`` for this annotator (see :mod:`.pg_claims`)."""
        with self._unavailable_as_error():
            return pg_claims.claim(self._connection(), self.project, self.user, self.session,
                                   candidates, n, lease, overlap)

    def release(self, rows: list[int]) -> None:
        """Give up this session's claims on ``rows`` (see :mod:`.pg_claims`)."""
        with self._unavailable_as_error():
            pg_claims.release(self._connection(), self.project, self.session, rows)

    def close(self) -> None:
        """Stop listening, give up this session's claims and close the connection."""
        self.unwatch()
        if self._conn is not None:
            if not (self._conn.closed or self._conn.broken):
                try:
                    pg_claims.release(self._conn, self.project, self.session)
                except psycopg.OperationalError as error:
                    log.info("claims of %s not released (%s); they expire with their lease",
                             self.where, type(error).__name__)
            self._conn.close()
