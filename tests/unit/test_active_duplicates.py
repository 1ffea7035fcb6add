"""Near-duplicate groups (issue 22) against brute-force cosine distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from sklearn.metrics.pairwise import cosine_distances

from patchwork_widget.active.duplicates import near_duplicate_groups


def brute_force(x: np.ndarray, threshold: float) -> list[list[int]]:
    close = cosine_distances(x.astype(np.float64)) <= threshold
    _, component = connected_components(close, directed=False)
    groups = [np.flatnonzero(component == c).tolist() for c in np.unique(component)]
    return sorted((g for g in groups if len(g) >= 2), key=lambda g: (-len(g), g[0]))


def test_groups_equal_brute_force_connected_components():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16))
    planted = {3: 4, 10: 2, 20: 1}  # row: its number of copies (rows 300-306)
    copies = np.vstack([x[row] + 1e-3 * rng.normal(size=(n, 16)) for row, n in planted.items()])
    x = np.vstack([x, copies]).astype(np.float32)
    x[[305, 306]] *= 3.0  # a scaled copy is still a copy under cosine
    groups = near_duplicate_groups(x, threshold=0.001, k=5)
    assert [g.tolist() for g in groups] == brute_force(x, 0.001)
    assert [g.tolist() for g in groups] == [[3, 300, 301, 302, 303], [10, 304, 305], [20, 306]]
    # a larger threshold joins more rows, exactly as brute force does
    assert [g.tolist() for g in near_duplicate_groups(x, 0.3, k=10)] == brute_force(x, 0.3)


def test_bad_arguments_name_the_value():
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_groups(x, threshold=-0.1)
    with pytest.raises(ValueError, match="k"):
        near_duplicate_groups(x, k=0)
    with pytest.raises(TypeError, match="'metric' is not an option"):
        near_duplicate_groups(x, metric="euclidean")
