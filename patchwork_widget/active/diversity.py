"""Model-free diversity selection over feature vectors (A2, A5).

* :func:`kmeanspp_select`: k-means++ seeding (Arthur and Vassilvitskii 2007, "k-means++: the
  advantages of careful seeding") over L2-normalised features, optionally randomly projected
  (Johnson-Lindenstrauss; Achlioptas 2003) to make each pass over the data cheap.
* :func:`kcenter_greedy`: the greedy 2-approximation to k-center used as "core-set" active
  learning by Sener and Savarese 2018 ("Active Learning for Convolutional Neural Networks: A
  Core-Set Approach", ICLR): repeatedly take the candidate farthest from every chosen or
  already-labeled row.

Both cost one pass over the (projected) features per pick and never build an N x N matrix:
a float32 matrix-vector product (``|x|^2 + |c|^2 - 2 x.c``, the row norms computed once per
call), so a pick reads the features once and writes nothing of their size; with one BLAS
thread (:mod:`._blas`). The projection
is drawn from its own ``projection_seed`` (not from the picks' generator), so a caller may
prepare the features once (:func:`prepare_features`) and pass them with ``dim=None,
normalise=False`` on every call; the orders do, through their cache.
"""

from __future__ import annotations

import numpy as np

from patchwork_widget.active._blas import with_one_blas_thread
from patchwork_widget.active._checks import as_rng, candidate_mask
from patchwork_widget.images.feature_rows import map_chunks
from patchwork_widget.options.checks import is_out_of_core

DEFAULT_DIM = 64  # projected dimension; JL distortion ~ 1/sqrt(64) is ample for seeding
_BLOCK_CENTRES, _BLOCK_ROWS = 256, 4096  # a block of row x centre distances: 4 MB of float32


def prepare_features(features: np.ndarray, dim: int | None = DEFAULT_DIM,
                     seed: int | np.random.Generator | None = 0,
                     normalise: bool = True) -> np.ndarray:
    """Average-pool to N x d, L2-normalise rows (unless ``normalise=False``) and, when
    ``d > dim``, project them to ``dim`` dimensions with a Gaussian random matrix (then
    normalise again). float32 out.

    The rows are read chunk by chunk (:func:`~patchwork_widget.images.feature_rows.chunks`),
    so features in a memmap or Zarr array are never read whole: memory is the N x ``dim``
    result and one chunk."""
    if not is_out_of_core(features):
        features = np.asarray(features)
    if len(features.shape) not in (2, 4):
        raise ValueError(f"features must be N x d (or N x h x w x c), got shape "
                         f"{tuple(features.shape)}")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))
                            or dim < 1):
        raise ValueError(f"dim must be a positive integer or None, got {dim!r}")
    d = int(features.shape[-1])
    proj = (as_rng(seed).standard_normal((d, dim)).astype(np.float32)
            if dim is not None and d > dim else None)
    if (proj is None and not normalise and isinstance(features, np.ndarray)
            and not is_out_of_core(features) and features.ndim == 2):
        return features.astype(np.float32, copy=False)  # prepared already: nothing to do

    def prepared(x: np.ndarray) -> np.ndarray:
        x = _normalise(x) if normalise else x
        if proj is not None:
            x = x @ proj
            x = _normalise(x) if normalise else x / np.float32(np.sqrt(dim))
        return x

    return map_chunks(prepared, features, pooled=True)


@with_one_blas_thread
def kmeanspp_select(features: np.ndarray, k: int, candidates: np.ndarray | None = None,
                    seed: int | np.random.Generator | None = None,
                    dim: int | None = DEFAULT_DIM, normalise: bool = True,
                    projection_seed: int = 0) -> np.ndarray:
    """``k`` candidate rows by k-means++ seeding (Arthur and Vassilvitskii 2007).

    The first pick is uniform among candidates; each next one is drawn with probability
    proportional to its squared distance to the nearest pick so far (``u = rng.random() *
    sum(D^2)``, first row whose running sum exceeds ``u``). When every remaining candidate
    coincides with a pick (squared distance under :data:`SAME`), the rest are drawn
    uniformly. ``seed`` drives the picks, ``projection_seed`` the projection
    (:func:`prepare_features`). Returns row positions in pick order.
    """
    rng = as_rng(seed)
    x, rows, k = _setup(features, k, candidates, dim, normalise, projection_seed)
    if k == 0:
        return rows[:0]
    x = _Points(x, rows)
    first = int(rng.integers(len(rows)))
    picks = [first]
    dist = x.sq_dist(first).astype(np.float64)
    dist[first] = 0.0
    while len(picks) < k:
        cum = np.cumsum(dist)
        if cum[-1] <= 0.0:
            rest = np.setdiff1d(np.arange(len(rows)), picks)
            picks.extend(rng.choice(rest, size=k - len(picks), replace=False).tolist())
            break
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        if j >= len(cum) or dist[j] <= 0.0:
            j = int(np.flatnonzero(dist)[-1])
        picks.append(j)
        np.minimum(dist, x.sq_dist(j), out=dist)
        dist[j] = 0.0
    return rows[np.asarray(picks)]


@with_one_blas_thread
def kcenter_greedy(features: np.ndarray, k: int, candidates: np.ndarray | None = None,
                   centres: np.ndarray | None = None,
                   seed: int | np.random.Generator | None = None,
                   dim: int | None = DEFAULT_DIM, normalise: bool = True,
                   projection_seed: int = 0) -> np.ndarray:
    """``k`` candidate rows by greedy k-center (Sener and Savarese 2018).

    ``centres`` (mask or row positions, typically the labeled rows) start as chosen; each pick
    is the candidate whose distance to its nearest centre is largest (ties: the lowest row).
    Without centres the first pick is uniform among candidates (drawn from ``seed``; the
    projection from ``projection_seed``). Returns rows in pick order.
    """
    rng = as_rng(seed)
    x, rows, k = _setup(features, k, candidates, dim, normalise, projection_seed)
    if k == 0:
        return rows[:0]
    centre_rows = np.flatnonzero(candidate_mask(centres, len(x))) if centres is not None else []
    xc = _Points(x, rows)
    dist = np.full(len(rows), np.inf, dtype=np.float32)
    for start in range(0, len(centre_rows), _BLOCK_CENTRES):  # to the starting centres
        block = x[centre_rows[start:start + _BLOCK_CENTRES]]
        block_sq = (block * block).sum(1)[None, :]
        for low in range(0, len(rows), _BLOCK_ROWS):  # temporaries of rows x centres bounded
            high = low + _BLOCK_ROWS
            d = xc.sq_norm[low:high, None] + block_sq - 2.0 * (xc.rows_of(low, high) @ block.T)
            np.minimum(dist[low:high], d.min(axis=1), out=dist[low:high])
    picks: list[int] = []
    if len(centre_rows) == 0:
        picks.append(int(rng.integers(len(rows))))
        dist = xc.sq_dist(picks[0])
    while len(picks) < k:
        dist[picks] = -1.0
        j = int(np.argmax(dist))
        picks.append(j)
        np.minimum(dist, xc.sq_dist(j), out=dist)
    return rows[np.asarray(picks)]


def _setup(features, k, candidates, dim, normalise, projection_seed):
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if (not isinstance(projection_seed, (int, np.integer)) or isinstance(projection_seed, bool)
            or projection_seed < 0):
        raise ValueError(f"projection_seed must be a non-negative integer, got "
                         f"{projection_seed!r}")
    x = prepare_features(features, dim, int(projection_seed), normalise)
    rows = np.flatnonzero(candidate_mask(candidates, len(x)))
    return x, rows, min(int(k), len(rows))


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


SAME = 1e-6  # squared distances below this count as 0 (float32 rounding of |x|^2 + |c|^2 - 2x.c)


class _Points:
    """The candidate rows of float32 points with their squared norms, for distances to one of
    them at a time (``i`` below is a position among the candidates).

    When the candidates are at least half of the rows (as the unlabeled rows usually are), the
    points are used where they are and each product covers every row, the candidates' taken
    from it: no copy of the candidates' rows (N x 64 float32 of prepared features, 512 MB at
    2M rows); fewer candidates are copied, so a pick reads only them."""

    def __init__(self, x: np.ndarray, rows: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.rows = rows if 2 * len(rows) >= len(x) else None
        self.x = x if self.rows is not None else np.ascontiguousarray(x[rows])
        norms = np.einsum("ij,ij->i", self.x, self.x)
        self.sq_norm = norms if self.rows is None else norms[rows]

    def rows_of(self, low: int, high: int) -> np.ndarray:
        """The points of candidates ``low`` to ``high`` (positions among the candidates)."""
        return self.x[low:high] if self.rows is None else self.x[self.rows[low:high]]

    def sq_dist(self, i: int) -> np.ndarray:
        """Squared Euclidean distance of every candidate to candidate ``i``, float32, >= 0 (0
        below :data:`SAME`)."""
        if self.rows is None:
            d = self.x @ self.x[i]
        else:
            d = (self.x @ self.x[self.rows[i]])[self.rows]
        d *= -2.0
        d += self.sq_norm
        d += self.sq_norm[i]
        d[d < SAME * max(1.0, float(self.sq_norm[i]))] = 0.0
        return d
