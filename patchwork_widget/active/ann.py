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
# nearest lists kept per row from the one coarse pass (int32: 128 MB at 1M rows); a larger
# tuned nprobe runs the coarse quantizer again for the final search
ASSIGN_PROBES = 32
ASSIGN_CHUNK = 65_536



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
    """IVF-Flat with ``nprobe`` raised until the sampled recall reaches ``target``.

    Every row's nearest lists are found once, up to :data:`ASSIGN_PROBES` of them: the first
    files the row into its list, and the final search over all rows reuses them whenever the
    tuned ``nprobe`` is no larger (so the coarse quantizer runs over the rows once, not twice).
    """
    import faiss  # imported here: it loads OpenMP and BLAS
    from faiss.contrib.ivf_tools import add_preassigned

    n, d = x.shape
    nlist = ivf_lists(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = TRAIN_ROWS_PER_LIST  # no warning: fewer is chosen
    train = np.random.default_rng(seed).choice(n, min(n, TRAIN_ROWS_PER_LIST * nlist),
                                               replace=False)
    index.train(x[np.sort(train)])
    assigned = _nearest_lists(index.quantizer, x, min(nlist, ASSIGN_PROBES))
    add_preassigned(index, x, assigned[:, 0].astype(np.int64))  # faiss wants idx_t

    def search(queries: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        index.nprobe = nprobe
        return index.search(queries, k1)

    def search_all(nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        index.nprobe = nprobe
        lists = assigned[:, :nprobe] if nprobe <= assigned.shape[1] else None
        return search_by_list(index, x, k1, lists)

    return _tune(x, sample, k1, target, "nprobe", (1, nlist), search, search_all,
                 {"nlist": nlist})


def _nearest_lists(quantizer: object, x: np.ndarray, probes: int) -> np.ndarray:
    """Each row's ``probes`` nearest IVF lists, nearest first (int32, in chunks of rows)."""
    out = np.empty((len(x), probes), dtype=np.int32)
    for start in range(0, len(x), ASSIGN_CHUNK):
        out[start:start + ASSIGN_CHUNK] = quantizer.search(x[start:start + ASSIGN_CHUNK],
                                                           probes)[1]
    return out


def search_by_list(index: object, x: np.ndarray, k1: int,
                   lists: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row of ``x`` searched in ``index`` (IVF-Flat, at its ``nprobe``), list by list.

    faiss's ``big_batch_search`` building blocks (``faiss.contrib.big_batch_search``): the rows
    are bucketed by the lists they probe, and each list is compared with all its rows in one
    matrix product, instead of each row scanning its lists alone; about twice as fast for
    the whole set here (1M x 128, nprobe 17: 56 s against 110 s). ``lists`` is each row's
    ``nprobe`` nearest lists where already known. Its own driver loop is not used: it prints a
    progress line per list unless asked for other prints.
    """
    from faiss.contrib.big_batch_search import BigBatchSearcher, BlockComputer

    searcher = BigBatchSearcher(index, x, k1)
    computer = BlockComputer(index, method="knn_function")
    searcher.decode_func, searcher.by_residual = computer.decode_func, computer.by_residual
    if lists is None:
        searcher.coarse_quantization()
    else:
        searcher.q_assign = np.array(lists, dtype=np.int32)  # bucketed in place
    searcher.reorder_assign()
    for lst in range(index.nlist):
        rows, queries, ids, stored = searcher.prepare_bucket(lst)
        d2, found = computer.block_search(queries, stored, ids, k1)
        searcher.add_results_to_heap(rows, d2, ids, found)
    searcher.rh.finalize()
    return searcher.rh.D, searcher.rh.I


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

    def search_all(ef: int) -> tuple[np.ndarray, np.ndarray]:
        return search(x, ef)

    return _tune(x, sample, k1, target, "ef_search", (k1, max(MAX_EF_SEARCH, k1)), search,
                 search_all, {"hnsw_m": int(m), "ef_construction": int(ef_construction)})


def _tune(x: np.ndarray, sample: np.ndarray, k1: int, target: float, knob: str,
          bounds: tuple[int, int], search: Callable[[np.ndarray, int], tuple],
          search_all: Callable[[int], tuple], fixed: dict[str, int]) -> Tuned:
    """Raise the knob from ``bounds[0]`` to ``bounds[1]`` until the sample reaches the target,
    then bisect between the last setting that failed and the first that passed (recall grows
    with the knob). ``search(queries, knob)`` answers the sample; ``search_all(knob)`` every
    row, once, at the chosen setting."""
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
    d2, idx = search_all(value)
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
