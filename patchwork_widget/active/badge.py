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
``|g_i - g_j|^2 = |a_i|^2 |h_i|^2 + |a_j|^2 |h_j|^2 - 2 (a_i . a_j)(h_i . h_j)``, and memory
stays O(N (d + C)).

Lazy seeding: instead of one pass over the embeddings per pick, every row keeps an upper bound
of its ``D^2`` (at first ``(|g_i| + |g_first|)^2``), proposals are drawn in proportion to the
bounds and accepted with probability ``D^2 / bound`` (rejection sampling), the exact ``D^2`` of
a proposal taken against the centres picked since the bounds were last lowered. Accepted rows
follow k-means++'s ``D^2`` distribution exactly; the picks for a given seed differ from an eager
run's (one ``rng.random()`` per pick against exact distances), which the unit tests check
against the materialised reference by forcing a refresh before every draw. A refresh lowers all
bounds in one blocked pass for many centres at once; it runs when proposals keep being rejected
or many centres wait (see ``_refresh_limits``), so a batch of 100 from a million rows usually
needs none.

Precision: products with the embeddings (and the squared norms) run in the embeddings' own
floating dtype (float32 input halves the memory traffic); ``a`` and the distances are float64.
Distances are clipped at 0 against rounding.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import numpy as np

from patchwork_widget.active._blas import one_blas_thread
from patchwork_widget.active._checks import (
    as_rng,
    candidate_mask,
    check_matrix,
    check_probs,
    parse_enum,
)

logger = logging.getLogger(__name__)

_REFRESH_BLOCK = 1 << 17  # row x centre distances per block of a refresh (1 MB of float64)
_PROPOSALS = 16  # proposals drawn and tested together


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
    draw is exact in distribution, made lazily by rejection: see the module docstring). A row
    is never picked twice. When every gradient embedding is zero (a
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
    with one_blas_thread():  # the products here are small or streamed block by block
        picks = _kmeanspp(emb, a, valid, k, rng)
    return back[picks].astype(np.int64)


def _fully_labeled(labels: Any, shape: tuple[int, int], cls: int | None, n: int) -> np.ndarray:
    """Rows with nothing left to learn: every class labeled (or class ``cls`` labeled)."""
    if labels is None:
        return np.zeros(n, dtype=bool)
    known = ~np.isnan(np.asarray(labels, dtype=np.float64))
    return known[:, cls] if cls is not None else known.all(axis=1)


def _kmeanspp(emb: np.ndarray, a: np.ndarray, valid: np.ndarray, k: int,
              rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding over the implicit embeddings ``g_i = a_i (x) [emb_i, 1]``."""
    emb_sq = np.einsum("ij,ij->i", emb, emb).astype(np.float64)  # one pass, in emb's dtype
    grad_sq = np.einsum("ij,ij->i", a, a) * (emb_sq + 1.0)
    grad_sq[~valid] = 0.0
    first = int(np.argmax(grad_sq))
    if grad_sq[first] <= 0.0:
        logger.info("every gradient embedding is zero: BADGE falls back to random picks")
        return rng.choice(np.flatnonzero(valid), size=k, replace=False)
    seeding = _LazySeeding(emb, a, grad_sq, valid, first)
    pending_limit, rejection_limit = _refresh_limits(len(a))
    picks = [first]
    while len(picks) < k:
        if len(seeding.pending) >= pending_limit or seeding.rejected > rejection_limit:
            seeding.refresh()
        if seeding.total <= 0.0:
            logger.info("BADGE: every remaining row coincides with a centre; %d random picks",
                        k - len(picks))
            rest = np.flatnonzero(valid & ~seeding.taken)
            picks.extend(rng.choice(rest, size=k - len(picks), replace=False).tolist())
            break
        j = seeding.draw(rng)
        if j is not None:
            seeding.add(j)
            picks.append(j)
    return np.asarray(picks, dtype=np.int64)


def _refresh_limits(n: int) -> tuple[int, int]:
    """When a refresh (work ~ N per pending centre) runs: at this many pending centres, or after
    this many rejected proposals (work ~ 1 per pending centre each). Proposals for one pick
    cost ``_PROPOSALS`` per pending centre, so up to N / 256 pending centres stay cheaper than
    applying them, and N / 8 rejections waste at most an eighth of a refresh."""
    return max(128, n // 256), max(4096, n // 8)


class _LazySeeding:
    """k-means++ draws in proportion to ``D^2`` without a pass over the embeddings per pick.

    ``bound`` holds an upper bound of every row's ``D^2``: exact as of the last refresh, but
    not yet lowered for the centres picked since (the pending ones). A proposal drawn in
    proportion to ``bound`` is accepted with probability ``D^2 / bound``, its exact ``D^2``
    taken against the pending centres only, so accepted rows follow ``D^2`` exactly (rejection
    sampling). A refresh applies every pending centre in one blocked pass over the embeddings.
    With no centre pending the bound is exact: one draw, ``u = rng.random() * sum``, is one pick.
    """

    def __init__(self, emb: np.ndarray, a: np.ndarray, grad_sq: np.ndarray, valid: np.ndarray,
                 first: int):
        self.emb, self.a, self.grad_sq = emb, a, grad_sq
        # |g_i - g_first| <= |g_i| + |g_first|: a bound before any pass over the embeddings
        self.bound = np.square(np.sqrt(grad_sq) + np.sqrt(grad_sq[first]))
        self.bound[~valid] = 0.0
        self.taken = np.zeros(len(a), dtype=bool)
        self.pending: list[int] = []
        self._centres: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.rejected = 0
        self.add(first)
        self._cumulate()

    def add(self, j: int) -> None:
        """Make row ``j`` a centre: never drawn again, pending until the next refresh."""
        self.taken[j] = True
        self.pending.append(j)
        self._centres = None

    def _cumulate(self) -> None:
        self.bound[self.taken] = 0.0
        self.cum = np.cumsum(self.bound)
        self.total = float(self.cum[-1])
        self.last = int(np.flatnonzero(self.bound)[-1]) if self.total > 0.0 else 0

    def refresh(self) -> None:
        """Lower every bound to the exact ``D^2``: one blocked pass for all pending centres."""
        step = max(1, _REFRESH_BLOCK // len(self.pending))
        for start in range(0, len(self.a), step):
            rows = slice(start, start + step)
            np.minimum(self.bound[rows], self._distances(rows), out=self.bound[rows])
        self.pending, self.rejected = [], 0
        self._cumulate()

    def draw(self, rng: np.random.Generator) -> int | None:
        """A row drawn in proportion to ``D^2``, or None when every proposal was rejected."""
        if not self.pending:  # exact bounds: every draw is accepted
            return int(self._locate(rng.random() * self.total))
        rows = self._locate(rng.random(_PROPOSALS) * self.total)
        dist = np.minimum(self.bound[rows], self._distances(rows))
        dist[self.taken[rows]] = 0.0
        accepted = np.flatnonzero(rng.random(_PROPOSALS) * self.bound[rows] < dist)
        if len(accepted) == 0:
            self.rejected += _PROPOSALS
            return None
        self.rejected += int(accepted[0])
        return int(rows[accepted[0]])

    def _locate(self, u: float | np.ndarray) -> np.ndarray:
        """The first row whose running sum of bounds exceeds ``u`` (never one with bound 0)."""
        return np.minimum(np.searchsorted(self.cum, u, side="right"), self.last)

    def _distances(self, rows: slice | np.ndarray) -> np.ndarray:
        """The rows' smallest squared gradient distance to the pending centres, factorised:
        ``min_c |g_c|^2 - 2 (a . a_c)(h . h_c + 1)``, plus ``|g|^2``, clipped at 0."""
        if self._centres is None:
            centres = np.asarray(self.pending)
            self._centres = (self.emb[centres].T, -2.0 * self.a[centres].T,
                             self.grad_sq[centres])
        emb_c, a_c, sq_c = self._centres
        dist = (self.emb[rows] @ emb_c).astype(np.float64)
        dist += 1.0  # the appended bias input
        dist *= self.a[rows] @ a_c
        dist += sq_c
        out = dist.min(axis=1)
        out += self.grad_sq[rows]
        return np.maximum(out, 0.0, out=out)
