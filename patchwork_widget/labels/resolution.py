"""Which value a label cell shows when several annotators labeled it (issue 16).

Two rules:

- ``"latest"`` (the default): the value of the newest action that set the cell, whoever
  made it. The table applies actions in order, so nothing is to be done.
- ``"majority"``: once two or more annotators hold a value for a class cell, the cell
  shows the value most of them hold; a tie shows the latest value. An annotator's value
  is the last one they set by an ``annotate`` call not undone ("unlabeled" is no value),
  the same rule as :mod:`.agreement`. Flags (``exclude``, ``validation``) and cells one
  annotator labeled show the latest value.

:class:`Resolution` applies other stores' actions to the table (:meth:`Resolution.apply`)
and follows the store's own (:meth:`Resolution.follow`), setting the cells whose shown
value the rule changes. Undo needs no
action id: an undo reverts its annotator's newest annotate call not undone, so it removes
that annotator's newest value of each cell it touches.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from patchwork_widget.options.project import ResolutionRule

from .records import CLASS_EDITS, Change, Event
from .schema import FLAGS
from .table import LiveTable

RULES = tuple(ResolutionRule.values())

Cell = tuple[int, str]


def check_rule(rule: object) -> str:
    """``rule`` if it is one of :data:`RULES`, else ``ValueError``."""
    if rule not in RULES:
        raise ValueError(f"resolution must be one of {', '.join(map(repr, RULES))}; got {rule!r}")
    return str(rule)


class Resolution:
    """The shown value of each class cell under ``rule`` (one of :data:`RULES`).

    Not thread-safe by itself: the store calls it holding its lock, right after the
    table applied the same actions.
    """

    def __init__(self, rule: str = "latest") -> None:
        self.rule = check_rule(rule)
        self._votes: dict[Cell, dict[str, list[float]]] = {}  # cell -> user -> values set
        self._latest: dict[Cell, float] = {}  # cell -> the newest value set (latest wins)

    def apply(self, table: LiveTable, changes: list[Change]) -> None:
        """Apply ``changes`` (journaled actions, in order) to ``table`` and show each cell
        under the rule; under "majority" the batch is split at class edits, so a merge
        combines the values shown before it."""
        if self.rule == "latest":
            table.apply_changes(changes)
            return
        start = 0
        for end, change in enumerate(changes):
            if change.kind in CLASS_EDITS:
                for part in (changes[start:end], [change]):
                    table.apply_changes(part)
                    self.follow(table, part)
                start = end + 1
        table.apply_changes(changes[start:])
        self.follow(table, changes[start:])

    def follow(self, table: LiveTable, changes: Iterable[Change]) -> None:
        """Show each cell ``changes`` set under the rule, once ``table`` applied them as
        latest-wins (the store's own commit: the table set its cells already)."""
        if self.rule == "latest":
            return
        touched: set[Cell] = set()
        for change in changes:
            if change.kind in CLASS_EDITS:
                moved = self._class_edit(change.kind, json.loads(change.detail))
                touched = {(row, moved.get(field, field)) for row, field in touched
                           if moved.get(field, field) is not None}
                continue
            for row, field, new in zip(change.rows, change.fields, change.new):
                if field in FLAGS:
                    continue
                cell = (int(row), field)
                value = math.nan if new is None else float(new)
                stack = self._votes.setdefault(cell, {}).setdefault(change.user, [])
                if change.kind == "undo":
                    if stack:
                        stack.pop()
                else:
                    stack.append(value)
                self._latest[cell] = value
                touched.add(cell)
        self._show(table, touched)

    def committed(self, table: LiveTable, action: int, kind: str, user: str,
                  events: list[Event], detail: dict | None = None) -> None:
        """:meth:`follow` the store's own action (its cell ``events``, or a class edit's
        ``detail``), which the table applied already."""
        if self.rule == "latest":
            return
        rows, fields, _, new = (list(c) for c in zip(*events)) if events else ([],) * 4
        self.follow(table, [Change(action, kind, None if detail is None else json.dumps(detail),
                                   user, rows, fields, new)])

    def shown(self, cell: Cell) -> float:
        """The value ``cell`` shows under the rule (it must have been set)."""
        held = [stack[-1] for stack in self._votes.get(cell, {}).values()
                if stack and not math.isnan(stack[-1])]
        if len(held) >= 2:
            (top, n), *rest = Counter(held).most_common()
            if not rest or rest[0][1] < n:
                return top
        return self._latest[cell]

    def latest_table(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` (the shown table) with the latest-wins value in every cell, as
        every store replays the journal: what a snapshot of the journal must hold (``df``
        itself when no cell was followed, as under "latest")."""
        if not self._latest:
            return df
        out = df.copy()
        for (row, field), value in self._latest.items():
            out.iat[row, out.columns.get_loc(field)] = value
        return out

    def _class_edit(self, kind: str, detail: dict) -> dict[str, str | None]:
        """Carry the votes over a class edit: renamed with their class, dropped with a
        removed one; a merged class shows the merge of the shown values (no votes).
        Returns old class -> new name (None: gone)."""
        if kind == "rename_class":
            moved = {detail["old"]: detail["new"]}
        elif kind == "remove_class":
            moved = {detail["name"]: None}
        elif kind == "merge_classes":
            moved = {detail["a"]: None, detail["b"]: None}
        else:
            return {}
        for store in (self._votes, self._latest):
            for row, field in [cell for cell in store if cell[1] in moved]:
                value = store.pop((row, field))
                if moved[field] is not None:
                    store[(row, moved[field])] = value
        return moved

    def _show(self, table: LiveTable, cells: set[Cell]) -> None:
        by_field: dict[str, tuple[list[int], list[float]]] = {}
        for row, field in sorted(cells):
            rows, values = by_field.setdefault(field, ([], []))
            rows.append(row)
            values.append(self.shown((row, field)))
        for field, (rows, values) in by_field.items():
            table.set(np.array(rows, dtype=np.intp), {field: np.array(values, dtype=float)})
