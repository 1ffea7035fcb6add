"""How journal actions change a label table: class edits and cell-event replay."""

from __future__ import annotations

import json
from itertools import repeat

import numpy as np
import pandas as pd

from .records import CLASS_EDITS, Event
from .schema import (
    add_class_inplace,
    check_merge,
    merge_classes_inplace,
    merge_values,
    remove_class_inplace,
    rename_class_inplace,
    require_class,
    require_new_class_name,
)


def as_db(values: np.ndarray) -> list[float | None]:
    """Array -> list of floats for SQLite, with NaN as NULL."""
    return [None if v != v else float(v) for v in values.tolist()]


def _changed_cells(field: str, old: np.ndarray, new: np.ndarray) -> list[Event]:
    """Events for the cells where ``old`` and ``new`` differ (NaN equals NaN)."""
    rows = np.flatnonzero(~((old == new) | (np.isnan(old) & np.isnan(new))))
    return list(zip(rows.tolist(), repeat(field), as_db(old[rows]), as_db(new[rows])))


def class_edit_events(df: pd.DataFrame, kind: str, detail: dict) -> list[Event]:
    """Validate a class edit on ``df`` and return the cell events it implies.

    Removing or merging records every value that disappears or changes, so the history
    keeps them; adding and renaming change no value. For a merge, ``detail["into"]`` is
    filled in when it is None.
    """
    if kind == "add_class":
        require_new_class_name(df, detail["name"])
        return []
    if kind == "rename_class":
        require_class(df, detail["old"])
        require_new_class_name(df, detail["new"], replacing=[detail["old"]])
        return []
    if kind == "remove_class":
        require_class(df, detail["name"])
        old = df[detail["name"]].to_numpy()
        return _changed_cells(detail["name"], old, np.full(len(df), np.nan))
    a, b = detail["a"], detail["b"]
    into = detail["into"] = check_merge(df, a, b, detail["into"])
    merged = merge_values(df[a].to_numpy(), df[b].to_numpy())
    nothing = np.full(len(df), np.nan)
    events = []
    for name in (a, b):
        if name != into:
            events += _changed_cells(name, df[name].to_numpy(), nothing)
    old_into = df[into].to_numpy() if into in (a, b) else nothing
    return events + _changed_cells(into, old_into, merged)


def apply_class_edit(df: pd.DataFrame, kind: str, detail: dict) -> list[str]:
    """Apply a class edit to ``df`` in place; return the classes whose values changed.

    The edit is a recorded one (checked by :func:`class_edit_events` when it was made, or
    replayed from a journal), so its names are not held to the class name rule again: a
    journal written before the rule existed still opens."""
    if kind == "add_class":
        add_class_inplace(df, detail["name"], new=False)
        return [detail["name"]]
    if kind == "rename_class":
        rename_class_inplace(df, detail["old"], detail["new"], recorded=True)
        return []
    if kind == "remove_class":
        remove_class_inplace(df, detail["name"])
        return []
    return [merge_classes_inplace(df, detail["a"], detail["b"], detail["into"], new=False)]


def _apply_cell_events(df: pd.DataFrame, events: pd.DataFrame) -> None:
    """Apply cell events (in order) at once: the last value per (row, field) wins."""
    latest = events.drop_duplicates(["row", "field"], keep="last")
    for field, group in latest.groupby("field", sort=False):
        column = df[field].to_numpy(copy=True)
        column[group["row"].to_numpy()] = group["new"].to_numpy()
        df[field] = column


def replay(df: pd.DataFrame, actions: pd.DataFrame, events: pd.DataFrame) -> None:
    """Apply journal actions and their events to ``df`` in place.

    Cell events between two class edits are applied in one vectorised step each.
    """
    previous = 0
    edits = actions[actions["kind"].isin(CLASS_EDITS)]
    for action, kind, detail in zip(edits["id"], edits["kind"], edits["detail"]):
        between = (events["action"] > previous) & (events["action"] < action)
        _apply_cell_events(df, events[between])
        apply_class_edit(df, kind, json.loads(detail))
        previous = action
    _apply_cell_events(df, events[events["action"] > previous])
