"""A store's exports to its own file: when they happen and whether the file is current.

:class:`Exports` counts acknowledged changes (revisions), writes the table to the export
file (from the caller's thread or the :class:`.autosave.Autosave` thread), records each
export in the journal (so the next open knows whether the file is current) and reports
an :class:`.autosave.ExportState`.

Who writes: an export the caller waits for (``export()``, ``close()``) copies the table
under the store's lock (the label and flag columns: the paths are immutable Arrow strings,
shared) and writes it on the caller's thread. A background export of a table of at least
:data:`PROCESS_ROWS` rows on a SQLite journal (one writer, ``resolution="latest"``) is
written by a worker process that follows the journal (:mod:`.export_worker`): the kernel
copies nothing and takes the store's lock only to read the revision.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .autosave import EXPORTED, FAILED, PENDING, Autosave, ExportState
from .backend import JournalBackend
from .export_worker import ExportProcess, ExportWorkerError
from .files import save_labels

log = logging.getLogger(__name__)

#: Background exports of a table with at least this many rows are written by a worker
#: process (when the journal allows it, see the module's docstring).
PROCESS_ROWS = 100_000

#: ``snapshot(copy)`` returns a copy of the table (None when ``copy`` is False) and the id of
#: its newest action; raises ValueError if the store cannot write. Called holding the store's
#: lock.
Snapshot = Callable[[bool], tuple[pd.DataFrame | None, int]]


class Exports:
    """Export book-keeping of one store.

    Parameters
    ----------
    path
        The export file.
    journal
        Where exports are recorded.
    lock
        The store's lock: every method that reads or changes state takes it.
    exported
        Whether the file holds the table at open.
    follow
        The SQLite journal a worker process may follow to write the background exports
        (None: they are written by the autosave thread).
    rows
        The table's rows: a worker writes the background exports from
        :data:`PROCESS_ROWS` on.
    """

    def __init__(self, path: Path, journal: JournalBackend, lock: threading.RLock,
                 exported: bool, follow: Path | None = None, rows: int = 0) -> None:
        self.path = path
        self._journal = journal
        self._lock = lock
        self._write_lock = threading.Lock()  # exports finish in the order they copied
        self._revision = 0
        self._exported_revision = 0 if exported else -1
        record = journal.export_record()
        self._exported_at: float | None = record["time"] if record and exported else None
        self._changed_at: float | None = None
        if not exported:
            after = record["upto"] if record else 0
            self._changed_at = journal.first_action_time(after) or time.time()
        self._error: str | None = None
        self._autosave: Autosave | None = None
        by_worker = follow is not None and rows >= PROCESS_ROWS
        self._process = ExportProcess(follow, path) if by_worker else None

    def start_autosave(self, delay: float, snapshot: Snapshot) -> None:
        """Export in the background ``delay`` seconds after changes (see :class:`Autosave`)."""
        self._autosave = Autosave(
            lambda: self.write(snapshot, raise_errors=False, background=True), delay,
            self.path.name)
        if not self.current:
            self._autosave.changed()

    def stop_autosave(self) -> None:
        """Stop the background exports (one in progress finishes first) and their worker."""
        if self._autosave is not None:
            self._autosave.stop()
        with self._write_lock:
            if self._process is not None:
                self._process.close()

    @property
    def worker_pid(self) -> int | None:
        """The export worker process's id while it runs (None: none runs)."""
        return None if self._process is None else self._process.pid

    def changed(self) -> None:
        """Note one acknowledged change (call holding the store's lock)."""
        self._revision += 1
        if self._changed_at is None:
            self._changed_at = time.time()
        if self._autosave is not None:
            self._autosave.changed()

    @property
    def current(self) -> bool:
        """Whether the file holds every acknowledged change."""
        with self._lock:
            return self._exported_revision == self._revision

    def state(self) -> ExportState:
        """The :class:`ExportState` now."""
        with self._lock:
            if self._exported_revision == self._revision:
                state = EXPORTED
            else:
                state = FAILED if self._error is not None else PENDING
            return ExportState(
                state=state,
                path=str(self.path),
                exported_at=self._exported_at,
                changed_at=None if state == EXPORTED else self._changed_at,
                error=self._error if state == FAILED else None,
            )

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the file to be current; return whether it is."""
        deadline = time.monotonic() + timeout
        while not self.current:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def write(self, snapshot: Snapshot, raise_errors: bool, background: bool = False) -> bool:
        """Write the table from ``snapshot`` atomically to the file and record it.

        ``background``: an autosave export, written by the worker process when there is
        one. Returns False on failure (the error is kept in :meth:`state` and logged), or
        raises it when ``raise_errors``; ``snapshot``'s own error always propagates
        when ``raise_errors``, else returns False.
        """
        with self._write_lock:
            by_worker = background and self._process is not None
            with self._lock:
                try:
                    table, upto = snapshot(not by_worker)
                except ValueError:
                    if raise_errors:
                        raise
                    return False  # closed or taken over: nothing more to write
                revision, copied_at = self._revision, time.time()
            try:
                if by_worker:
                    upto, size, mtime_ns = self._by_worker(upto)
                else:
                    save_labels(table, self.path)
                    stat = self.path.stat()
                    size, mtime_ns = stat.st_size, stat.st_mtime_ns
            except Exception as error:
                with self._lock:
                    self._error = (str(error) if isinstance(error, ExportWorkerError)
                                   else f"{type(error).__name__}: {error}")
                if raise_errors:
                    raise
                log.warning("could not export %s: %s", self.path, self._error)
                return False
            with self._lock:
                self._exported_revision = revision
                self._exported_at = time.time()
                self._error = None
                if revision == self._revision:
                    self._changed_at = None
                else:  # the oldest change not in the file came after the copy
                    self._changed_at = max(self._changed_at or copied_at, copied_at)
                try:
                    self._journal.record_export(upto, size, mtime_ns)
                except Exception as error:  # the file is written; only the record is lost
                    log.warning("could not record the export of %s: %s", self.path, error)
        return True

    def _by_worker(self, upto: int) -> tuple[int, int, int]:
        """Have the worker write the file; return the newest action it holds (at least
        ``upto``, the store's when asked), its size and time. A worker that cannot start
        (no Python executable to run, say) is given up for this store: this export fails
        and is retried, and it and every later one are written by the autosave thread."""
        try:
            held, size, mtime_ns = self._process.export()
        except OSError as error:
            log.warning("cannot start an export worker for %s (%s): exporting in the "
                        "kernel instead", self.path, error)
            self._process = None
            raise ExportWorkerError(f"{type(error).__name__}: {error}") from error
        if held < upto:
            raise ExportWorkerError(
                f"the export worker read the journal up to action {held}, before the "
                f"store's action {upto}")
        return held, size, mtime_ns
