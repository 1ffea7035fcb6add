"""The SQLite journal behind a LabelStore (FEATURES L4).

One SQLite file (WAL mode, ``synchronous=FULL``) holds:

- ``snapshot``: one row, the whole table as it stood after action ``upto_action``, as an
  Arrow IPC stream (:func:`~.records.encode_table`: read back without copying the paths);
- ``actions``: one row per store call (annotate, undo, class edit), append-only, with
  time, user, session, seconds on screen, JSON arguments and the action it undoes;
- ``events``: one row per changed cell (row, field, old, new), append-only.

The table is the snapshot plus the actions after it, replayed in order. Compaction
rewrites the snapshot; actions and events are never deleted, so history is complete.

Format 2 (this one) stores the snapshot as Arrow; format 1 stored it as three blobs (paths
NUL-separated, flags uint8, labels int8). A writer opening a format-1 journal migrates it
in one transaction (:meth:`Journal.load_snapshot`); a reader decodes it as it is.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from patchwork_widget.options.checks import check_path

from .errors import JournalAccessError, journal_error
from .records import (
    CLASS_EDITS,
    Change,
    Event,
    changes_from_frames,
    decode_snapshot,
    decode_table,
    encode_table,
    stream_size,
    write_stream,
)

#: The journal format this version writes; :data:`READABLE_FORMATS` are the ones it opens.
FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", FORMAT_VERSION)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _named_errors(method: F) -> F:
    """Raise SQLite's errors about the file (full disk, damaged file, no access) as the
    named :class:`~.errors.JournalError` that says where and what to do."""

    @functools.wraps(method)
    def wrapper(self: "Journal", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            named = journal_error(self.path, error)
            if named is None:
                raise
            raise named from error

    return wrapper  # type: ignore[return-value]

_SNAPSHOT_TABLE = """
CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto_action INTEGER NOT NULL,
    nrows INTEGER NOT NULL,
    classes TEXT NOT NULL,
    arrow BLOB NOT NULL
)"""

_SCHEMA = _SNAPSHOT_TABLE + """;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT,
    seconds REAL,
    undoes INTEGER,
    user TEXT NOT NULL,
    session TEXT NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    action INTEGER NOT NULL REFERENCES actions (id),
    row INTEGER NOT NULL,
    field TEXT NOT NULL,
    old REAL,
    new REAL
);
CREATE INDEX events_by_action ON events (action);
"""


class _BlobWriter(io.RawIOBase):
    """A sqlite3 blob (of a fixed size) as a writable binary stream."""

    def __init__(self, blob: sqlite3.Blob) -> None:
        self._blob = blob

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._blob.write(data)
        return memoryview(data).nbytes


def _put_snapshot(db: sqlite3.Connection, df: pd.DataFrame, upto_action: int) -> None:
    """Set the snapshot row to ``df`` after ``upto_action`` (inside a transaction): the
    Arrow stream is written straight into the blob, without a copy of it in memory."""
    nrows, classes, table = encode_table(df)
    db.execute(
        "UPDATE snapshot SET upto_action=?, nrows=?, classes=?, arrow=zeroblob(?) WHERE id=1",
        (upto_action, nrows, classes, stream_size(table)),
    )
    with db.blobopen("snapshot", "arrow", 1) as blob:
        write_stream(table, _BlobWriter(blob))


def journal_path(export_path: str | os.PathLike) -> Path:
    """The journal beside an export file: ``labels.csv`` -> ``labels.csv.journal.sqlite``."""
    path = Path(check_path("export_path", export_path))
    return path.with_name(path.name + ".journal.sqlite")


class Journal:
    """Append-only SQLite journal of one label table (one writer: see :mod:`.lock`).

    A :class:`~.backend.JournalBackend` (see :mod:`.pg_journal` for PostgreSQL).

    Parameters
    ----------
    path
        The SQLite file.
    user, session
        Recorded on every action written through this object.
    read_only
        Open an existing file for reading only (never creating it).

    Raises
    ------
    FileNotFoundError
        With ``read_only`` when the file does not exist.
    """

    where: str
    name: str
    shared: bool
    user: str
    session: str

    def __init__(
        self, path: str | os.PathLike, user: str, session: str, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.where = str(self.path)  # for messages: in full, and short
        self.name = self.path.name
        self.shared = False  # one writer (several writers: a team journal)
        self.user = user
        self.session = session
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"no label journal at {str(self.path)!r}")
            self._db = self._open_read_only()
        else:
            self._db = self._open_writer()

    @_named_errors
    def _open_writer(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            db.close()
            raise
        return db

    @_named_errors
    def _open_read_only(self) -> sqlite3.Connection:
        """A read-only connection (``mode=ro``); on read-only media, where SQLite cannot
        create the WAL index beside the file, an ``immutable=1`` one, which reads the
        file as it is without locking it."""
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as error:
            db.close()
            if not isinstance(journal_error(self.path, error), JournalAccessError):
                raise
            cause = error
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise JournalAccessError(
                self.path, f"{cause}; its folder is read-only and {wal.name} holds changes "
                "not yet in the file, which a reader could not see"
            )
        log.info("%s: read-only folder or media (%s); reading the file as immutable",
                 self.path, cause)
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None,
                             check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db

    @_named_errors
    def initialised(self) -> bool:
        """Whether the file holds a complete journal (creation is one transaction)."""
        row = self._db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='snapshot'"
        ).fetchone()
        return bool(row[0])

    @_named_errors
    def create(self, df: pd.DataFrame) -> bool:
        """Create the tables and store ``df`` as the base snapshot, atomically.

        Returns whether this call created the journal (always, for the only writer).
        """
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
            db.execute("INSERT INTO snapshot VALUES (1, 0, 0, '[]', zeroblob(0))")
            _put_snapshot(db, df, 0)
        return True

    @_named_errors
    def load_snapshot(self) -> tuple[pd.DataFrame, int]:
        """Return the snapshot table and the id of the last action folded into it.

        A writer migrates a format-1 journal to format 2 first (one transaction: the
        snapshot re-encoded, nothing else changes); a read-only journal is decoded as it
        is.
        """
        version = self._format()
        if version == "1" and not self.read_only:
            self._migrate_from_1()
            version = FORMAT_VERSION
        if version == "1":
            upto, *blobs = self._db.execute(
                "SELECT upto_action, nrows, classes, filepath, flags, labels FROM snapshot"
            ).fetchone()
            return decode_snapshot(*blobs), upto
        upto, *stored = self._db.execute(
            "SELECT upto_action, nrows, classes, arrow FROM snapshot"
        ).fetchone()
        return decode_table(*stored), upto

    def _format(self) -> str:
        """The journal's format version; ValueError for one this version cannot read."""
        version = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if version is None or version[0] not in READABLE_FORMATS:
            raise ValueError(
                f"{self.path}: journal format {version and version[0]!r} is not supported; "
                f"this version reads formats {list(READABLE_FORMATS)}"
            )
        return version[0]

    def _migrate_from_1(self) -> None:
        """Rewrite a format-1 snapshot (three blobs) as format 2 (Arrow), atomically."""
        with self._transaction() as db:
            if self._format() != "1":  # migrated meanwhile (cannot happen with one writer)
                return
            upto, *blobs = db.execute(
                "SELECT upto_action, nrows, classes, filepath, flags, labels FROM snapshot"
            ).fetchone()
            table = decode_snapshot(*blobs)
            db.execute("DROP TABLE snapshot")
            db.execute(_SNAPSHOT_TABLE)
            db.execute("INSERT INTO snapshot VALUES (1, 0, 0, '[]', zeroblob(0))")
            _put_snapshot(db, table, upto)
            db.execute("UPDATE meta SET value=? WHERE key='format'", (FORMAT_VERSION,))
        log.info("%s: migrated the journal from format 1 to %s", self.path, FORMAT_VERSION)

    @_named_errors
    def write_snapshot(self, df: pd.DataFrame, upto_action: int, applied: int) -> bool:
        """Replace the snapshot with ``df``, the table after action ``upto_action``.

        ``applied`` is how many actions after the current snapshot ``df`` holds. The
        snapshot is written only if those are all the actions in the file, the newest
        being ``upto_action``: a snapshot never covers an action ``df`` may not hold.
        Returns whether it was written.
        """
        with self._transaction() as db:
            found = db.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM actions "
                "WHERE id > (SELECT upto_action FROM snapshot)"
            ).fetchone()
            if tuple(found) != (applied, upto_action):
                return False
            _put_snapshot(db, df, upto_action)
        return True

    def writing(self, after: int) -> AbstractContextManager[list[Change] | None]:
        """Hold the right to append across a change's validation and :meth:`append`.

        Yields the actions other writers committed after action ``after`` (a list of
        :class:`Change`, to apply before validating), or None when there cannot be any:
        with SQLite the store is the only writer, so this holds nothing and yields None.
        """
        return nullcontext()

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` when another writer commits; a single-writer journal never
        has one, so this does nothing."""

    def unwatch(self) -> None:
        """Stop :meth:`watch` (nothing to stop here)."""

    @_named_errors
    def append(
        self,
        kind: str,
        events: Iterable[Event],
        seconds: float | None = None,
        detail: dict | None = None,
        undoes: int | None = None,
    ) -> int:
        """Write one action and its cell events in one durable transaction; return its id."""
        with self._transaction() as db:
            action = db.execute(
                "INSERT INTO actions (time, kind, detail, seconds, undoes, user, session) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    kind,
                    None if detail is None else json.dumps(detail),
                    seconds,
                    undoes,
                    self.user,
                    self.session,
                ),
            ).lastrowid
            db.executemany(
                "INSERT INTO events (action, row, field, old, new) VALUES (?, ?, ?, ?, ?)",
                ((action, *event) for event in events),
            )
        return action

    @_named_errors
    def record_export(self, upto_action: int, size: int, mtime_ns: int) -> None:
        """Note that the export file, now of ``size`` bytes and ``mtime_ns``, holds the
        table after action ``upto_action``."""
        record = {"upto": upto_action, "size": size, "mtime_ns": mtime_ns, "time": time.time()}
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('export', ?)", (json.dumps(record),))

    @_named_errors
    def export_record(self) -> dict | None:
        """The last :meth:`record_export` (``upto``, ``size``, ``mtime_ns``, ``time``)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='export'").fetchone()
        return None if row is None else json.loads(row[0])

    @_named_errors
    def first_action_time(self, after: int) -> float | None:
        """The time of the oldest action with id > ``after`` (None if there is none)."""
        query = "SELECT min(time) FROM actions WHERE id > ?"
        return self._db.execute(query, (after,)).fetchone()[0]

    @_named_errors
    def pending(self, after: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Actions with id > ``after`` and their events, both in order."""
        actions = pd.DataFrame(
            self._db.execute(
                "SELECT id, kind, detail, user FROM actions WHERE id > ? ORDER BY id", (after,)
            ).fetchall(),
            columns=["id", "kind", "detail", "user"],
        )
        events = pd.DataFrame(
            self._db.execute(
                "SELECT action, row, field, new FROM events WHERE action > ? ORDER BY seq",
                (after,),
            ).fetchall(),
            columns=["action", "row", "field", "new"],
        )
        events["new"] = events["new"].astype(float)
        return actions, events

    def changes_after(self, after: int) -> list[Change]:
        """The actions with id > ``after`` as :class:`Change` objects, in order."""
        return changes_from_frames(*self.pending(after))

    @_named_errors
    def action_events(self, action: int) -> list[Event]:
        """The cell events of one action, in order."""
        return self._db.execute(
            "SELECT row, field, old, new FROM events WHERE action=? ORDER BY seq", (action,)
        ).fetchall()

    @_named_errors
    def last_action(self) -> int:
        """The id of the newest action, 0 if none."""
        return self._db.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0]

    @_named_errors
    def details(self, kind: str) -> list[dict]:
        """The details of every action of ``kind``, oldest first."""
        rows = self._db.execute(
            "SELECT detail FROM actions WHERE kind=? ORDER BY id", (kind,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    @_named_errors
    def undo_stack(self) -> list[int]:
        """Annotate actions after the last class edit that are not undone, oldest first."""
        marks = ",".join("?" * len(CLASS_EDITS))
        rows = self._db.execute(
            f"SELECT id FROM actions WHERE kind='annotate' AND id > "
            f"(SELECT coalesce(max(id), 0) FROM actions WHERE kind IN ({marks})) "
            "AND id NOT IN (SELECT undoes FROM actions WHERE undoes IS NOT NULL) ORDER BY id",
            CLASS_EDITS,
        ).fetchall()
        return [r[0] for r in rows]

    @_named_errors
    def read_history(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """All actions and all events, as stored."""
        actions = pd.DataFrame(
            self._db.execute(
                "SELECT id, time, kind, detail, seconds, undoes, user, session FROM actions "
                "ORDER BY id"
            ).fetchall(),
            columns=["action", "time", "kind", "detail", "seconds", "undoes", "user", "session"],
        )
        events = pd.DataFrame(
            self._db.execute(
                "SELECT seq, action, row, field, old, new FROM events ORDER BY seq"
            ).fetchall(),
            columns=["seq", "action", "row", "field", "old", "new"],
        )
        return actions, events

    def claim(self, candidates: list[int], n: int, lease: float, overlap: float) -> list[int]:
        """The first ``n`` candidates: with one writer there is no one to split work with."""
        return candidates[:n]

    def release(self, rows: list[int]) -> None:
        """Nothing to give up: with one writer no claim is recorded."""

    def close(self) -> None:
        """Close the connection (checkpointing the WAL into the main file)."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error (the commit's too) roll back."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
