"""k-nearest-neighbour search over feature rows at a recall you choose (A4).

At most ``exact_max_rows`` rows (or with ``recall=1``) the search is exact (scikit-learn's brute
force). Above, it is approximate, and built to a recall target: faiss IVF-Flat by default, or
HNSW on request, whose query-time setting is raised until a few hundred sampled rows reach
``recall`` against exact search (see :mod:`patchwork_widget.active.ann`). The result carries a
:class:`SearchReport` saying what was built and the recall measured.
"""

from __future__ import annotations

import enum
import logging
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from patchwork_widget.active import ann
from patchwork_widget.active._checks import parse_enum
from patchwork_widget.options.checks import too_large_for_memory

logger = logging.getLogger(__name__)

EXACT_MAX_ROWS = 20_000
DEFAULT_RECALL = 0.95
RECALL_SAMPLE_ROWS = 500


class Metric(str, enum.Enum):
    """Distance between feature rows."""

    COSINE = "cosine"  # 1 - cosine similarity, in [0, 2]
    EUCLIDEAN = "euclidean"


class Backend(str, enum.Enum):
    """How neighbours are found."""

    AUTO = "auto"  # exact up to EXACT_MAX_ROWS rows (or at recall 1), IVF-Flat above
    EXACT = "exact"
    IVF = "ivf"
    HNSW = "hnsw"


@dataclass(frozen=True)
class SearchReport:
    """How a neighbour search was done and how good it is.

    ``recall`` is the mean recall@k of ``sample_rows`` randomly sampled rows against exact
    search (1.0 for exact search, where nothing is sampled); ``reached`` says whether the
    sample's recall, less three standard errors, reached ``target``. ``setting`` holds the index
    parameters used (``nlist`` and ``nprobe`` for IVF, ``hnsw_m``, ``ef_construction`` and
    ``ef_search`` for HNSW)."""

    backend: str
    target: float
    recall: float
    reached: bool
    sample_rows: int
    seconds: float
    setting: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Neighbors:
    """The ``k`` nearest other rows of every row, with the search's report.

    ``indices`` is int64, N x k, nearest first; a row never lists itself; an approximate index
    may, rarely, find fewer than k neighbours: the missing slots hold -1. ``distances`` is
    float32, N x k, in the chosen metric (infinite in the -1 slots)."""

    indices: np.ndarray
    distances: np.ndarray
    report: SearchReport


def find_neighbors(
    features: np.ndarray,
    k: int,
    metric: Metric | str = Metric.COSINE,
    backend: Backend | str = Backend.AUTO,
    exact_max_rows: int = EXACT_MAX_ROWS,
    recall: float = DEFAULT_RECALL,
    *,
    sample_rows: int = RECALL_SAMPLE_ROWS,
    seed: int = 0,
    hnsw_m: int = 32,
    ef_construction: int = 100,
) -> Neighbors:
    """The ``k`` nearest other rows of every row, found at recall@k >= ``recall``.

    Parameters
    ----------
    features : np.ndarray
        N x d (N x h x w x c feature maps are average-pooled first).
    k : int
        Neighbours per row, not counting the row itself; ``1 <= k < N``.
    metric : Metric or str
        ``"cosine"`` (default) or ``"euclidean"``.
    backend : Backend or str
        ``"auto"`` (exact up to ``exact_max_rows`` rows or at ``recall=1``, IVF-Flat above),
        ``"exact"``, ``"ivf"`` or ``"hnsw"``.
    exact_max_rows : int
        Largest N searched exactly under ``"auto"``.
    recall : float
        Target recall@k in (0, 1] of the approximate backends, checked on ``sample_rows``
        sampled rows against exact search while the index is tuned.
    sample_rows : int
        Rows sampled to measure recall (all rows when N is smaller).
    seed : int
        Seed of the sample and of IVF's k-means.
    hnsw_m, ef_construction : int
        HNSW links per node and build-time beam width (``backend="hnsw"`` only).
    """
    metric = parse_enum(Metric, metric, "metric")
    backend = parse_enum(Backend, backend, "backend")
    if too_large_for_memory(features):
        raise ValueError(f"features: a kNN search holds every row in memory (exactly, or in "
                         f"its index); these features are read from storage "
                         f"({type(features).__name__} of shape {tuple(features.shape)}) and "
                         "are larger than options.checks.IN_MEMORY_BYTES, so "
                         "the kNN graph, label propagation and the 'knn confidence' order are "
                         "not available on them")
    x = pooled_float32(features)
    n = len(x)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k < n:
        raise ValueError(f"k must be an integer in [1, {n - 1}] for {n} rows, got {k!r}")
    _check_search_options(recall, sample_rows, exact_max_rows, seed)
    if metric is Metric.COSINE:
        x = _unit_rows(x)
    if backend is Backend.AUTO:
        exact = n <= exact_max_rows or recall == 1
        backend = Backend.EXACT if exact else Backend.IVF
    start = time.perf_counter()
    if backend is Backend.EXACT:
        idx, d2 = _exact(x, k + 1)
        measured, reached, sampled, setting = 1.0, True, 0, {}
    else:
        sample = np.sort(np.random.default_rng(seed).choice(n, min(n, sample_rows),
                                                            replace=False))
        if backend is Backend.IVF:
            tuned = ann.search_ivf(x, k + 1, sample, recall, seed)
        else:
            tuned = ann.search_hnsw(x, k + 1, sample, recall, hnsw_m, ef_construction)
        idx, d2 = tuned.indices, tuned.sq_distances
        measured, reached, sampled, setting = (tuned.recall, tuned.reached, len(sample),
                                               tuned.setting)
    idx, d2 = ann.drop_self(np.arange(n), idx, d2)
    dist = d2 / 2.0 if metric is Metric.COSINE else np.sqrt(d2)
    dist = np.where(idx >= 0, dist, np.inf).astype(np.float32)
    report = SearchReport(backend.value, float(recall), measured, reached, sampled,
                          time.perf_counter() - start, setting)
    logger.info("kNN search, %d rows, k=%d: %s", n, k, report)
    return Neighbors(idx, dist, report)


def knn_search(features: np.ndarray, k: int, *args: object, **options: object
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)`` of :func:`find_neighbors` (same arguments), without the
    report."""
    found = find_neighbors(features, k, *args, **options)
    return found.indices, found.distances


def pooled_float32(features: np.ndarray) -> np.ndarray:
    """Features as a C-contiguous float32 N x d array (feature maps average-pooled)."""
    x = np.asarray(features)
    if x.ndim > 2:
        x = x.reshape(len(x), -1, x.shape[-1]).mean(axis=1)
    if x.ndim != 2:
        raise ValueError(f"features must be N x d (or N x h x w x c), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features hold NaN or infinite values")
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_search_options(recall: object, sample_rows: object, exact_max_rows: object,
                          seed: object) -> None:
    if (not isinstance(recall, numbers.Real) or isinstance(recall, bool)
            or not 0 < recall <= 1):
        raise ValueError(f"recall must be a number in (0, 1], got {recall!r}")
    for name, value, low in (("sample_rows", sample_rows, 10),
                             ("exact_max_rows", exact_max_rows, 0), ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)


def _exact(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scikit-learn's brute-force euclidean search (chunked matrix products and
    heaps, multi-threaded); on unit rows that is also the cosine order, ``cos = 1 - d^2 / 2``.
    Returns squared distances."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(x)
    dist, idx = nn.kneighbors(x)
    return idx.astype(np.int64), (dist.astype(np.float64) ** 2)
