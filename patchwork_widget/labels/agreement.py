"""Agreement between annotators, from a store's history (issue 16).

Each annotator's value for a (row, class) is the last one they set by an ``annotate``
call that is not undone (NaN, "unlabeled", is no value). :func:`pairwise_kappa` gives
Cohen's kappa for each pair of annotators and class over the rows both labeled (equal to
scikit-learn's ``cohen_kappa_score`` on the same pairs); :func:`krippendorff_alpha`
gives nominal Krippendorff's alpha per class and over all classes, over the rows that two
or more annotators labeled; :func:`disagreements` lists the cells to review and
:func:`disagreeing_rows` marks their rows (the widget's "disagreements" subset).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from .schema import FLAGS

KAPPA_COLUMNS = ["class", "annotator_a", "annotator_b", "items", "kappa"]
ALPHA_COLUMNS = ["class", "items", "alpha"]
#: The ``class`` of :func:`krippendorff_alpha`'s row over all classes.
ALL_CLASSES = "(all)"


def annotator_values(history: pd.DataFrame) -> pd.DataFrame:
    """Each annotator's standing value per (row, class): columns ``row``, ``field``,
    ``user``, ``value`` (labeled cells only)."""
    cells = history[
        (history["kind"] == "annotate") & ~history["undone"] & ~history["field"].isin(FLAGS)
    ]
    last = cells.drop_duplicates(["row", "field", "user"], keep="last")
    last = last[last["new"].notna()]
    return last.rename(columns={"new": "value"})[["row", "field", "user", "value"]]


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels of the same items (NaN when undefined)."""
    categories, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    k, n = len(categories), len(a)
    if n == 0:
        return float("nan")
    confusion = np.zeros((k, k))
    np.add.at(confusion, (codes[:n], codes[n:]), 1)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    disagree = ~np.eye(k, dtype=bool)
    denominator = expected[disagree].sum()
    if denominator == 0:
        return float("nan")
    return float(1 - confusion[disagree].sum() / denominator)


def pairwise_kappa(history: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa per class and pair of annotators, over the rows both labeled.

    Columns ``class``, ``annotator_a``, ``annotator_b`` (sorted), ``items`` and
    ``kappa`` (NaN when undefined: no shared rows, or both always gave the same one value).
    """
    values = annotator_values(history)
    out = []
    for field, group in values.groupby("field", sort=False):
        wide = group.pivot(index="row", columns="user", values="value")
        for a, b in combinations(sorted(wide.columns), 2):
            both = wide[[a, b]].dropna()
            out.append((field, a, b, len(both), cohen_kappa(both[a].to_numpy(),
                                                            both[b].to_numpy())))
    return pd.DataFrame(out, columns=KAPPA_COLUMNS)


def _alpha(units: list[np.ndarray]) -> tuple[int, float]:
    """Nominal Krippendorff's alpha over units (each the values given to one item)."""
    units = [u for u in units if len(u) >= 2]
    if not units:
        return 0, float("nan")
    categories = np.unique(np.concatenate(units))
    coincidence = np.zeros((len(categories), len(categories)))
    for unit in units:
        counts = np.array([(unit == c).sum() for c in categories], dtype=float)
        coincidence += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    totals = coincidence.sum(axis=1)
    n = totals.sum()
    disagree = ~np.eye(len(categories), dtype=bool)
    expected = (np.outer(totals, totals)[disagree].sum()) / (n - 1)
    if expected == 0:
        return len(units), float("nan")
    return len(units), float(1 - coincidence[disagree].sum() / expected)


def krippendorff_alpha(history: pd.DataFrame) -> pd.DataFrame:
    """Nominal Krippendorff's alpha per class, and over all classes (class ``"(all)"``,
    each (row, class) one item), over the items two or more annotators labeled.

    Columns ``class``, ``items`` and ``alpha`` (NaN when undefined).
    """
    values = annotator_values(history)
    groups = {
        key: group["value"].to_numpy() for key, group in values.groupby(["field", "row"])
    }
    out = []
    for field in values["field"].unique():
        out.append((field, *_alpha([v for (f, _), v in groups.items() if f == field])))
    out.append((ALL_CLASSES, *_alpha(list(groups.values()))))
    return pd.DataFrame(out, columns=ALPHA_COLUMNS)


def disagreements(history: pd.DataFrame) -> pd.DataFrame:
    """The (row, class) cells where annotators' standing values differ, to review.

    Returns
    -------
    pandas.DataFrame
        One row per cell, sorted by ``row`` then ``field``: columns ``row``, ``field``
        and one column per annotator (their value, NaN if they gave none).
    """
    values = annotator_values(history)
    wide = values.pivot_table(index=["row", "field"], columns="user", values="value")
    split = wide.nunique(axis=1) > 1
    out = wide[split].reset_index()
    out.columns.name = None
    return out


def disagreeing_rows(history: pd.DataFrame, classes: Sequence[str], nrows: int) -> np.ndarray:
    """Boolean mask over ``nrows`` rows: where annotators' standing values differ for one
    of ``classes`` (the table's classes now; cells of removed classes do not count)."""
    cells = disagreements(history)
    rows = cells.loc[cells["field"].isin(list(classes)), "row"].to_numpy(dtype=np.intp)
    mask = np.zeros(nrows, dtype=bool)
    mask[rows[(rows >= 0) & (rows < nrows)]] = True
    return mask
