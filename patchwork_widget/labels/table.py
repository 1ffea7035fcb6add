"""The live label table of a LabelStore: one DataFrame changed in place, with its counts."""

from __future__ import annotations

import json
import math
from itertools import repeat

import numpy as np
import pandas as pd

from .counts import CountTracker
from .records import CLASS_EDITS, Change, Event
from .replay import apply_class_edit, as_db, class_edit_events
from .schema import FLAGS


class LiveTable:
    """A label DataFrame (always the same object) and its incrementally kept counts.

    Not thread-safe by itself: the store calls it holding its lock.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.tracker = CountTracker(df)
        self._position = {name: j for j, name in enumerate(df.columns)}

    @property
    def classes(self) -> list[str]:
        """The class names, in column order."""
        return list(self.tracker.classes)

    def read(self, field: str, rows: np.ndarray) -> np.ndarray:
        """Current values of ``field`` at ``rows`` (by position: fast for one row)."""
        column = self._position[field]
        if len(rows) == 1:
            return np.array([self.df.iat[int(rows[0]), column]])
        return self.df.iloc[rows, column].to_numpy()

    def cell_events(self, rows: np.ndarray, grid: dict[str, np.ndarray]) -> list[Event]:
        """The (row, field, old, new) events of setting ``grid`` (field -> values) at ``rows``."""
        events: list[Event] = []
        for field, values in grid.items():
            old = self.read(field, rows)
            events += zip(rows.tolist(), repeat(field), as_db(old), as_db(values))
        return events

    def set(self, rows: np.ndarray, grid: dict[str, np.ndarray]) -> None:
        """Set ``grid`` (field -> one value per row) at ``rows`` and update the counts."""
        moves = self.tracker.moves(rows, grid, self.read)
        for field, values in grid.items():
            column = self._position[field]
            if len(rows) == 1:
                self.df.iat[int(rows[0]), column] = values[0]
            else:
                self.df.iloc[rows, column] = values
        if moves is not None:
            self.tracker.change(*moves)

    def class_edit_events(self, kind: str, detail: dict) -> list[Event]:
        """Validate a class edit; return the cell events it implies (see :mod:`.replay`)."""
        return class_edit_events(self.df, kind, detail)

    def apply_class_edit(self, kind: str, detail: dict) -> None:
        """Apply a validated class edit in place and recount what it changed."""
        recount = apply_class_edit(self.df, kind, detail)
        if kind == "rename_class":
            self.tracker.rename(detail["old"], detail["new"])
        self.tracker.reset_classes(self.df, recount)
        self._position = {name: j for j, name in enumerate(self.df.columns)}

    def apply_changes(self, changes: list[Change]) -> None:
        """Apply journaled actions (e.g. other annotators') in order, counts included."""
        for change in changes:
            if change.kind in CLASS_EDITS:
                self.apply_class_edit(change.kind, json.loads(change.detail))
                continue
            cells: dict[str, tuple[list[int], list[float | None]]] = {}
            for row, field, new in zip(change.rows, change.fields, change.new):
                rows, values = cells.setdefault(field, ([], []))
                rows.append(row)
                values.append(new)
            grids: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
            for field, (rows, values) in cells.items():  # one set per row list: usually one
                column = np.array(values, dtype=float)
                grid = grids.setdefault(tuple(rows), {})
                grid[field] = column.astype(bool) if field in FLAGS else column
            for rows, grid in grids.items():
                self.set(np.array(rows, dtype=np.intp), grid)


def undo_grid(events: list[Event]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rows and field -> values that restore the old values of an action's ``events``."""
    rows = np.array(sorted({event[0] for event in events}), dtype=np.intp)
    position = {row: i for i, row in enumerate(rows.tolist())}
    grid: dict[str, np.ndarray] = {}
    for row, field, old, _new in events:
        dtype = bool if field in FLAGS else float
        column = grid.setdefault(field, np.empty(len(rows), dtype=dtype))
        column[position[row]] = math.nan if old is None else old
    return rows, grid


def constant_grid(n: int, values: dict[str, float | bool]) -> dict[str, np.ndarray]:
    """Field -> ``n`` copies of its value (bool for flags, float for classes)."""
    return {
        field: np.full(n, value, dtype=bool if field in FLAGS else float)
        for field, value in values.items()
    }
