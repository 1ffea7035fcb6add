"""DeepCluster's pseudo-labels (feature F8), NumPy and scikit-learn only (no TensorFlow).

Features are reduced by PCA to ``pca_dim``, whitened and L2-normalised, then clustered by
k-means (Caron et al. 2018, https://arxiv.org/abs/1807.05520, section 3.3). Empty clusters are
re-seeded by splitting the largest one, and images are drawn uniformly over clusters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

__all__ = ["Clustering", "cluster_features", "reseed_empty_clusters", "uniform_over_clusters",
           "whiten"]

EPS = 1e-8


@dataclass(frozen=True)
class Clustering:
    """One refit: ``labels`` ``(N,)`` in ``0..k-1``, every cluster non-empty; ``mean``
    ``(d,)`` and ``projection`` ``(d, pca_dim)`` map raw features ``f`` to
    ``l2_normalise((f - mean) @ projection)``; ``centroids`` ``(k, pca_dim)`` live in that
    space; ``reseeded``: how many empty clusters were re-seeded."""

    labels: np.ndarray
    mean: np.ndarray
    projection: np.ndarray
    centroids: np.ndarray
    reseeded: int


def whiten(features: np.ndarray, pca_dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """PCA to ``pca_dim`` components with whitening; returns ``(mean, projection)`` such that
    ``(features - mean) @ projection`` has (near) identity covariance. Directions without
    variance get a zero column instead of an infinite one."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    std = s[:pca_dim] / np.sqrt(max(len(x) - 1, 1))
    scale = np.where(std > EPS, 1.0 / np.maximum(std, EPS), 0.0)
    projection = vt[:pca_dim].T * scale
    if projection.shape[1] < pca_dim:   # fewer samples than pca_dim: pad with zero directions
        projection = np.pad(projection, ((0, 0), (0, pca_dim - projection.shape[1])))
    return mean.astype(np.float32), projection.astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)


def reseed_empty_clusters(x: np.ndarray, labels: np.ndarray, k: int,
                          rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, int]:
    """Give every empty cluster half of the largest cluster's members.

    The largest cluster is split at the median of its members' projections on a random
    direction (ties by position), so both halves are non-empty whenever it holds two or more
    points; both centroids become the means of their halves. Returns ``(labels, centroids,
    count)`` with ``count`` the number of clusters re-seeded.

    Raises
    ------
    ValueError
        When there are fewer points than clusters.
    """
    if len(x) < k:
        raise ValueError(f"k={k} clusters need at least {k} images; got {len(x)}")
    labels = np.asarray(labels).copy()
    count = 0
    for empty in range(k):
        if np.any(labels == empty):
            continue
        sizes = np.bincount(labels, minlength=k)
        big = int(np.argmax(sizes))
        members = np.flatnonzero(labels == big)
        direction = rng.standard_normal(x.shape[1])
        order = members[np.argsort(x[members] @ direction, kind="stable")]
        labels[order[len(order) // 2:]] = empty
        count += 1
    centroids = np.stack([x[labels == c].mean(axis=0) for c in range(k)])
    return labels, centroids.astype(np.float32), count


def cluster_features(features: np.ndarray, k: int, pca_dim: int,
                     rng: np.random.Generator, kmeans_iter: int = 20) -> Clustering:
    """PCA-whiten, L2-normalise and k-means ``features`` ``(N, d)`` into ``k`` clusters.

    k-means is scikit-learn's (k-means++ start drawn from ``rng``, one run of at most
    ``kmeans_iter`` Lloyd iterations); empty clusters are then re-seeded
    (:func:`reseed_empty_clusters`).
    """
    mean, projection = whiten(features, pca_dim)
    x = _normalise((np.asarray(features, np.float32) - mean) @ projection)
    km = KMeans(n_clusters=k, n_init=1, max_iter=kmeans_iter,
                random_state=int(rng.integers(2**31 - 1)))
    with warnings.catch_warnings():   # fewer distinct points than k: re-seeded below
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = km.fit_predict(x)
    labels, centroids, count = reseed_empty_clusters(x, labels, k, rng)
    return Clustering(labels.astype(np.int32), mean, projection, centroids, count)


def uniform_over_clusters(labels: np.ndarray, k: int, n: Optional[int],
                          rng: np.random.Generator) -> np.ndarray:
    """``n`` (default ``len(labels)``) image indices drawn with replacement so that every
    non-empty cluster is equally likely (each image has weight ``1 / size of its cluster``),
    as DeepCluster samples to keep large clusters from dominating."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    weights = 1.0 / sizes[labels]
    return rng.choice(len(labels), size=len(labels) if n is None else n,
                      p=weights / weights.sum())
