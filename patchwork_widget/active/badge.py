"""BADGE batch selection for sigmoid multi-hot (and softmax) outputs, factorised (A3, B1).

BADGE (Ash et al. 2020, "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower
Bounds", ICLR) embeds every row as the gradient of the loss at the model's own hard
pseudo-label with respect to the last layer's weights, ``g_i = a_i (x) h_i``, and picks a batch
by k-means++ seeding (Arthur and Vassilvitskii 2007) over those embeddings. Here

* ``a_i = p_i - yhat_i`` per output, with ``yhat = (p >= 0.5)`` for independent sigmoids
  (multi-hot) or the one-hot arg-max for a softmax; ``a_ic = 0`` where class ``c`` of row ``i``
  is already labeled (there is nothing left to learn about it);
* ``h_i`` is the penultimate feature vector with a constant 1 appended (the bias input).

The N x (d+1)C matrix of gradient embeddings is never built: every squared distance comes from
``|g_i - g_j|^2 = |a_i|^2 |h_i|^2 + |a_j|^2 |h_j|^2 - 2 (a_i . a_j)(h_i . h_j)``, so a pick costs
one pass over the embeddings (a matrix-vector product) and memory stays O(N (d + C)).

Precision: the one product that reads every embedding, ``E @ e_j``, runs in the embeddings'
own floating dtype (float32 input halves the memory traffic that dominates the run time);
norms, ``a`` and the distances are float64. Distances are clipped at 0 against rounding.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import numpy as np

from patchwork_widget.active._checks import (
    as_rng,
    candidate_mask,
    check_matrix,
    check_probs,
    parse_enum,
)

logger = logging.getLogger(__name__)

_NORM_BLOCK = 1 << 22  # values per float64 block when computing squared norms (32 MB)


class Output(str, enum.Enum):
    """How the model's outputs were produced, which sets the hard pseudo-label ``yhat``."""

    SIGMOID = "sigmoid"  # independent per-class probabilities (multi-hot): yhat = p >= 0.5
    SOFTMAX = "softmax"  # one distribution over classes (single-label): yhat = one-hot argmax


def gradient_factors(
    probs: np.ndarray,
    labels: np.ndarray | None = None,
    cls: int | None = None,
    output: Output | str = Output.SIGMOID,
) -> np.ndarray:
    """The output-side factor ``a = p - yhat`` of each row's gradient embedding.

    Parameters
    ----------
    probs : np.ndarray
        N x C model outputs in [0, 1].
    labels : np.ndarray, optional
        N x C labels with NaN where missing; labeled entries get ``a = 0``.
    cls : int, optional
        Keep only this class column (an N x 1 result).
    output : Output or str
        ``"sigmoid"`` (multi-hot) or ``"softmax"`` (single-label).

    Returns
    -------
    np.ndarray
        float64, N x C (or N x 1 with ``cls``).
    """
    p = check_probs(probs)
    n, c = p.shape
    output = parse_enum(Output, output, "output")
    if output is Output.SIGMOID:
        a = p - (p >= 0.5)
    else:
        a = p.copy()
        a[np.arange(n), np.argmax(p, axis=1)] -= 1.0
    if labels is not None:
        known = ~np.isnan(check_matrix(labels, "labels", n, c))
        a[known] = 0.0
    if cls is not None:
        if not isinstance(cls, (int, np.integer)) or isinstance(cls, bool) or not 0 <= cls < c:
            raise ValueError(f"cls must be a class column index in [0, {c}), got {cls!r}")
        a = a[:, [int(cls)]]
    return a


def badge(
    probs: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    candidates: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    cls: int | None = None,
    seed: int | np.random.Generator | None = None,
    output: Output | str = Output.SIGMOID,
) -> np.ndarray:
    """Pick ``k`` rows by BADGE: k-means++ seeding over gradient embeddings (Ash et al. 2020).

    The first centre is the row with the largest gradient norm; each next one is drawn with
    probability proportional to its squared distance ``D^2`` to the nearest centre so far (the
    draw: ``u = rng.random() * sum(D^2)``, then the first row whose running sum of ``D^2``
    exceeds ``u``). A row is never picked twice. When every gradient embedding is zero (a
    model that is certain everywhere), or ``D^2`` sums to zero before ``k`` picks, the rest of
    the batch is drawn uniformly at random from the remaining eligible rows.

    Parameters
    ----------
    probs : np.ndarray
        N x C sigmoid (or softmax) outputs.
    embeddings : np.ndarray
        N x d penultimate features (float32 or float64; other types become float64).
    k : int
        How many rows to pick; fewer come back when fewer rows are eligible.
    candidates : np.ndarray, optional
        Boolean mask or row positions allowed to be picked; default every row.
    labels : np.ndarray, optional
        N x C labels, NaN where missing. Labeled classes carry no gradient; a row whose every
        class (or, with ``cls``, whose class ``cls``) is labeled is never picked.
    cls : int, optional
        Use only this class column's gradient (BADGE for one class).
    seed : int or np.random.Generator, optional
        Randomness of the draws; a fixed seed gives the same picks.
    output : Output or str
        ``"sigmoid"`` for multi-hot outputs, ``"softmax"`` for single-label ones.

    Returns
    -------
    np.ndarray
        int64 row positions in pick order.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    rng = as_rng(seed)
    a = gradient_factors(probs, labels, cls, output)
    n = a.shape[0]
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(f"embeddings must be N x d with N = {n} rows, got shape {emb.shape}")
    if emb.dtype not in (np.float32, np.float64):
        emb = emb.astype(np.float64)
    eligible = candidate_mask(candidates, n) & ~_fully_labeled(labels, a.shape, cls, n)
    rows = np.flatnonzero(eligible)
    if len(rows) == 0:
        return rows.astype(np.int64)
    k = min(int(k), len(rows))
    if 2 * len(rows) < n:  # few eligible rows: work on a compact copy of them
        emb, a, valid, back = emb[rows], a[rows], np.ones(len(rows), dtype=bool), rows
    else:  # most rows eligible: skip the copy, mask the others out of every draw
        valid, back = eligible, np.arange(n)
    picks = _kmeanspp(emb, a, valid, k, rng)
    return back[picks].astype(np.int64)


def _fully_labeled(labels: Any, shape: tuple[int, int], cls: int | None, n: int) -> np.ndarray:
    """Rows with nothing left to learn: every class labeled (or class ``cls`` labeled)."""
    if labels is None:
        return np.zeros(n, dtype=bool)
    known = ~np.isnan(np.asarray(labels, dtype=np.float64))
    return known[:, cls] if cls is not None else known.all(axis=1)


def _squared_norms(emb: np.ndarray) -> np.ndarray:
    """Row norms squared, accumulated in float64 block by block (no full float64 copy)."""
    out = np.empty(len(emb), dtype=np.float64)
    rows = max(1, _NORM_BLOCK // max(emb.shape[1], 1))
    for start in range(0, len(emb), rows):
        block = emb[start:start + rows].astype(np.float64)
        out[start:start + rows] = np.einsum("ij,ij->i", block, block)
    return out


def _kmeanspp(emb: np.ndarray, a: np.ndarray, valid: np.ndarray, k: int,
              rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding over the implicit embeddings ``g_i = a_i (x) [emb_i, 1]``."""
    grad_sq = np.einsum("ij,ij->i", a, a) * (_squared_norms(emb) + 1.0)
    grad_sq[~valid] = 0.0
    first = int(np.argmax(grad_sq))
    if grad_sq[first] <= 0.0:
        logger.info("every gradient embedding is zero: BADGE falls back to random picks")
        return rng.choice(np.flatnonzero(valid), size=k, replace=False)
    picks = [first]
    dist = _distances_to(first, emb, a, grad_sq)
    dist[~valid] = 0.0
    dist[first] = 0.0
    while len(picks) < k:
        cum = np.cumsum(dist)
        if cum[-1] <= 0.0:
            logger.info("BADGE: every remaining row coincides with a centre; %d random picks",
                        k - len(picks))
            rest = np.flatnonzero(valid)
            rest = rest[~np.isin(rest, picks)]
            picks.extend(rng.choice(rest, size=k - len(picks), replace=False).tolist())
            break
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        if j >= len(cum) or dist[j] <= 0.0:  # a draw rounded onto the very end
            j = int(np.flatnonzero(dist)[-1])
        picks.append(j)
        np.minimum(dist, _distances_to(j, emb, a, grad_sq), out=dist)
        dist[j] = 0.0
    return np.asarray(picks, dtype=np.int64)


def _distances_to(j: int, emb: np.ndarray, a: np.ndarray, grad_sq: np.ndarray) -> np.ndarray:
    """Squared distance of every row's gradient embedding to row ``j``'s, factorised."""
    h_dot = (emb @ emb[j]).astype(np.float64)
    h_dot += 1.0  # the appended bias input
    a_dot = a @ a[j]
    dist = grad_sq + grad_sq[j]
    dist -= 2.0 * a_dot * h_dot
    return np.maximum(dist, 0.0, out=dist)
