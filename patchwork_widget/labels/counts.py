"""Label counts per class, from scratch or kept incrementally (FEATURES L5).

Rows fall in the groups of :mod:`.groups` (train, validation, excluded). Each class value is
positive (1), negative (0) or missing (NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from .groups import RowGroup, group_codes
from .schema import class_columns

TRAIN, VALIDATION, EXCLUDED = RowGroup.TRAIN, RowGroup.VALIDATION, RowGroup.EXCLUDED
POSITIVE, NEGATIVE, MISSING = 0, 1, 2

COLUMNS = [
    "train_positive",
    "train_negative",
    "train_missing",
    "validation_positive",
    "validation_negative",
    "validation_missing",
    "excluded",
    "total",
]


def value_codes(values: np.ndarray) -> np.ndarray:
    """Value code per label: POSITIVE for 1, NEGATIVE for 0, MISSING for NaN."""
    values = np.asarray(values, dtype=float)
    return np.where(values == 1, POSITIVE, np.where(values == 0, NEGATIVE, MISSING)).astype(
        np.intp
    )


def class_counts(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Counts of one class as a 3x3 array indexed by [group, value code]."""
    flat = groups * 3 + value_codes(values)
    return np.bincount(flat, minlength=9).reshape(3, 3)


def _table(classes: list[str], counts: np.ndarray) -> pd.DataFrame:
    if counts.size == 0:
        counts = np.zeros((0, 3, 3), dtype=np.int64)
    train, validation = counts[:, TRAIN, :], counts[:, VALIDATION, :]
    excluded = counts[:, EXCLUDED, :].sum(axis=1)
    total = counts.sum(axis=(1, 2))
    data = np.column_stack([train, validation, excluded, total]).astype(np.int64)
    index = pd.Index(classes, name="class", dtype=object)
    return pd.DataFrame(data.reshape(len(classes), len(COLUMNS)), index=index, columns=COLUMNS)


def label_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Count labels per class (FEATURES L5).

    Parameters
    ----------
    df
        A label table.

    Returns
    -------
    pandas.DataFrame
        One row per class (index named ``class``) and integer columns
        ``train_positive``, ``train_negative``, ``train_missing``,
        ``validation_positive``, ``validation_negative``, ``validation_missing``,
        ``excluded`` (rows with ``exclude`` set, whatever their labels) and ``total``
        (all rows). ``excluded`` and ``total`` are the same on every row.
    """
    classes = class_columns(df)
    groups = group_codes(df["exclude"].to_numpy(), df["validation"].to_numpy())
    counts = np.array([class_counts(df[c].to_numpy(), groups) for c in classes])
    return _table(classes, counts)


class CountTracker:
    """The table of :func:`label_counts`, updated per change instead of per scan.

    Parameters
    ----------
    df
        The label table to start from (scanned once).
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self.classes: list[str] = []
        self._counts = np.zeros((0, 3, 3), dtype=np.int64)
        self.reset_classes(df, recount=())

    def table(self) -> pd.DataFrame:
        """Return the counts as :func:`label_counts` shapes them."""
        return _table(list(self.classes), self._counts)

    def change(
        self,
        class_index: np.ndarray,
        old_groups: np.ndarray,
        old_values: np.ndarray,
        new_groups: np.ndarray,
        new_values: np.ndarray,
    ) -> None:
        """Move labels between cells; arrays hold one entry per (row, class) pair."""
        class_index = np.asarray(class_index, dtype=np.intp)
        np.subtract.at(self._counts, (class_index, old_groups, value_codes(old_values)), 1)
        np.add.at(self._counts, (class_index, new_groups, value_codes(new_values)), 1)

    def moves(
        self,
        rows: np.ndarray,
        new_values: dict[str, np.ndarray],
        read: Callable[[str, np.ndarray], np.ndarray],
    ) -> list[np.ndarray] | None:
        """Arguments of :meth:`change` for new values at ``rows``, or None if none.

        Call before the table changes; ``read(field, rows)`` gives current values. Every
        class of a row that changes group (through its flags) moves; otherwise only the
        classes in ``new_values`` do.
        """
        old_exclude = read("exclude", rows)
        old_validation = read("validation", rows)
        old_groups = group_codes(old_exclude, old_validation)
        new_groups = group_codes(
            new_values.get("exclude", old_exclude), new_values.get("validation", old_validation)
        )
        moved = old_groups != new_groups
        parts = []
        for k, name in enumerate(self.classes):
            if name in new_values:
                mask = np.ones(len(rows), dtype=bool)
            elif moved.any():
                mask = moved
            else:
                continue
            old = read(name, rows)[mask]
            new = new_values[name][mask] if name in new_values else old
            parts.append((np.full(len(old), k), old_groups[mask], old, new_groups[mask], new))
        return [np.concatenate(arrays) for arrays in zip(*parts)] if parts else None

    def rename(self, old: str, new: str) -> None:
        """Rename a class, keeping its counts."""
        self.classes[self.classes.index(old)] = new

    def reset_classes(self, df: pd.DataFrame, recount: Iterable[str]) -> None:
        """Follow ``df``'s class columns after a class edit.

        Classes that are new, or named in ``recount``, are counted from their column
        (one scan each); the others keep their counts.
        """
        recount = set(recount)
        known = dict(zip(self.classes, self._counts))
        groups = group_codes(df["exclude"].to_numpy(), df["validation"].to_numpy())
        self.classes = class_columns(df)
        rows = [
            known[c] if c in known and c not in recount else class_counts(df[c].to_numpy(), groups)
            for c in self.classes
        ]
        self._counts = np.array(rows, dtype=np.int64).reshape(len(self.classes), 3, 3)
