"""LabelStore: the live label table backed by a durable journal (FEATURES L3, L4, L5).

Every change is written to the SQLite journal (see :mod:`.journal`) in one committed
transaction before the in-memory DataFrame changes, so the DataFrame never shows a
label that a crash could lose.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from itertools import repeat
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd

from .counts import CountTracker
from .files import load_labels, save_labels, table_format
from .journal import Event, Journal, history_frame, journal_path
from .replay import apply_class_edit, as_db, class_edit_events, replay
from .schema import (
    FLAGS,
    check_flag_value,
    check_label_value,
    check_same_filepaths,
    class_columns,
)

log = logging.getLogger(__name__)

#: Opening a journal with more pending actions than this folds them into the snapshot.
COMPACT_AFTER = 20_000


def _check_seconds(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, (int, float, np.integer, np.floating)) and not isinstance(
        seconds, (bool, np.bool_)
    ):
        if math.isfinite(seconds) and seconds >= 0:
            return float(seconds)
    raise ValueError(f"seconds must be None or a finite number >= 0; got {seconds!r}")


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


class LabelStore:
    """A label table whose every change is durable before it is visible.

    Create with :meth:`open`. ``store.df`` is the live DataFrame (always the same
    object); change it only through the store's methods. All methods are thread-safe.
    """

    def __init__(self, path: Path, journal: Journal, df: pd.DataFrame, pending: int) -> None:
        self.path = path
        self._journal = journal
        self._df = df
        self._lock = threading.RLock()
        self._tracker = CountTracker(df)
        self._position = {name: j for j, name in enumerate(df.columns)}
        self._undo = journal.undo_stack()
        self._pending = pending
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        df: pd.DataFrame | None = None,
        classes: Iterable[str] | None = None,
        user: str | None = None,
    ) -> LabelStore:
        """Open (or start) the store whose export file is ``path``.

        Parameters
        ----------
        path
            The export file, ``.csv`` or ``.parquet``; the journal is
            ``<path>.journal.sqlite`` beside it.
        df
            The table to start from when there is no journal yet. With an existing
            journal the journal wins, and ``df`` must have the same filepaths in the same
            order (otherwise ValueError).
        classes
            If given, the opened table must have exactly these classes, in this order.
        user
            Recorded on every action; defaults to the login name.

        Returns
        -------
        LabelStore
            Holding the table at its last acknowledged change. Without a journal the
            start is ``df``, else the export file at ``path``; with neither, ValueError.
        """
        path = Path(path)
        table_format(path)
        where = journal_path(path)
        fresh = not where.exists()
        journal = Journal(where, user or _default_user(), uuid.uuid4().hex)
        try:
            start = time.perf_counter()
            resume = journal.initialised()
            if resume:
                table, upto = journal.load_snapshot()
                actions, events = journal.pending(upto)
                replay(table, actions, events)
                pending = len(actions)
                if df is not None:
                    check_same_filepaths(table, load_labels(df), f"the journal {where.name}")
            elif df is not None:
                table, pending = load_labels(df), 0
            elif path.exists():
                table, pending = load_labels(path), 0
            else:
                raise ValueError(
                    f"no journal {where.name} and no file {str(path)!r} to start from; "
                    "pass df (see prep_label_dataframe(filepaths, classes))"
                )
            if classes is not None and list(classes) != class_columns(table):
                raise ValueError(
                    f"the table at {str(path)!r} has classes {class_columns(table)}, "
                    f"not {list(classes)}; change classes with add_class/rename_class/"
                    "remove_class/merge_classes"
                )
            if not resume:
                journal.create(table)
        except BaseException:
            journal.close()
            if fresh:  # leave no empty journal behind
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{where}{suffix}").unlink(missing_ok=True)
            raise
        log.info(
            "opened %s: %d rows, %d actions replayed in %.2f s",
            where, len(table), pending, time.perf_counter() - start,
        )
        store = cls(path, journal, table, pending)
        if pending > COMPACT_AFTER:
            store.compact()
        return store

    # -- reading -------------------------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame:
        """The live label table (the same DataFrame object for the store's lifetime)."""
        return self._df

    @property
    def classes(self) -> list[str]:
        """The class names, in column order."""
        return list(self._tracker.classes)

    @property
    def counts(self) -> pd.DataFrame:
        """The :func:`label_counts` table, kept up to date per change."""
        with self._lock:
            return self._tracker.table()

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
    ) -> None:
        """Set fields of one row, durably.

        Parameters
        ----------
        row
            The row label (0 .. len(df) - 1).
        changes
            Field -> value. Classes take None/NaN, 0/1, 0.0/1.0 or False/True; the
            ``exclude`` and ``validation`` flags take True/False or 0/1.
        seconds
            How long the image was on screen, for time accounting.

        Raises
        ------
        ValueError
            For an unknown row or field or a bad value; nothing is then written.
        """
        self.annotate_many([row], changes, seconds)

    def annotate_many(
        self, rows: Iterable[int], changes: Mapping[str, object], seconds: float | None = None
    ) -> None:
        """Apply the same ``changes`` to several rows in one durable transaction.

        ``seconds`` is the time for the whole call. See :meth:`annotate`.
        """
        with self._lock:
            self._check_open()
            rows_arr = self._check_rows(rows)
            values = self._check_changes(changes)
            seconds = _check_seconds(seconds)
            grid = {
                field: np.full(len(rows_arr), value, dtype=bool if field in FLAGS else float)
                for field, value in values.items()
            }
            self._undo.append(self._commit("annotate", rows_arr, grid, seconds=seconds))

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
            self._check_open()
            if not self._undo:
                return None
            target = self._undo[-1]
            events = self._journal.action_events(target)
            rows = np.array(sorted({event[0] for event in events}), dtype=np.intp)
            position = {row: i for i, row in enumerate(rows.tolist())}
            grid: dict[str, np.ndarray] = {}
            for row, field, old, _new in events:
                dtype = bool if field in FLAGS else float
                column = grid.setdefault(field, np.empty(len(rows), dtype=dtype))
                column[position[row]] = math.nan if old is None else old
            self._commit("undo", rows, grid, undoes=target)
            self._undo.pop()
            restored = {field: values.tolist() for field, values in grid.items()}
            return {"action": target, "rows": rows.tolist(), "restored": restored}

    def _commit(
        self,
        kind: str,
        rows: np.ndarray,
        grid: dict[str, np.ndarray],
        seconds: float | None = None,
        undoes: int | None = None,
    ) -> int:
        """Journal, then apply, new values for ``rows`` x fields; return the action id."""
        events: list[Event] = []
        for field, values in grid.items():
            old = self._read(field, rows)
            events += zip(rows.tolist(), repeat(field), as_db(old), as_db(values))
        moves = self._tracker.moves(rows, grid, self._read)
        action = self._journal.append(kind, events, seconds=seconds, undoes=undoes)
        for field, values in grid.items():
            column = self._position[field]
            if len(rows) == 1:
                self._df.iat[int(rows[0]), column] = values[0]
            else:
                self._df.iloc[rows, column] = values
        if moves is not None:
            self._tracker.change(*moves)
        self._pending += 1
        return action

    def _read(self, field: str, rows: np.ndarray) -> np.ndarray:
        """Current values of ``field`` at ``rows`` (by position: fast for one row)."""
        column = self._position[field]
        if len(rows) == 1:
            return np.array([self._df.iat[int(rows[0]), column]])
        return self._df.iloc[rows, column].to_numpy()

    def _check_rows(self, rows: Iterable[int]) -> np.ndarray:
        rows = list(rows)
        n = len(self._df)
        if not rows:
            raise ValueError("no rows given")
        for row in rows:
            if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
                raise ValueError(f"row {row!r} is not an integer row label")
            if not 0 <= row < n:
                raise ValueError(f"unknown row {row}; rows are 0 to {n - 1}")
        if len(set(rows)) != len(rows):
            raise ValueError(f"rows {rows} repeat a row")
        return np.array(rows, dtype=np.intp)

    def _check_changes(self, changes: Mapping[str, object]) -> dict[str, float | bool]:
        if not isinstance(changes, Mapping) or not changes:
            raise ValueError("changes must be a non-empty mapping of field to value")
        classes = self.classes
        checked: dict[str, float | bool] = {}
        for field, value in changes.items():
            if field in FLAGS:
                checked[field] = check_flag_value(field, value)
            elif field in classes:
                checked[field] = check_label_value(field, value)
            else:
                raise ValueError(f"unknown field {field!r}; fields are {classes + list(FLAGS)}")
        return checked

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
            self._check_open()
            events = class_edit_events(self._df, kind, detail)
            self._journal.append(kind, events, detail=detail)
            recount = apply_class_edit(self._df, kind, detail)
            if kind == "rename_class":
                self._tracker.rename(detail["old"], detail["new"])
            self._tracker.reset_classes(self._df, recount)
            self._position = {name: j for j, name in enumerate(self._df.columns)}
            self._undo.clear()
            self._pending += 1

    # -- files ---------------------------------------------------------------------------

    def export(self, path: str | os.PathLike | None = None) -> Path:
        """Write the table atomically to ``path`` (default: the store's path); return it."""
        target = self.path if path is None else Path(path)
        with self._lock:
            self._check_open()
            table = self._df.copy()
        save_labels(table, target)
        return target

    def compact(self) -> None:
        """Fold the actions since the last snapshot into a new snapshot."""
        with self._lock:
            self._check_open()
            if self._pending:
                start = time.perf_counter()
                self._journal.write_snapshot(self._df, self._journal.last_action())
                log.info(
                    "compacted %d actions into %s in %.2f s",
                    self._pending, self._journal.path, time.perf_counter() - start,
                )
                self._pending = 0

    def close(self, export: bool = True) -> None:
        """Export (unless ``export=False``), compact and close the journal; idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if export:
                    self.export()
                self.compact()
            finally:
                self._journal.close()
                self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the label store {str(self.path)!r} is closed")

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
        return f"LabelStore({str(self.path)!r}, rows={len(self._df)}, classes={self.classes})"

