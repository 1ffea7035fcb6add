"""The row groups of a label table: one definition used everywhere (counts, sampler, training,
predictions, subsets, histograms).

Every row is in exactly one group, decided by its flags alone:

- ``excluded``: the ``exclude`` flag is set (whatever else is set); never trained on, never
  validated on, never offered again by the model-based orders;
- ``validation``: not excluded, ``validation`` flag set; held out to measure the model;
- ``train``: neither flag; the rows the model learns from.

Whether a row is *labeled* is a second, independent question (per class: 1, 0 or NaN);
:func:`labeled_classes` answers it.
"""

from __future__ import annotations

import enum

import numpy as np
import pandas as pd


class RowGroup(enum.IntEnum):
    """Group code of a row; the values index count arrays."""

    TRAIN = 0
    VALIDATION = 1
    EXCLUDED = 2


def group_codes(exclude: np.ndarray, validation: np.ndarray) -> np.ndarray:
    """A :class:`RowGroup` code per row from the two flag columns."""
    exclude = np.asarray(exclude, dtype=bool)
    validation = np.asarray(validation, dtype=bool)
    return np.where(
        exclude, RowGroup.EXCLUDED, np.where(validation, RowGroup.VALIDATION, RowGroup.TRAIN)
    ).astype(np.intp)


def row_groups(df: pd.DataFrame) -> np.ndarray:
    """A :class:`RowGroup` code per row of a label table."""
    return group_codes(df["exclude"].to_numpy(), df["validation"].to_numpy())


def excluded_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows whose ``exclude`` flag is set."""
    return df["exclude"].to_numpy(dtype=bool)


def validation_mask(df: pd.DataFrame) -> np.ndarray:
    """Validation rows: ``validation`` set and not excluded."""
    return row_groups(df) == RowGroup.VALIDATION


def train_mask(df: pd.DataFrame) -> np.ndarray:
    """Training rows: neither excluded nor validation."""
    return row_groups(df) == RowGroup.TRAIN


def labeled_classes(df: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """How many of ``classes`` each row has a label (0 or 1) for."""
    if not classes:
        return np.zeros(len(df), dtype=np.intp)
    return df[list(classes)].notna().to_numpy().sum(axis=1)
