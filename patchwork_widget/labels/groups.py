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


# Knuth's multiplicative hash constant (2^32 / golden ratio): spreads consecutive row numbers
# evenly over [0, 2^32), so a share of any run of rows is picked, the same one every time.
_HASH = np.uint64(2654435761)


def holdout_mask(df: pd.DataFrame, classes: list[str], share: float) -> np.ndarray:
    """Training rows to hold out as validation rows when no validation row holds a label.

    The pick depends on the row number alone (a fixed hash), so an image held out stays held
    out as more are labeled; about ``share`` of the labeled training rows are picked. None is
    picked when some validation row holds a label (the user's choice stands), when ``share``
    is 0, or when the pick would take every labeled training row (nothing left to train on).

    Parameters
    ----------
    df : pandas.DataFrame
        A label table (its ``exclude`` and ``validation`` flags and ``classes`` columns).
    classes : list of str
        The class columns.
    share : float
        In [0, 1).

    Returns
    -------
    numpy.ndarray
        A boolean mask over the rows.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1); got {share!r}")
    labeled = labeled_classes(df, classes) > 0
    none = np.zeros(len(df), dtype=bool)
    if share == 0.0 or (validation_mask(df) & labeled).any():
        return none
    rows = np.arange(len(df), dtype=np.uint64)
    hashed = ((rows * _HASH) & np.uint64(0xFFFFFFFF)).astype(np.float64) / 2.0**32
    mask = train_mask(df) & labeled & (hashed < share)
    return none if mask.sum() == (train_mask(df) & labeled).sum() else mask
