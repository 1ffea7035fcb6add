"""Suggestion thresholds chosen for a precision target (B10), from held-out predictions.

Fixed thresholds (0.9 / 0.1) write wrong labels whenever the model is mediocre. Instead, per
class, the "yes" threshold is the lowest output at which the estimated precision of the "yes"
written at or above it reaches ``target``, and the "no" threshold the highest output at which
the estimated precision of the "no" written at or below it does. The estimate comes from
held-out predictions: the validation rows' when there are enough, else out-of-fold predictions
of the training labels (:func:`patchwork_widget.models.convex.out_of_fold`). A precision is
estimated by the median of its Jeffreys posterior, ``Beta(right + 1/2, wrong + 1/2)``
(Brown, Cai and DasGupta 2001), so a handful of held-out rows never reaches 0.95 (ten right
of ten reach 0.98, five 0.96, two 0.90): a class with too few held-out rows past any
threshold gets NaN, which suggests nothing on that side. (The lower end of a one-sided 80%
interval reached the target on every held-out set but left nothing to write on most of them
below 120 labels: ``benchmarks/bench_single_label.py``.)

``target`` is meant per accepted row: a row takes a "yes" and up to C - 1 "no", so the "no"
side of each class must reach ``1 - (1 - target) / C`` for the row's "no" together to keep
the target; the "yes" side reaches ``target``.

One label per image: the row's arg-max class is written "yes" and the rest "no" together, so a
row is right exactly when its arg-max is. The threshold of class ``c`` applies to the rows whose
arg-max is ``c``; "no" thresholds are NaN (the rule writes no "no" on its own).

TF-free: NumPy and pandas.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy.stats import beta

from patchwork_widget.options.checks import check_names

__all__ = ["DEFAULT_TARGET", "QUALITY_COLUMNS", "choose_thresholds", "precision_at"]

DEFAULT_TARGET = 0.95
LEVEL = 0.5  # the precision estimate is this quantile of the Jeffreys posterior
QUALITY_COLUMNS = ("yes_threshold", "yes_precision", "yes_coverage", "no_threshold",
                   "no_precision", "no_coverage", "heldout")


def precision_at(right: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For outcomes ``right`` (bool) sorted from the most to the least confident output: the
    estimated precision (the Jeffreys posterior's median) of writing the first ``k`` of them,
    and ``k``, for k = 1..n."""
    hits = np.cumsum(np.asarray(right, dtype=np.float64))
    k = np.arange(1, len(hits) + 1, dtype=np.float64)
    return beta.ppf(1.0 - LEVEL, hits + 0.5, k - hits + 0.5), k


def _side(scores: np.ndarray, right: np.ndarray, target: float, descending: bool,
          n_all: int) -> Tuple[float, float, float]:
    """``(threshold, precision, coverage)`` of one side of one class; NaN threshold when the
    target is never reached. ``coverage`` is the share of the ``n_all`` held-out rows written."""
    if not len(scores):
        return math.nan, math.nan, 0.0
    order = np.argsort(-scores if descending else scores, kind="stable")
    s, r = scores[order], right[order]
    precision, k = precision_at(r)
    # only cut between distinct outputs (a threshold writes every row with an equal output),
    # and within the rule's ranges: "yes" above 0.5, "no" below
    last_of_value = np.append(s[1:] != s[:-1], True)
    allowed = s > 0.5 if descending else s < 0.5
    ok = np.flatnonzero(last_of_value & allowed & (precision >= target))
    if not len(ok):
        return math.nan, math.nan, 0.0
    i = int(ok[-1])  # the most rows written with the target still met
    return float(s[i]), float(precision[i]), float(k[i] / max(n_all, 1))


def choose_thresholds(probs: Any, labels: Any, classes: Sequence[str],
                      target: float = DEFAULT_TARGET, single_label: bool = False,
                      ) -> pd.DataFrame:
    """Per-class thresholds for a precision target, from held-out predictions.

    Parameters
    ----------
    probs : array-like
        (n, C) held-out model outputs (validation rows, or out-of-fold predictions).
    labels : array-like
        (n, C) their labels: 1.0, 0.0 or NaN (not labeled).
    classes : sequence of str
        Class names, one per column.
    target : float
        Precision to reach per accepted row, in (0.5, 1) (see the module docstring).
    single_label : bool
        One label per image (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Indexed by class, columns :data:`QUALITY_COLUMNS`: ``yes_threshold`` (NaN: no "yes"
        suggestion), ``yes_precision`` (estimated), ``yes_coverage`` (share of the held-out
        rows labeled for the class that the threshold writes "yes"), the same for "no", and
        ``heldout`` (held-out rows labeled for the class; one label per image: its held-out
        "yes"). Thresholds stay in the rule's ranges: "yes" above 0.5, "no" below.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    classes = check_names("classes", classes, what="class name")
    if p.ndim != 2 or p.shape != y.shape or p.shape[1] != len(classes):
        raise ValueError(f"probs and labels must both have shape (n, {len(classes)}); got "
                         f"{p.shape} and {y.shape}")
    ok = isinstance(target, numbers.Real) and not isinstance(target, bool)
    if not ok or not 0.5 < target < 1.0:
        raise ValueError(f"target must be a precision in (0.5, 1); got {target!r}")
    if not isinstance(single_label, (bool, np.bool_)):
        raise ValueError(f"single_label must be True or False; got {single_label!r}")
    rows = []
    if single_label:
        usable = ((y == 1).sum(axis=1) == 1) & ~np.isnan(p).any(axis=1)
        top = p[usable].argmax(axis=1)
        right = (y[usable] == 1)[np.arange(int(usable.sum())), top]
        for j in range(len(classes)):
            mine = top == j
            t, prec, cover = _side(p[usable][mine, j], right[mine], target, True,
                                   int(usable.sum()))
            rows.append([t, prec, cover, math.nan, math.nan, 0.0, int((y[usable, j] == 1).sum())])
    else:
        for j in range(len(classes)):
            keep = ~np.isnan(y[:, j]) & ~np.isnan(p[:, j])
            pj, yj = p[keep, j], y[keep, j]
            yes = _side(pj, yj == 1, target, True, len(pj))
            no = _side(pj, yj == 0, 1.0 - (1.0 - target) / len(classes), False, len(pj))
            rows.append([*yes, *no, int(keep.sum())])
    out = pd.DataFrame(rows, index=pd.Index(classes, name="class"), columns=QUALITY_COLUMNS)
    return out.astype({"heldout": int})
