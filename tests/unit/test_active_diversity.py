"""Diversity and core-set selection against plain float64 references (A2, A5): the same picks
as the textbook loops (one ``((x - c)**2).sum(1)`` per pick) on the same prepared features."""

from __future__ import annotations

import numpy as np
import pytest

from patchwork_widget.active import diversity
from patchwork_widget.active.registry import rank


def _features(n: int = 3000, d: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(8, d))[rng.integers(8, size=n)] + rng.normal(size=(n, d))
            ).astype(np.float32)


def _sq(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    diff = x.astype(np.float64) - c.astype(np.float64)
    return (diff * diff).sum(axis=1)


def reference_kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """k-means++ seeding (Arthur and Vassilvitskii 2007) in float64, written out."""
    picks = [int(rng.integers(len(x)))]
    dist = _sq(x, x[picks[0]])
    dist[picks[0]] = 0.0
    while len(picks) < k:
        cum = np.cumsum(dist)
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        picks.append(j)
        dist = np.minimum(dist, _sq(x, x[j]))
        dist[j] = 0.0
    return picks


def reference_kcenter(x: np.ndarray, k: int, centres: np.ndarray) -> list[int]:
    """Greedy k-center (Sener and Savarese 2018) in float64, written out."""
    dist = np.min([_sq(x, x[c]) for c in centres], axis=0)
    picks: list[int] = []
    while len(picks) < k:
        dist[picks] = -1.0
        j = int(np.argmax(dist))
        picks.append(j)
        dist = np.minimum(dist, _sq(x, x[j]))
    return picks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeanspp_picks_match_the_float64_reference(seed):
    x = diversity.prepare_features(_features(seed=seed))
    ours = diversity.kmeanspp_select(x, 40, seed=np.random.default_rng(seed), dim=None,
                                     normalise=False)
    assert ours.tolist() == reference_kmeanspp(x, 40, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kcenter_picks_match_the_float64_reference(seed):
    x = diversity.prepare_features(_features(seed=seed))
    centres = np.random.default_rng(seed).choice(len(x), 5, replace=False)
    ours = diversity.kcenter_greedy(x, 40, centres=centres, dim=None, normalise=False)
    assert ours.tolist() == reference_kcenter(x, 40, centres)


@pytest.mark.parametrize("share", [0.3, 0.7])  # candidates copied, or read in place
def test_picks_among_candidates_match_the_reference_on_those_rows(share):
    x = diversity.prepare_features(_features(seed=4))
    rng = np.random.default_rng(4)
    mask = rng.random(len(x)) < share
    rows = np.flatnonzero(mask)
    ours = diversity.kmeanspp_select(x, 30, mask, seed=np.random.default_rng(5), dim=None,
                                     normalise=False)
    assert ours.tolist() == rows[reference_kmeanspp(x[rows], 30,
                                                    np.random.default_rng(5))].tolist()
    labeled = np.flatnonzero(~mask)[:5]
    ours = diversity.kcenter_greedy(x, 30, mask, centres=labeled, dim=None, normalise=False)
    dist = np.min([_sq(x[rows], x[c]) for c in labeled], axis=0)
    picks: list[int] = []
    while len(picks) < 30:  # the reference, with centres outside the candidates
        dist[picks] = -1.0
        picks.append(int(np.argmax(dist)))
        dist = np.minimum(dist, _sq(x[rows], x[rows][picks[-1]]))
    assert ours.tolist() == rows[picks].tolist()


def test_duplicate_rows_count_as_picked():
    # 3 distinct points, each 4 times: after 3 picks every candidate coincides with a pick
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    picks = diversity.kmeanspp_select(x, 3, seed=0, dim=None)
    assert sorted(int(p) // 4 for p in picks) == [0, 1, 2]
    assert len(set(diversity.kmeanspp_select(x, 6, seed=0, dim=None).tolist())) == 6


def test_the_orders_prepare_the_features_once_per_array():
    features = _features(500, 100)
    cache: dict = {}
    for name in ("diversity", "coreset"):
        first = rank(name, np.ones(500, bool), 10, rng=np.random.default_rng(0),
                     features=features, cache=cache)
        prepared = cache[("prepared features",)][1]
        again = rank(name, np.ones(500, bool), 10, rng=np.random.default_rng(0),
                     features=features, cache=cache)
        assert cache[("prepared features",)][1] is prepared
        assert first.tolist() == again.tolist()
    other = features.copy()
    rank("coreset", np.ones(500, bool), 10, rng=np.random.default_rng(0), features=other,
         cache=cache)
    assert cache[("prepared features",)][0] is other


@pytest.mark.parametrize("bad", ["a", -1, True, 1.5])
def test_projection_seed_is_checked(bad):
    with pytest.raises(ValueError, match=f"projection_seed must be a non-negative integer, "
                                         f"got {bad!r}"):
        diversity.kcenter_greedy(np.eye(3), 2, projection_seed=bad)
