"""A LabelStore's files and lifetime: its export file, compaction of its journal, closing
and being taken over (the :class:`StoreFiles` part of :class:`.store.LabelStore`)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType

import pandas as pd

from . import shutdown
from .autosave import ExportState
from .errors import check_usable
from .exporting import Exports
from .files import save_labels
from .journal import Journal
from .lock import WriterLock
from .resolution import Resolution
from .table import LiveTable

log = logging.getLogger("patchwork_widget.labels.store")


class StoreFiles:
    """Export, compaction and closing of a label store (mixed into ``LabelStore``, whose
    ``__init__`` sets these attributes)."""

    path: Path
    _journal: Journal
    _table: LiveTable
    _resolution: Resolution
    _lock: threading.RLock
    _exports: Exports
    _writer: WriterLock | None
    _closed: bool
    _taken_over: bool
    _pending: int
    _last_action: int

    # -- files ---------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether the store was opened with ``read_only=True``."""
        return self._writer is None

    @property
    def closed(self) -> bool:
        """Whether the store no longer writes (closed, or taken over by a later open)."""
        return self._closed

    @property
    def export_state(self) -> ExportState:
        """Whether the export file at :attr:`path` holds every acknowledged change."""
        return self._exports.state()

    def wait_exported(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :attr:`export_state` to be ``"exported"``."""
        return self._exports.wait(timeout)

    def export(self, path: str | os.PathLike | None = None) -> Path:
        """Write the table atomically to ``path`` (default: the store's path); return it.

        Writing the store's own path needs a writable store; another path does not.
        """
        target = self.path if path is None else Path(path)
        if os.path.abspath(target) == os.path.abspath(self.path):
            self._exports.write(self._snapshot, raise_errors=True)
            return self.path
        with self._lock:
            self._check_open()
            table = self._table.df.copy()
        save_labels(table, target)
        return target

    def _snapshot(self) -> tuple[pd.DataFrame, int]:
        """A copy of the table and its newest action, for an export of :attr:`path`."""
        self._check_writable()
        return self._table.df.copy(), self._last_action

    def compact(self) -> None:
        """Fold the actions since the last snapshot into a new snapshot.

        Only when this store holds every action in the journal: a snapshot never covers
        an action it did not apply (then nothing is written and a warning logged).
        """
        with self._lock:
            self._check_writable()
            if self._pending:
                start = time.perf_counter()
                if not self._journal.write_snapshot(
                    self._resolution.latest_table(self._table.df), self._last_action,
                    self._pending,
                ):
                    log.log(  # expected on a shared journal: others write on
                        logging.INFO if self._journal.shared else logging.WARNING,
                        "not compacting %s: it holds actions this store did not apply",
                        self._journal.where,
                    )
                    return
                log.info(
                    "compacted %d actions into %s in %.2f s",
                    self._pending, self._journal.where, time.perf_counter() - start,
                )
                self._pending = 0

    def close(self, export: bool = True) -> None:
        """Stop autosaving, export (unless ``export=False`` or already current), compact
        and close the journal, and give up the writer lock; idempotent.

        A store taken over by a later open only closes (the new store owns the files).
        """
        self._exports.stop_autosave()
        self._journal.unwatch()  # before the lock: the listener may be waiting for it
        try:
            with self._lock:
                writable = not (self._closed or self._taken_over or self.read_only)
            if export and writable and not self._exports.current:
                self._exports.write(self._snapshot, raise_errors=True)
            with self._lock:
                if writable and not self._closed:
                    self.compact()
        finally:
            with self._lock:
                if not self._closed:
                    self._journal.close()
                    self._closed = True
            if self._writer is not None:
                self._writer.release()
            shutdown.forget(self)

    def _stop_writing(self) -> None:
        """Called when a later open in this process takes over: stop, write nothing more."""
        self._journal.unwatch()
        with self._lock:  # waits for a call in flight
            self._taken_over = True
        self._exports.stop_autosave()  # an export in progress finishes; no new one starts
        with self._lock:
            if not self._closed:
                self._journal.close()
                self._closed = True
        shutdown.forget(self)
        log.info("%s: taken over by a newer store on the same file", self.path)

    def _check_open(self) -> None:
        check_usable(self.path, closed=self._closed, taken_over=self._taken_over)

    def _check_writable(self) -> None:
        check_usable(
            self.path, closed=self._closed, taken_over=self._taken_over, read_only=self.read_only
        )

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
