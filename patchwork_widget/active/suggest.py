"""Which model outputs are worth accepting (B10): a pure, TF-free rule.

For an unlabeled class of a row the model suggests "yes" where ``p >= yes`` and "no" where
``p <= no`` (per-class thresholds, 0.9 and 0.1 by default); pressing accept writes exactly those
suggestions. Never "yes" for a class without positive training labels (such a model has never
seen one: its high outputs mean nothing); a NaN output (an unreadable image) suggests nothing;
a labeled class is never changed.

One label per image (``single_label=True``, for a softmax model on a one-label-per-image table):
a row is suggested as a whole. Its candidate is the arg-max over the classes that are
unlabeled, have an output and have positive training labels; when the candidate's ``p`` clears
its ``yes`` threshold, accept writes "yes" for it and "no" for every other unlabeled class with
an output; otherwise nothing. A row that already has a "yes" gets nothing, and accept never
writes a row of "no" only.

For the view, each class of a row has a strength: ``solid`` (accept writes it), ``faint`` (the
model has an output but accept leaves the class alone: between the thresholds, or a "yes" the
rule forbids) or ``none`` (already labeled, or no output). Measured precision and recall on the
demo are in docs/training.md.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Sequence
from typing import Any, Dict

import numpy as np

from patchwork_widget.options.project import DEFAULT_NO, DEFAULT_YES

__all__ = ["DEFAULT_NO", "DEFAULT_YES", "Strength", "accept_changes", "has_positive_labels",
           "strengths", "suggestions"]


class Strength(str, enum.Enum):
    """How the view shows a class's suggestion."""

    SOLID = "solid"  # accept writes it
    FAINT = "faint"  # an output accept leaves alone
    NONE = "none"  # labeled already, or no output


def _thresholds(value: Any, name: str, c: int, yes_side: bool) -> np.ndarray:
    """A threshold per class from a number or a sequence of ``c`` numbers: ``yes`` in
    (0.5, 1], ``no`` in [0, 0.5); in a sequence, NaN for none on that side (a class whose
    precision could not be estimated: :mod:`patchwork_widget.active.thresholds`)."""
    scalar = isinstance(value, numbers.Real)
    if not scalar and (isinstance(value, (str, bytes)) or not isinstance(value, Sequence)
                       and not isinstance(value, np.ndarray)):
        raise ValueError(f"{name} must be a number or one number per class; got {value!r}")
    values = [value] * c if scalar else list(value)
    if len(values) != c:
        raise ValueError(f"{name} must be a number or one number per class ({c}); got "
                         f"{len(values)} numbers")
    allowed = "(0.5, 1]" if yes_side else "[0, 0.5)"
    for v in values:
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isinf(v)
        none = ok and not scalar and math.isnan(v)  # per class only: no suggestion
        if not ok or not (none or ((0.5 < v <= 1.0) if yes_side else (0.0 <= v < 0.5))):
            raise ValueError(f"{name} thresholds must be numbers in {allowed}; got {v!r}")
    return np.asarray(values, dtype=np.float64)


def _single_label(p: np.ndarray, y: np.ndarray, pos: np.ndarray, y_t: np.ndarray
                  ) -> np.ndarray:
    """The one-label-per-image rule of the module docstring on checked inputs."""
    out = np.full(p.shape, np.nan)
    open_ = np.isnan(y) & ~np.isnan(p)
    candidates = np.where(open_ & pos, p, -np.inf)
    top = candidates.argmax(axis=1)
    rows = np.arange(len(p))
    best = candidates[rows, top]
    write = (best >= y_t[top]) & ~(y == 1).any(axis=1)
    out[write] = np.where(open_[write], 0.0, np.nan)
    out[rows[write], top[write]] = 1.0
    return out


def _inputs(probs: Any, labels: Any, has_positives: Any, yes: Any, no: Any):
    p = np.asarray(probs, dtype=np.float64)
    single = p.ndim == 1
    p = p[None, :] if single else p
    if p.ndim != 2:
        raise ValueError(f"probs must be one row (C,) or rows (N, C); got shape {p.shape}")
    if labels is None:
        y = np.full(p.shape, np.nan)
    else:
        y = np.asarray(labels, dtype=np.float64)
        if y.size != p.size:
            raise ValueError(f"labels must have the shape of probs {p.shape}; got {y.shape}")
        y = y.reshape(p.shape)
    pos = np.asarray(has_positives, dtype=bool)
    c = p.shape[1]
    if pos.shape != (c,):
        raise ValueError(f"has_positives must have one entry per class ({c}); got shape "
                         f"{pos.shape}")
    return p, y, pos, _thresholds(yes, "yes", c, True), _thresholds(no, "no", c, False), single


def suggestions(probs: Any, labels: Any, has_positives: Any, yes: Any = DEFAULT_YES,
                no: Any = DEFAULT_NO, single_label: bool = False) -> np.ndarray:
    """What accept would write: 1.0 ("yes"), 0.0 ("no") or NaN (nothing), same shape as
    ``probs``.

    Parameters
    ----------
    probs : array-like
        Model outputs of one row (C,) or of rows (N, C); NaN where there is none.
    labels : array-like or None
        The rows' current labels (NaN = unlabeled); labeled classes get NaN.
    has_positives : array-like of bool
        (C,): whether the model's training labels hold a positive of each class.
    yes, no : float or sequence of float
        Per-class thresholds: "yes" where ``p >= yes`` (``yes`` in (0.5, 1]), "no" where
        ``p <= no`` (``no`` in [0, 0.5)); a per-class NaN: none on that side.
    single_label : bool
        One label per image: the row-wise rule of the module docstring (``no`` is unused).
    """
    _check_single_label(single_label)
    p, y, pos, y_t, n_t, single = _inputs(probs, labels, has_positives, yes, no)
    if single_label:
        out = _single_label(p, y, pos, y_t)
        return out[0] if single else out
    out = np.full(p.shape, np.nan)
    open_ = np.isnan(y) & ~np.isnan(p)
    out[open_ & (p <= n_t)] = 0.0
    out[open_ & (p >= y_t) & pos] = 1.0
    return out[0] if single else out


def strengths(probs: Any, labels: Any, has_positives: Any, yes: Any = DEFAULT_YES,
              no: Any = DEFAULT_NO, single_label: bool = False) -> np.ndarray:
    """:class:`Strength` values (as strings) for the view, same shape as ``probs``."""
    p, y, pos, y_t, n_t, single = _inputs(probs, labels, has_positives, yes, no)
    written = ~np.isnan(suggestions(p, y, pos, y_t.tolist(), n_t.tolist(), single_label))
    out = np.full(p.shape, Strength.NONE.value, dtype=object)
    out[np.isnan(y) & ~np.isnan(p)] = Strength.FAINT.value
    out[written] = Strength.SOLID.value
    return out[0] if single else out


def accept_changes(probs: Any, labels: Any, classes: Sequence[str], has_positives: Any,
                   yes: Any = DEFAULT_YES, no: Any = DEFAULT_NO,
                   single_label: bool = False) -> Dict[str, float]:
    """The labels accept writes for one row: ``{class: 1.0 or 0.0}`` (empty: nothing)."""
    out = suggestions(probs, labels, has_positives, yes, no, single_label)
    if out.ndim != 1 or len(out) != len(classes):
        raise ValueError(f"accept_changes takes one row of {len(classes)} classes; got "
                         f"shape {out.shape}")
    return {c: float(v) for c, v in zip(classes, out) if not math.isnan(v)}


def _check_single_label(value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"single_label must be True or False; got {value!r}")


def has_positive_labels(labels: Any, rows: Any = None) -> np.ndarray:
    """(C,) bool: which classes have a positive label among ``rows`` (a mask or positions;
    default all) of ``labels`` (N, C; NaN = missing): e.g. the model's training rows."""
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"labels must have shape (N, C); got {y.shape}")
    if rows is not None:
        y = y[np.asarray(rows)]
    return (y == 1).any(axis=0)
