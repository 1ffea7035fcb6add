"""LabelStore: the live label table backed by a durable journal (FEATURES L3, L4, L5).

Every change is written to the journal in one committed transaction before the
in-memory DataFrame changes, so the DataFrame never shows a label that a crash could
lose. The journal is SQLite beside the export file (:mod:`.journal`; one store at a time
writes it, see :mod:`.lock`) or a project on a PostgreSQL server that several annotators
write at once (:mod:`.pg_journal`); the store does not know which. Other annotators'
changes arrive on a listener thread and are applied under the store's lock. The export
file is kept current in the background (see :mod:`.autosave`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.options.checks import check_path
from patchwork_widget.options.legacy import take_renamed
from patchwork_widget.options.project import STORE_FIELDS, ProjectOptions, takes_options

from . import shutdown
from .arguments import check_changes, check_claim, check_rows, check_seconds
from .autosave import ExportState, check_delay
from .backend import JournalBackend
from .errors import check_usable
from .exporting import Exports
from .files import save_labels
from .journal import journal_path
from .lock import WriterLock
from .opening import Start, open_journal
from .records import (
    CLASS_EDITS,
    UNREADABLE,
    Annotated,
    Change,
    Event,
    changes_from_frames,
    fold_unreadable,
    history_frame,
)
from .remote import RemoteChange, RemoteNews
from .resolution import Resolution
from .schema import check_table, validate_classes
from .table import LiveTable, constant_grid, undo_grid

log = logging.getLogger(__name__)

#: Opening a journal with more pending actions than this folds them into the snapshot.
COMPACT_AFTER = 20_000


class LabelStore:
    """A label table whose every change is durable before it is visible.

    Create with :meth:`open`. ``store.df`` is the live DataFrame (always the same
    object); change it only through the store's methods. All methods are thread-safe.
    """

    def __init__(
        self,
        path: Path,
        journal: JournalBackend,
        start: Start,
        writer: WriterLock | None,
        exported: bool,
        resolution: Resolution,
    ) -> None:
        self.path = path
        self._journal = journal
        self._table = LiveTable(start.table)
        self._lock = threading.RLock()
        self._undo = journal.undo_stack()
        self._pending = start.pending
        self._last_action = start.last_action
        self._writer = writer
        self._closed = False
        self._taken_over = False
        # a worker process replays the journal as it stands: one writer, latest values
        follow = journal_path(path) if not journal.shared and resolution.rule == "latest" else None
        self._exports = Exports(path, journal, self._lock, exported, follow, len(start.table))
        self._news = RemoteNews()
        self._resolution = resolution
        self._unreadable = fold_unreadable({}, journal.details(UNREADABLE))

    @classmethod
    @takes_options(STORE_FIELDS)
    def open(
        cls,
        outfile: str | os.PathLike | None = None,
        df: pd.DataFrame | None = None,
        *,
        user: str | None = None,
        read_only: bool = False,
        wait: float = 0.0,
        autosave: float | None = 1.0,
        options: ProjectOptions,
        **renamed: Any,
    ) -> LabelStore:
        """Open (or start) the store whose export file is ``outfile``.

        It also takes the label store's fields of
        :class:`~patchwork_widget.options.project.ProjectOptions` as keywords (``classes``,
        ``journal``, ``project``, ``annotator``, ``resolution``; ``STORE_FIELDS``), or all of
        them as ``options=``; other fields of ``options`` are not the store's and are left
        alone.

        Parameters
        ----------
        outfile
            The label file the store exports to, ``.csv`` or ``.parquet``; the journal is
            ``<outfile>.journal.sqlite`` beside it unless ``journal`` names a server.
            (``path``, its old name, is a deprecated alias; the open store's
            :attr:`path` is this file.)
        df
            The table to start from when there is no journal yet. With an existing
            journal the journal wins, and ``df`` must have the same filepaths in the same
            order (otherwise ValueError).
        classes
            If given, the opened table must have exactly these classes, in this order.
        user
            Recorded on every action; defaults to the login name.
        read_only
            Read an existing journal without becoming its writer: every change raises
            :class:`ReadOnlyStoreError`; the table is the journal's at open.
        wait
            Seconds to wait for a writer in another process to close before raising
            :class:`JournalLockedError`. A writer in this process is taken over at once.
        autosave
            Export ``outfile`` in the background this many seconds after the last change
            (at most 5 s after the first unexported one, and no sooner than 3 times the
            last export's duration after it), and at close and interpreter exit; a table of
            100,000 rows or more on the SQLite journal is exported by a worker process that
            follows the journal (see docs/labels.md). None: only on :meth:`export` and
            :meth:`close`.
        journal
            None (the SQLite journal beside ``outfile``) or the URL of a PostgreSQL
            database, ``postgresql://[user[:password]@]host[:port]/dbname``, shared by a
            team (see docs/team.md): several annotators' stores write one ``project``
            at once and each sees the others' changes within about a second. The
            writer lock then only guards this store's export file.
        project
            The project in the team journal (required with a server URL).
        annotator
            Who labels, recorded on every action (the same as ``user``; give one).
        resolution
            Which value a cell several annotators labeled shows: ``"latest"`` (the newest
            value, whoever set it) or ``"majority"`` (the value most annotators hold once
            two or more hold one; a tie shows the latest). See docs/team.md.

        Returns
        -------
        LabelStore
            Holding the table at its last acknowledged change. Without a journal the
            start is ``df``, else the export file at ``outfile``; with neither, ValueError.

        Raises
        ------
        JournalLockedError
            Another process writes this journal (the message names its pid and host).
        """
        outfile = take_renamed("LabelStore.open", {"outfile": outfile}, renamed,
                               required=("outfile",))["outfile"]
        delay = check_delay(autosave)
        rule = Resolution(options.resolution)
        path = Path(check_path("outfile", outfile))
        if df is not None:
            check_table(df)
        classes = None if options.classes is None else validate_classes(options.classes)
        backend, start, writer, exported = open_journal(
            path, df, classes, user, read_only, wait, options.journal, options.project,
            options.annotator
        )
        store = cls(path, backend, start, writer, exported, rule)
        if rule.rule != "latest":
            rule.follow(store._table, changes_from_frames(*backend.pending(0)))
        backend.watch(store._pull)
        if writer is None:
            return store
        if start.pending > COMPACT_AFTER:
            store.compact()
        if delay is not None:
            store._exports.start_autosave(delay, store._snapshot)
        shutdown.track(store)
        writer.bind(store._stop_writing)  # last: a takeover from now on stops all of it
        return store

    # -- reading -------------------------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame:
        """The live label table (the same DataFrame object for the store's lifetime)."""
        return self._table.df

    @property
    def classes(self) -> list[str]:
        """The class names, in column order."""
        return self._table.classes

    def copy(self, columns: list[str]) -> pd.DataFrame:
        """A consistent copy of ``columns`` (no change half-applied), e.g. for training."""
        with self._lock:
            return self._table.df[columns].copy()

    @property
    def counts(self) -> pd.DataFrame:
        """The :func:`label_counts` table, kept up to date per change."""
        with self._lock:
            return self._table.tracker.table()

    def history(self) -> pd.DataFrame:
        """Every change ever made, one row per changed cell.

        Columns: ``action`` (id of the store call), ``time`` (UTC), ``kind``
        (``annotate``, ``undo`` or a class edit), ``row``, ``field``, ``old``, ``new``
        (NaN for unlabeled; flags as 0.0/1.0), ``seconds`` (the call's seconds on screen,
        repeated on each of its rows), ``user``, ``session``, ``undone`` (a later undo
        reverted this call). Class edits add a row with ``row`` -1 describing the edit
        in ``field``.
        """
        with self._lock:
            self._check_open()
            actions, events = self._journal.read_history()
        return history_frame(actions, events)

    # -- annotating ----------------------------------------------------------------------

    def annotate(
        self, row: int, changes: Mapping[str, object], seconds: float | None = None
    ) -> Annotated:
        """Set fields of one row, durably.

        The store is the one place a label edit is checked: every caller (a script, the
        Session, the widget's messages) gets the errors below.

        Parameters
        ----------
        row
            The row label (0 .. len(df) - 1).
        changes
            Field -> value. Classes take None/NaN, 0/1, 0.0/1.0 or False/True; the
            ``exclude`` and ``validation`` flags take True/False or 0/1. A row whose image
            cannot be read (see :attr:`unreadable`) takes only ``exclude``.
        seconds
            How long the image was on screen, for time accounting: None or 0 to 86400
            (a day).

        Returns
        -------
        Annotated
            The rows written and how many class values the call gave.

        Raises
        ------
        ValueError
            For an unknown row or field, a bad value or ``seconds``, or a class or
            ``validation`` on an unreadable image; nothing is then written.
        """
        return self.annotate_many([row], changes, seconds)

    def annotate_many(
        self, rows: Iterable[int], changes: Mapping[str, object], seconds: float | None = None
    ) -> Annotated:
        """Apply the same ``changes`` to several rows in one durable transaction.

        ``seconds`` is the time for the whole call. See :meth:`annotate`.
        """
        with self._lock:
            self._check_writable()
            rows_arr = check_rows(rows, len(self._table.df))  # a table's rows never change
            seconds = check_seconds(seconds)

            def cells() -> tuple[np.ndarray, dict[str, np.ndarray]]:
                checked = check_changes(changes, self.classes)  # classes may have changed
                if set(checked) - {"exclude"}:
                    blocked = [int(r) for r in rows_arr if r in self._unreadable]
                    if blocked:
                        raise ValueError(
                            f"row {blocked[0]}'s image cannot be read "
                            f"({self._unreadable[blocked[0]]}): only 'exclude' can be set on it")
                return rows_arr, constant_grid(len(rows_arr), checked)

            action, _, _, events = self._commit("annotate", cells, seconds=seconds)
            self._undo.append(action)
            annotated = Annotated.of(rows_arr, events, self.classes)
        self._news.deliver()
        return annotated

    def undo(self) -> dict | None:
        """Revert the most recent annotate call not yet undone.

        The revert is itself journaled (history stays append-only). Class edits clear
        what can be undone.

        Returns
        -------
        dict or None
            ``{"action": id, "rows": [...], "restored": {field: [value per row]}}``, or
            None when there is nothing to undo.
        """
        with self._lock:
            self._check_writable()
            if not self._undo:
                return None
            target = self._undo[-1]

            def cells() -> tuple[np.ndarray, dict[str, np.ndarray]]:
                if self._undo[-1:] != [target]:  # another annotator's class edit came first
                    raise ValueError("nothing to undo: the classes changed meanwhile")
                return undo_grid(self._journal.action_events(target))

            _, rows, grid, _ = self._commit("undo", cells, undoes=target)
            self._undo.pop()
        self._news.deliver()
        restored = {field: values.tolist() for field, values in grid.items()}
        return {"action": target, "rows": rows.tolist(), "restored": restored}

    def _commit(
        self,
        kind: str,
        cells: Callable[[], tuple[np.ndarray, dict[str, np.ndarray]]],
        seconds: float | None = None,
        undoes: int | None = None,
    ) -> tuple[int, np.ndarray, dict[str, np.ndarray], list[Event]]:
        """Journal, then apply, the new values ``cells()`` gives (rows and field -> values).

        ``cells`` validates against the table once it holds every action other writers
        committed before this one (see :meth:`JournalBackend.writing`). Returns the action id,
        the rows, the values and the (row, field, old, new) events.
        """
        with self._journal.writing(self._last_action) as others:
            self._apply_others(others)
            rows, grid = cells()
            events = self._table.cell_events(rows, grid)
            action = self._journal.append(kind, events, seconds=seconds, undoes=undoes)
        if action > self._last_action:  # else a retried call saved before: applied already
            self._table.set(rows, grid)
            self._resolution.committed(self._table, action, kind, self._journal.user, events)
            self._acknowledged(action)
        return action, rows, grid, events

    def _acknowledged(self, action: int, count: int = 1) -> None:
        """Book-keeping after ``count`` actions up to ``action`` are durable and applied
        (a retried call saved before acknowledges an action the table already holds)."""
        self._last_action = max(self._last_action, action)
        self._pending += count
        self._exports.changed()

    # -- unreadable images (I1) ----------------------------------------------------------

    @property
    def unreadable(self) -> dict[int, str]:
        """Row -> why its image cannot be read, as recorded (by any annotator)."""
        with self._lock:
            return dict(self._unreadable)

    def record_unreadable(self, row: int, cause: str | None) -> None:
        """Record durably that ``row``'s image cannot be read, and why (``cause``), or
        that it reads again (None). Recording what is already recorded writes nothing; a
        store that cannot write (read-only, closed, taken over) keeps it in memory only."""
        with self._lock:
            row = int(check_rows([row], len(self._table.df))[0])
            if cause is not None and not isinstance(cause, str):
                raise TypeError(f"cause must be a str or None, got {cause!r}")
            if self._unreadable.get(row) == cause:
                return
            detail = {"row": row, "cause": cause}
            if not (self.read_only or self._closed or self._taken_over):
                with self._journal.writing(self._last_action) as others:
                    self._apply_others(others)
                    action = self._journal.append(UNREADABLE, [], detail=detail)
                self._acknowledged(action)
            fold_unreadable(self._unreadable, [detail])
        self._news.deliver()

    # -- other annotators (team journal) -------------------------------------------------

    def on_remote_change(self, callback: Callable[[RemoteChange], None]) -> None:
        """Call ``callback(change)`` (a :class:`RemoteChange`) after changes by other
        stores of a team journal are applied to :attr:`df` and :attr:`counts`.

        It is called on the store's listener thread (or the thread of the call that
        caught up with them), never holding the store's lock: hand the work to your own
        thread or loop. A callback that raises is logged and kept.
        """
        self._news.subscribe(callback)

    def _pull(self) -> None:
        """Apply every action committed after the newest one the table holds (called by
        the journal's listener when another store commits)."""
        with self._lock:
            if self._closed or self._taken_over:
                return
            self._apply_others(self._journal.changes_after(self._last_action))
        self._news.deliver()

    def _apply_others(self, changes: list[Change] | None) -> None:
        """Apply actions other stores committed (``JournalBackend.changes_after``), if any."""
        if not changes:
            return
        self._resolution.apply(self._table, changes)
        fold_unreadable(self._unreadable, [json.loads(change.detail) for change in changes
                                           if change.kind == UNREADABLE])
        if any(change.kind in CLASS_EDITS for change in changes):
            self._undo.clear()
        self._acknowledged(changes[-1].id, len(changes))
        self._news.add(changes)

    # -- class edits ---------------------------------------------------------------------

    def add_class(self, name: str) -> None:
        """Add class ``name`` with every row unlabeled."""
        self._class_edit("add_class", {"name": name})

    def rename_class(self, old: str, new: str) -> None:
        """Rename class ``old`` to ``new``; its labels stay on their rows."""
        self._class_edit("rename_class", {"old": old, "new": new})

    def remove_class(self, name: str) -> None:
        """Remove class ``name``; its values stay in the history."""
        self._class_edit("remove_class", {"name": name})

    def merge_classes(self, a: str, b: str, into: str | None = None) -> str:
        """Merge classes ``a`` and ``b`` (see :func:`merge_values`); return the new name."""
        detail = {"a": a, "b": b, "into": into}
        self._class_edit("merge_classes", detail)
        return detail["into"]

    def _class_edit(self, kind: str, detail: dict) -> None:
        with self._lock:
            self._check_writable()
            with self._journal.writing(self._last_action) as others:
                self._apply_others(others)
                events = self._table.class_edit_events(kind, detail)
                action = self._journal.append(kind, events, detail=detail)
            self._table.apply_class_edit(kind, detail)
            self._resolution.committed(self._table, action, kind, self._journal.user, [], detail)
            self._undo.clear()
            self._acknowledged(action)
        self._news.deliver()

    # -- work split (team journal; the server side is :mod:`.pg_claims`) ----------------

    def claim(
        self, candidates: Iterable[int], n: int, lease: float = 300.0, overlap: float = 0.0
    ) -> list[int]:
        """Up to ``n`` of ``candidates`` (row labels, in the order to label them) for this
        annotator to label now, split from the other annotators' (team journal).

        Rows another annotator holds an unexpired claim on are skipped; the rows handed
        out are claimed for ``lease`` seconds (claim again to renew; a dead notebook's
        claims expire, and close releases them). Up to ``overlap * n`` of them may be rows
        exactly one other annotator holds, so that two label them (for agreement). With
        the SQLite journal (one annotator) this is the first ``n`` candidates.

        Raises
        ------
        ValueError
            For an unknown row, a repeated row, or ``n``, ``lease``, ``overlap`` out of range.
        """
        n, lease, overlap = check_claim(n, lease, overlap)
        candidates = list(candidates)
        with self._lock:
            self._check_writable()
            if not candidates or n == 0:
                return []
            rows = check_rows(candidates, len(self._table.df)).tolist()
            return self._journal.claim(rows, n, lease, overlap)

    def release(self, rows: Iterable[int]) -> None:
        """Give up this annotator's claims on ``rows`` (row labels) on a team journal, so
        other annotators may be handed them at once rather than when the lease ends; rows
        not claimed are ignored. Nothing to do with the SQLite journal.

        Raises
        ------
        ValueError
            For an unknown or repeated row.
        """
        rows = list(rows)
        with self._lock:
            self._check_writable()
            if rows:
                self._journal.release(check_rows(rows, len(self._table.df)).tolist())

    # -- files and lifetime: export, compaction, close, takeover --------------------------

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

    def _snapshot(self, copy: bool = True) -> tuple[pd.DataFrame | None, int]:
        """A copy of the table (None unless ``copy``) and its newest action, for an export
        of :attr:`path`. The copy's paths are the table's own (Arrow strings, immutable);
        the flag and class columns are copied."""
        self._check_writable()
        return (self._table.df.copy() if copy else None), self._last_action

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

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return (
            f"LabelStore({str(self.path)!r}, rows={len(self._table.df)}, "
            f"classes={self.classes}{mode})"
        )

