"""Approximate k-nearest-neighbour search tuned to a recall target while it builds (A4).

The index answers a few hundred sampled rows first, and the sample's answers are checked
against exact (brute-force) search; the query-time knob (``nprobe`` for IVF-Flat, ``efSearch``
for HNSW) is raised step by step until the sample's recall@k, less three standard errors, reaches
the target, and bisected between the last setting that fell short and the first that reached
it. Only then are all rows searched, at that setting.

* IVF-Flat (Jegou et al. 2011, "Product Quantization for Nearest Neighbor Search", IEEE TPAMI,
  the inverted file without compression): k-means with ``nlist ~ 4 sqrt(N)`` lists; a query
  scans its ``nprobe`` nearest lists. With ``nprobe = nlist`` it is exhaustive, so any target
  is reachable.
* HNSW (Malkov and Yashunin 2018, IEEE TPAMI): a larger ``efConstruction`` than faiss's
  default for a better graph; ``efSearch`` is raised up to :data:`MAX_EF_SEARCH`, which may
  still fall short on data without structure (the report then says so).

Recall is counted by distance (as ann-benchmarks does): a returned neighbour counts when it is
no farther than the row's k-th exact neighbour, so ties and duplicate rows are not held against
the search. Everything works on squared euclidean distances; cosine search passes unit rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# k-means training sample per IVF list: half faiss's advised 39 halves the training time at the
# same tuned nprobe (100k x 256 photo-patch features); the tuning makes up for coarser lists
TRAIN_ROWS_PER_LIST = 24
MAX_EF_SEARCH = 4096
STEP = math.sqrt(2.0)  # growth of nprobe / efSearch between two tries
SAFETY_SE = 3.0  # sampled mean recall less this many standard errors must reach the target



@dataclass(frozen=True)
class Tuned:
    """Neighbours of every row (self included, k + 1 columns) and how they were found."""

    indices: np.ndarray  # int64, N x (k + 1), -1 where the index found fewer
    sq_distances: np.ndarray  # float32, squared euclidean, inf where indices is -1
    setting: dict[str, int]
    recall: float  # mean recall@k of the sampled rows at ``setting``
    reached: bool


def ivf_lists(n: int) -> int:
    """IVF list count: about 4 sqrt(N), and at least 39 rows per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def search_ivf(x: np.ndarray, k1: int, sample: np.ndarray, target: float, seed: int) -> Tuned:
    """IVF-Flat with ``nprobe`` raised until the sampled recall reaches ``target``."""
    import faiss  # imported here: it loads OpenMP and BLAS

    n, d = x.shape
    nlist = ivf_lists(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = TRAIN_ROWS_PER_LIST  # no warning: fewer is chosen
    train = np.random.default_rng(seed).choice(n, min(n, TRAIN_ROWS_PER_LIST * nlist),
                                               replace=False)
    index.train(x[np.sort(train)])
    index.add(x)

    def search(queries: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        index.nprobe = nprobe
        return index.search(queries, k1)

    return _tune(x, sample, k1, target, "nprobe", (1, nlist), search, {"nlist": nlist})


def search_hnsw(x: np.ndarray, k1: int, sample: np.ndarray, target: float, m: int,
                ef_construction: int) -> Tuned:
    """faiss HNSW with ``efSearch`` raised until the sampled recall reaches ``target``."""
    import faiss

    for name, value in (("hnsw_m", m), ("ef_construction", ef_construction)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    index = faiss.IndexHNSWFlat(x.shape[1], int(m), faiss.METRIC_L2)
    index.hnsw.efConstruction = int(ef_construction)
    index.add(x)

    def search(queries: np.ndarray, ef: int) -> tuple[np.ndarray, np.ndarray]:
        index.hnsw.efSearch = ef
        return index.search(queries, k1)

    return _tune(x, sample, k1, target, "ef_search", (k1, max(MAX_EF_SEARCH, k1)), search,
                 {"hnsw_m": int(m), "ef_construction": int(ef_construction)})


def _tune(x: np.ndarray, sample: np.ndarray, k1: int, target: float, knob: str,
          bounds: tuple[int, int], search: Callable[[np.ndarray, int], tuple],
          fixed: dict[str, int]) -> Tuned:
    """Raise the knob from ``bounds[0]`` to ``bounds[1]`` until the sample reaches the target, then bisect between
    the last setting that failed and the first that passed (recall grows with the knob)."""
    threshold = _kth_exact(x, sample, k1)
    queries = x[sample]

    def measure(value: int) -> tuple[bool, float]:
        d2, idx = search(queries, value)
        per_row = _row_recall(sample, idx, d2, threshold)
        lower = per_row.mean() - SAFETY_SE * _standard_error(per_row)
        logger.debug("%s=%d: sampled recall %.4f (lower bound %.4f)", knob, value,
                     per_row.mean(), lower)
        return bool(lower >= target), float(per_row.mean())

    failed = bounds[0] - 1
    for value in knob_steps(*bounds):
        reached, recall = measure(value)
        if reached:
            break
        failed = value
    if reached:
        while value - failed > 1:
            middle = (failed + value) // 2
            ok, middle_recall = measure(middle)
            if ok:
                value, recall = middle, middle_recall
            else:
                failed = middle
    else:
        logger.warning("recall target %.3f not reached: %.4f at %s=%d; use backend='ivf' or "
                       "'exact'", target, recall, knob, value)
    d2, idx = search(x, value)
    idx = idx.astype(np.int64)
    d2 = np.where(idx >= 0, np.maximum(d2, 0.0), np.inf).astype(np.float32)
    return Tuned(idx, d2, {**fixed, knob: int(value)}, recall, reached)


def knob_steps(first: int, last: int) -> Iterator[int]:
    """first, then about sqrt(2) times more each time, ending exactly at last."""
    value = first
    while value < last:
        yield value
        value = max(value + 1, round(value * STEP))
    yield last


def _kth_exact(x: np.ndarray, sample: np.ndarray, k1: int) -> np.ndarray:
    """Each sampled row's k-th smallest squared distance to another row (brute force)."""
    import faiss

    d2, idx = faiss.knn(x[sample], x, k1, metric=faiss.METRIC_L2)
    _, d2 = drop_self(sample, idx.astype(np.int64), d2)
    return d2[:, -1]


def _row_recall(rows: np.ndarray, idx: np.ndarray, d2: np.ndarray,
                threshold: np.ndarray) -> np.ndarray:
    idx, d2 = drop_self(rows, idx.astype(np.int64), d2)
    slack = 1e-5 + 1e-4 * threshold  # float32 rounding differs between the two searches
    close = (idx >= 0) & (d2 <= (threshold + slack)[:, None])
    return close.mean(axis=1)


def _standard_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def drop_self(rows: np.ndarray, idx: np.ndarray, values: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Remove row ``rows[i]``'s own index from line i of ``idx`` (or, where it is absent, the
    last column), and the matching entry of ``values``."""
    n, k1 = idx.shape
    own = idx == np.asarray(rows)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k1 - 1)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    return idx[keep].reshape(n, k1 - 1), values[keep].reshape(n, k1 - 1)
