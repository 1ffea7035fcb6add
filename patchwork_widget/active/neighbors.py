"""k-nearest-neighbour search over feature rows: exact for small sets, HNSW for large (A4).

Below ``exact_max_rows`` rows the search is exact (scikit-learn's brute force). Above,
it uses faiss's HNSW index (Malkov and Yashunin 2018, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs", IEEE TPAMI), which builds in
O(N log N) and answers every row's query in about O(log N), at a recall set by ``ef_search``.
"""

from __future__ import annotations

import enum
import logging
import time

import numpy as np

from patchwork_widget.active._checks import parse_enum

logger = logging.getLogger(__name__)

EXACT_MAX_ROWS = 50_000


class Metric(str, enum.Enum):
    """Distance between feature rows."""

    COSINE = "cosine"  # 1 - cosine similarity, in [0, 2]
    EUCLIDEAN = "euclidean"


class Backend(str, enum.Enum):
    """How neighbours are found."""

    AUTO = "auto"  # exact below EXACT_MAX_ROWS rows, HNSW above
    EXACT = "exact"
    HNSW = "hnsw"


def knn_search(
    features: np.ndarray,
    k: int,
    metric: Metric | str = Metric.COSINE,
    backend: Backend | str = Backend.AUTO,
    exact_max_rows: int = EXACT_MAX_ROWS,
    hnsw_m: int = 16,
    ef_construction: int = 40,
    ef_search: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row.

    Parameters
    ----------
    features : np.ndarray
        N x d (N x h x w x c feature maps are average-pooled first).
    k : int
        Neighbours per row, not counting the row itself; ``1 <= k < N``.
    metric : Metric or str
        ``"cosine"`` (default) or ``"euclidean"``.
    backend : Backend or str
        ``"auto"``, ``"exact"`` or ``"hnsw"``.
    exact_max_rows : int
        Largest N searched exactly under ``"auto"``.
    hnsw_m, ef_construction, ef_search : int
        HNSW links per node, build-time and query-time beam widths (``ef_search`` defaults to
        ``max(2 k, 48)``); larger is slower and more accurate.

    Returns
    -------
    indices : np.ndarray
        int64, N x k, nearest first; a row never lists itself. HNSW may, rarely, find fewer
        than k neighbours: the missing slots hold -1.
    distances : np.ndarray
        float32, N x k, in the chosen metric (infinite in the -1 slots).
    """
    metric = parse_enum(Metric, metric, "metric")
    backend = parse_enum(Backend, backend, "backend")
    x = pooled_float32(features)
    n = len(x)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k < n:
        raise ValueError(f"k must be an integer in [1, {n - 1}] for {n} rows, got {k!r}")
    if metric is Metric.COSINE:
        x = _unit_rows(x)
    if backend is Backend.AUTO:
        backend = Backend.EXACT if n <= exact_max_rows else Backend.HNSW
    start = time.perf_counter()
    if backend is Backend.EXACT:
        idx, sim = _exact(x, k + 1, metric)
    else:
        idx, sim = _hnsw(x, k + 1, metric, hnsw_m, ef_construction, ef_search or max(2 * k, 48))
    idx, sim = _drop_self(idx, sim)
    dist = 1.0 - sim if metric is Metric.COSINE else np.sqrt(np.maximum(-sim, 0.0))
    dist = np.where(idx >= 0, np.maximum(dist, 0.0), np.inf).astype(np.float32)
    logger.info("%s kNN search, %d rows, k=%d: %.1f s", backend.value, n, k,
                time.perf_counter() - start)
    return idx, dist


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


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)


def _exact(x: np.ndarray, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scikit-learn's brute-force euclidean search (chunked matrix products and
    heaps, multi-threaded); on unit rows that is also the cosine order, ``cos = 1 - d^2 / 2``.
    Returns similarities (cosine) or minus squared distances (euclidean)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(x)
    dist, idx = nn.kneighbors(x)
    sq = dist.astype(np.float64) ** 2
    sim = 1.0 - sq / 2.0 if metric is Metric.COSINE else -sq
    return idx.astype(np.int64), sim.astype(np.float32)


def _hnsw(x: np.ndarray, k: int, metric: Metric, m: int, ef_construction: int,
          ef_search: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss HNSW; returns similarities (cosine) or minus squared distances (euclidean)."""
    import faiss  # imported here: it loads OpenMP and BLAS, which the exact path never needs

    for name, value in (("hnsw_m", m), ("ef_construction", ef_construction),
                        ("ef_search", ef_search)):
        if not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    space = faiss.METRIC_INNER_PRODUCT if metric is Metric.COSINE else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(x.shape[1], int(m), space)
    index.hnsw.efConstruction = int(ef_construction)
    index.add(x)
    index.hnsw.efSearch = max(int(ef_search), k)
    sim, idx = index.search(x, k)
    if metric is Metric.EUCLIDEAN:
        sim = -sim
    return idx.astype(np.int64), sim


def _drop_self(idx: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (or, where absent, its last neighbour)."""
    n, k1 = idx.shape
    own = idx == np.arange(n)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k1 - 1)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    idx = idx[keep].reshape(n, k1 - 1)
    return idx, sim[keep].reshape(n, k1 - 1)
