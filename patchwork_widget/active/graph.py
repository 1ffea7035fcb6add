"""The weighted k-nearest-neighbour graph that labels propagate over (A4).

Edge weights follow Bai et al. 2021 ("Self-supervised Semi-supervised Learning for Data
Labeling and Quality Evaluation", arXiv:2111.10932), ``w = exp(-d / temperature)`` with the
negative exponent (the paper prints a positive one, which would favour far neighbours), or
Iscen et al. 2019 ("Label Propagation for Deep Semi-supervised Learning", CVPR),
``w = max(s, 0)^gamma`` for cosine similarity ``s``. The graph is symmetrised, ``W + W^T``,
and normalised, ``S = D^-1/2 W D^-1/2`` (Zhou et al. 2004). The neighbour search is built to a
recall target (:func:`~patchwork_widget.active.neighbors.find_neighbors`); the graph carries
its :class:`~patchwork_widget.active.neighbors.SearchReport` as the attribute ``search``.
"""

from __future__ import annotations

import enum

import numpy as np
import scipy.sparse as sp

from patchwork_widget.active._checks import parse_enum
from patchwork_widget.options.checks import check_bool, check_features, check_number
from patchwork_widget.active.neighbors import (
    DEFAULT_RECALL,
    EXACT_MAX_ROWS,
    Backend,
    Metric,
    find_neighbors,
)


class Weighting(str, enum.Enum):
    """How a neighbour's distance becomes an edge weight."""

    EXP = "exp"  # exp(-d / temperature) (Bai et al. 2021)
    POWER = "power"  # max(similarity, 0) ** gamma, cosine only (Iscen et al. 2019)


def knn_graph(
    features: np.ndarray,
    k: int = 10,
    metric: Metric | str = Metric.COSINE,
    weighting: Weighting | str = Weighting.EXP,
    temperature: float = 0.1,
    gamma: float = 3.0,
    normalize: bool = True,
    backend: Backend | str = Backend.AUTO,
    exact_max_rows: int = EXACT_MAX_ROWS,
    recall: float = DEFAULT_RECALL,
    **search: int,
) -> sp.csr_matrix:
    """Symmetric k-nearest-neighbour graph of the feature rows as a sparse matrix.

    Parameters
    ----------
    features : np.ndarray
        N x d features (N x h x w x c feature maps are average-pooled, as Bai et al. do).
    k : int
        Neighbours per row before symmetrising.
    metric : Metric or str
        ``"cosine"`` or ``"euclidean"``.
    weighting : Weighting or str
        ``"exp"``: ``exp(-d / temperature)``; ``"power"``: ``max(1 - d, 0) ** gamma`` (cosine
        similarity to a power, so only with ``metric="cosine"``).
    temperature, gamma : float
        Parameters of the two weightings (positive).
    normalize : bool
        Return ``S = D^-1/2 (W + W^T) D^-1/2`` (default) or the raw symmetric ``W + W^T``.
    backend, exact_max_rows, recall, **search
        Passed to :func:`~patchwork_widget.active.neighbors.find_neighbors`: exact search up to
        ``exact_max_rows`` rows, above it IVF-Flat tuned until ``recall`` (default 0.95) of the
        k nearest neighbours are found on sampled rows; ``sample_rows``, ``seed``, ``hnsw_m``,
        ``ef_construction``.

    Returns
    -------
    scipy.sparse.csr_matrix
        N x N, symmetric, float32, zero diagonal. Its attribute ``search`` is the search's
        :class:`~patchwork_widget.active.neighbors.SearchReport` (``graph.search.recall``);
        matrices computed from the graph do not carry it.
    """
    metric = parse_enum(Metric, metric, "metric")
    weighting = parse_enum(Weighting, weighting, "weighting")
    _check_weights(metric, weighting, temperature, gamma)
    check_bool("normalize", normalize)
    features = check_features("features", features)
    found = find_neighbors(features, k, metric, backend, exact_max_rows, recall, **search)
    graph = graph_from_neighbors(found.indices, found.distances, weighting, temperature, gamma,
                                 normalize)
    graph.search = found.report
    return graph


def graph_from_neighbors(
    indices: np.ndarray,
    distances: np.ndarray,
    weighting: Weighting | str = Weighting.EXP,
    temperature: float = 0.1,
    gamma: float = 3.0,
    normalize: bool = True,
) -> sp.csr_matrix:
    """The graph of :func:`knn_graph` from a neighbour search's output (N x k indices, -1 for
    none, and cosine or euclidean distances)."""
    weighting = parse_enum(Weighting, weighting, "weighting")
    _check_weights(None, weighting, temperature, gamma)
    idx, dist = np.asarray(indices), np.asarray(distances)
    if idx.shape != dist.shape or idx.ndim != 2:
        raise ValueError(f"indices {idx.shape} and distances {dist.shape} must both be N x k")
    if weighting is Weighting.EXP:
        weight = np.exp(-dist.astype(np.float64) / temperature)
    else:
        weight = np.maximum(1.0 - dist.astype(np.float64), 0.0) ** gamma
    n = len(idx)
    found = idx >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)[found]
    w = sp.csr_matrix((weight[found], (rows, idx[found])), shape=(n, n), dtype=np.float64)
    w = (w + w.T).tocsr()
    w.setdiag(0.0)
    w.eliminate_zeros()
    if normalize:
        w = normalize_graph(w)
    return w.astype(np.float32)


def _check_weights(metric: Metric | None, weighting: Weighting, temperature: float,
                   gamma: float) -> None:
    for name, value in (("temperature", temperature), ("gamma", gamma)):
        check_number(name, value, 0.0, open_low=True)
    if weighting is Weighting.POWER and metric not in (None, Metric.COSINE):
        raise ValueError("weighting 'power' raises cosine similarity to a power: use "
                         "metric='cosine', or weighting='exp' for euclidean distances")


def normalize_graph(w: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 W D^-1/2`` with ``D`` the row sums of ``W``; isolated rows stay zero."""
    w = sp.csr_matrix(w, dtype=np.float64)
    if w.shape[0] != w.shape[1]:
        raise ValueError(f"a graph must be square, got shape {w.shape}")
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv = np.zeros_like(degree)
    np.divide(1.0, np.sqrt(degree), out=inv, where=degree > 0)
    scale = sp.diags(inv)
    return (scale @ w @ scale).tocsr()
