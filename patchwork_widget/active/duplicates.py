"""Near-duplicate groups of images from the kNN search (issue 22).

Two rows are near-duplicates when one is among the other's ``k`` nearest neighbours
(:func:`~.neighbors.find_neighbors`, cosine) at a cosine distance (``1 - cos``) of at most
``threshold``; groups are the connected components of that relation with two rows or more
(scipy's ``connected_components``), so a chain of close copies forms one group that a single
multi-select can label. The default threshold was measured on the demo with planted copies
(``benchmarks/bench_duplicates.py``; docs/active_learning.md).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from patchwork_widget.active.neighbors import find_neighbors
from patchwork_widget.options.checks import check_int, check_number

__all__ = ["DEFAULT_THRESHOLD", "duplicate_group_ids", "group_ranked", "near_duplicate_groups"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.01  # cosine distance; measured (module docstring)


def near_duplicate_groups(features: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                          k: int = 10, **search: object) -> list[np.ndarray]:
    """Groups of near-identical rows, largest first.

    Parameters
    ----------
    features : np.ndarray
        N x d features (N x h x w x c maps are average-pooled), e.g. the pre-extracted ones.
    threshold : float
        Largest cosine distance (``1 - cos``) between two near-duplicates, in [0, 2).
    k : int
        Neighbours searched per row (``1 <= k < N``): a group larger than ``k + 1`` is still
        found when its rows chain through each other's neighbours.
    **search
        Other options of :func:`~.neighbors.find_neighbors` (``backend``, ``recall``, ...);
        the metric is always cosine.

    Returns
    -------
    list of np.ndarray
        Sorted row indices of each group of two or more rows; groups by decreasing size, then
        by first row.
    """
    check_number("threshold", threshold, 0.0, 2.0, open_high=True)
    check_int("k", k, 1)
    if "metric" in search:
        raise TypeError("near_duplicate_groups searches by cosine distance; 'metric' is not an "
                        "option")
    found = find_neighbors(features, k, **search)
    n = len(found.indices)
    rows, cols = np.nonzero((found.indices >= 0) & (found.distances <= threshold))
    pairs = sp.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, found.indices[rows, cols])),
                          shape=(n, n))
    count, component = connected_components(pairs, directed=False)
    sizes = np.bincount(component, minlength=count)
    groups = [np.flatnonzero(component == c) for c in np.flatnonzero(sizes >= 2)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    logger.info("near duplicates at cosine distance <= %g: %d groups, %d rows", threshold,
                len(groups), sum(len(g) for g in groups))
    return groups


def duplicate_group_ids(groups: list[np.ndarray], n: int) -> np.ndarray:
    """Each of ``n`` rows' group in ``groups`` (:func:`near_duplicate_groups`): its index in
    that list, or -1 for a row in no group."""
    check_int("n", n, 0)
    ids = np.full(n, -1, dtype=np.intp)
    for number, rows in enumerate(groups):
        ids[rows] = number
    return ids


def group_ranked(ranked: np.ndarray, ids: np.ndarray, count: int) -> list[np.ndarray]:
    """Whole groups in the order their best-ranked row comes, up to ``count`` rows.

    Parameters
    ----------
    ranked : np.ndarray
        Rows, best first (an order's ranking of the candidates).
    ids : np.ndarray
        Every row's group (:func:`duplicate_group_ids`); rows of ``ranked`` in no group are
        dropped.
    count : int
        Rows wanted: each group in turn is added when it fits in what is left (a larger one
        is passed over for the smaller ones after it); a group is never split, and the first
        is kept whatever its size, so a sample is never empty when a group exists.

    Returns
    -------
    list of np.ndarray
        The rows of each group, in the order ``ranked`` gives them, groups by their first row
        in ``ranked``.
    """
    check_int("count", count, 1)
    ranked = np.asarray(ranked, dtype=np.intp)
    grouped = ranked[ids[ranked] >= 0]
    if not len(grouped):
        return []
    _, first, inverse = np.unique(ids[grouped], return_index=True, return_inverse=True)
    key = first[inverse]  # where each row's group first comes in the ranking
    order = np.argsort(key, kind="stable")
    chunks = np.split(grouped[order], np.flatnonzero(np.diff(key[order])) + 1)
    taken: list[np.ndarray] = []
    size = 0
    for rows in chunks:
        if taken and size + len(rows) > count:
            continue  # too large for what is left: a smaller group further on may fit
        taken.append(rows)
        size += len(rows)
    return taken
