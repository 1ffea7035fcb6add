"""Label propagation over a normalised kNN graph, per class, for partial multi-hot labels (A4).

Every class ``c`` has two channels: a positive one seeded with the rows labeled 1 and a
negative one seeded with the rows labeled 0 (rows with no label for ``c`` seed neither). After
propagation a row's score is ``positive / (positive + negative)``: in [0, 1], 0.5 being the
decision point, and exactly 0.5 for a row that no label reaches.

Balanced channels (``balance=True``): each channel's propagated mass is divided by its number of
seeds before the ratio is taken, the class mass normalisation of Zhu, Ghahramani and Lafferty
2003 ("Semi-Supervised Learning Using Gaussian Fields and Harmonic Functions", ICML). Without it
a class labeled on 1 row in C has C-1 times more negative seeds than positive ones and its scores
lean to "no". Measured (``benchmarks/bench_pseudo_labels.py``, 5% labeled, 4 multi-class
sets), balancing multiplies the "yes" coverage of 0.9-threshold pseudo-labels by 1.7-3x but
lowers their precision from 0.87-0.99 to 0.69-0.96, below 0.95 on three of the four sets, so
it is not the default. The negative channel is total minus positive, so balancing costs
nothing. Two methods:

* ``"bai"``: Bai et al. 2021 ("Self-supervised Semi-supervised Learning for Data Labeling and
  Quality Evaluation", arXiv:2111.10932): ``F <- S F`` for ``iterations`` steps, the known
  labels clamped back after every step (Zhu and Ghahramani 2002). Known rows score their label.
* ``"zhou"``: the closed form of Zhou et al. 2004 ("Learning with Local and Global
  Consistency", NIPS), ``F = (I - alpha S)^-1 Y``, solved by conjugate gradient as Iscen et al.
  2019 do ("Label Propagation for Deep Semi-supervised Learning", CVPR). Known rows are not
  clamped: their score says what their neighbourhood thinks, which exposes label errors.
  ``alpha`` (default 0.9, chosen by measurement) weighs the neighbours against a row's seed.

Both are linear in the seeds, so the sum of the two channels is propagated once per distinct
pattern of missing labels instead of once per class: ``C + (number of patterns)`` columns.

Speed: the cost is one sparse-times-dense product per step, bound by memory latency when
neighbours lie far apart in memory (rows in arbitrary order). Large graphs are therefore
renumbered by reverse Cuthill-McKee (Cuthill and McKee 1969) before propagating, which puts
neighbours close together (about 8x faster products at 1M rows), and the scores are put back in
the original order.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from patchwork_widget.active._checks import check_matrix, parse_enum
from patchwork_widget.options.checks import (
    check_array,
    check_int,
    check_names,
    check_number,
    shown,
)

logger = logging.getLogger(__name__)

REORDER_MIN_ROWS = 20_000  # renumber graphs at least this large for memory locality


class Method(str, enum.Enum):
    """Which propagation to run."""

    BAI = "bai"  # clamped iterations (Bai et al. 2021)
    ZHOU = "zhou"  # closed form by conjugate gradient (Zhou et al. 2004; Iscen et al. 2019)


def propagate(
    graph: sp.spmatrix,
    labels: np.ndarray,
    method: Method | str = Method.ZHOU,
    alpha: float = 0.9,
    iterations: int = 20,
    tol: float = 1e-5,
    max_iter: int = 500,
    dtype: type = np.float32,
    balance: bool = False,
) -> np.ndarray:
    """Per-class scores in [0, 1] for every row from the known labels.

    Parameters
    ----------
    graph : scipy.sparse matrix
        N x N symmetric normalised adjacency ``S`` (from :func:`knn_graph`).
    labels : np.ndarray
        N x C (or N) with 1.0, 0.0 or NaN (missing); e.g. ``df[classes].to_numpy(float)``.
    method : Method or str
        ``"zhou"`` (default) or ``"bai"``.
    alpha : float
        Zhou's propagation weight in (0, 1). 0.9 by measurement (benchmarks/
        bench_suggestions.py, 5% of rows labeled, three sets): 0.5 to 5.8 points more
        accuracy than Iscen et al.'s 0.99, whose 0.9-threshold pseudo-labels almost never say
        "yes", and as accurate as ``"bai"``.
    iterations : int
        Bai's number of propagation steps.
    tol, max_iter
        Conjugate gradient stopping rule for ``"zhou"``: relative residual and step limit.
    dtype : np.float32 or np.float64
        Precision of the graph and the propagated channels. float32 (default) halves the
        memory traffic that bounds the run time; its 1e-7 resolution is far finer than any
        decision made on a score. float64 for exact comparisons.
    balance : bool
        Divide each channel by its number of seeds before taking the ratio (class mass
        normalisation, Zhu et al. 2003): more "yes", less precise (module docstring). False
        (default) gives the plain ratio, which equals scikit-learn's ``LabelSpreading`` on the
        same graph.

    Returns
    -------
    np.ndarray
        float64 N x C scores (N x 1 for 1-D labels); 0.5 where no label reaches.
    """
    method = parse_enum(Method, method, "method")
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    if isinstance(labels, (str, bytes)) or labels is None:
        raise ValueError(f"labels must be an N x C array of 0, 1 or NaN; got {shown(labels)}")
    try:
        y = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"labels must be an N x C array of 0, 1 or NaN; got "
                         f"{shown(labels)}") from None
    y = y[:, None] if y.ndim == 1 else y
    if not (sp.issparse(graph) or isinstance(graph, np.ndarray)) or graph.ndim != 2:
        raise ValueError(f"graph must be an N x N scipy sparse matrix (from knn_graph); got "
                         f"{shown(graph)}")
    s = sp.csr_matrix(graph, dtype=dtype)
    n = s.shape[0]
    if s.shape != (n, n):
        raise ValueError(f"graph must be square, got shape {s.shape}")
    y = check_matrix(y, "labels", n)
    bad = ~np.isnan(y) & (y != 0.0) & (y != 1.0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"labels must be 0, 1 or NaN; row {row}, column {col} holds {y[row, col]}")
    check_int("iterations", iterations, 1)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}")
    check_number("tol", tol, 0.0, open_low=True)
    check_int("max_iter", max_iter, 1)
    if not isinstance(balance, (bool, np.bool_)):
        raise ValueError(f"balance must be True or False, got {shown(balance)}")
    start = time.perf_counter()
    order = None
    if n >= REORDER_MIN_ROWS:
        order = reverse_cuthill_mckee(s, symmetric_mode=True)
        s, y = s[order][:, order], y[order]
    known = ~np.isnan(y)
    patterns, which = _missing_patterns(known)
    seeds = np.hstack([np.where(known, y, 0.0), patterns]).astype(dtype)
    if method is Method.BAI:
        out = _iterate(s, seeds, np.hstack([known, patterns]), iterations)
    else:
        out = _conjugate_gradient(s, alpha, seeds, tol, max_iter)
    if order is not None:
        out[order] = out.copy()
    c = y.shape[1]
    out = out.astype(np.float64, copy=False)
    positive, total = np.maximum(out[:, :c], 0.0), np.maximum(out[:, c:][:, which], 0.0)
    if balance:
        negative = np.maximum(total - positive, 0.0)
        seeds_pos = np.maximum((y == 1.0).sum(axis=0), 1)
        seeds_neg = np.maximum((y == 0.0).sum(axis=0), 1)
        positive, total = positive / seeds_pos, positive / seeds_pos + negative / seeds_neg
    reached = total > 1e-12 * max(float(total.max(initial=0.0)), 1e-300)
    scores = np.full_like(positive, 0.5)
    np.divide(positive, total, out=scores, where=reached)
    logger.info("%s propagation, %d rows, %d classes: %.2f s", method.value, n, c,
                time.perf_counter() - start)
    return np.clip(scores, 0.0, 1.0)


def pseudo_labels(scores: np.ndarray, threshold: float = 0.9,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """Threshold scores into labels: 1 where ``score >= threshold``, 0 where ``score <= 1 -
    threshold``, NaN between; known ``labels`` (N x C, NaN = missing) are kept as they are."""
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
            or not 0.5 < threshold <= 1.0):
        raise ValueError(f"threshold must be a number in (0.5, 1], got {threshold!r}")
    s = check_array("scores", scores, 1 if np.ndim(scores) == 1 else 2, low=0.0, high=1.0,
                    allow_nan=True)
    out = np.full(s.shape, np.nan)
    out[s >= threshold] = 1.0
    out[s <= 1.0 - threshold] = 0.0
    if labels is not None:
        y = check_matrix(labels, "labels", s.shape[0], s.shape[1] if s.ndim == 2 else None)
        out = np.where(np.isnan(y), out, y)
    return out


def pseudo_label_frame(scores: np.ndarray, classes: Sequence[str], threshold: float = 0.9,
                       labels: np.ndarray | None = None, index: pd.Index | None = None
                       ) -> pd.DataFrame:
    """:func:`pseudo_labels` as a DataFrame with one float column per class (NaN, 0.0, 1.0),
    aligned to ``index`` (e.g. the label table's), ready to merge into a label table."""
    classes = check_names("classes", classes, what="class name")
    out = pseudo_labels(scores, threshold, labels)
    if out.ndim != 2 or out.shape[1] != len(classes):
        raise ValueError(f"scores have shape {out.shape}; expected N x {len(classes)} classes")
    return pd.DataFrame(out, columns=list(classes), index=index)


def _missing_patterns(known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of ``known`` (N x U, first-seen order) and, per class, the index
    of its pattern; columns are compared by their packed bits."""
    packed = np.packbits(known, axis=0)
    first: dict[bytes, int] = {}
    which = np.array([first.setdefault(packed[:, c].tobytes(), len(first))
                      for c in range(known.shape[1])], dtype=np.int64)
    columns = [list(which).index(u) for u in range(len(first))]
    return known[:, columns], which


def _column_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise dot products of two N x m arrays, accumulated in float64."""
    return np.einsum("ij,ij->j", a, b, dtype=np.float64)



def _iterate(s: sp.csr_matrix, seeds: np.ndarray, clamp: np.ndarray, steps: int) -> np.ndarray:
    """Bai et al.: ``F <- S F`` with the seeded entries reset after every step."""
    f = seeds.copy()
    for _ in range(steps):
        f = s @ f
        np.copyto(f, seeds, where=clamp)
    return f


def _conjugate_gradient(s: sp.csr_matrix, alpha: float, b: np.ndarray, tol: float,
                        max_iter: int) -> np.ndarray:
    """Solve ``(I - alpha S) X = B`` for every column of ``B`` at once (one sparse product with
    all columns per step; each column keeps its own step sizes, as independent CG runs).
    Vector updates run in place on preallocated buffers; dot products accumulate in float64."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    scratch = np.empty_like(b)
    rs = _column_dots(r, r)
    start = np.where(rs > 0, rs, 1.0)
    for step in range(max_iter):
        if np.all(rs <= tol ** 2 * start):
            break
        ap = s @ p
        ap *= -alpha
        ap += p  # (I - alpha S) p
        curvature = _column_dots(p, ap)
        size = np.divide(rs, curvature, out=np.zeros_like(rs), where=curvature > 0)
        np.multiply(p, size.astype(b.dtype), out=scratch)
        x += scratch
        np.multiply(ap, size.astype(b.dtype), out=scratch)
        r -= scratch
        rs_new = _column_dots(r, r)
        p *= np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0).astype(b.dtype)
        p += r
        rs = rs_new
    else:
        logger.warning("conjugate gradient stopped after max_iter=%d steps at relative residual "
                       "%.2g (tol %.2g)", max_iter, float(np.sqrt(np.max(rs / start))), tol)
    logger.debug("conjugate gradient: %d steps", step)
    return x
