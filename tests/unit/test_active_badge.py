"""BADGE: the factorised picks equal a materialised reference's (FEATURES A3, B1).

The default seeding is lazy (rejection sampling against stale bounds): its picks follow the
reference's D^2 distribution exactly but use the random stream differently. With every
centre applied before the next draw (the ``eager`` fixture) the picks equal the reference's
for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from patchwork_widget.active import badge as badge_module
from patchwork_widget.active.badge import badge, gradient_factors


@pytest.fixture
def eager(monkeypatch):
    """Refresh before every draw: exact distances each time, the reference's random stream."""
    monkeypatch.setattr(badge_module, "_refresh_limits", lambda n: (1, 0))


def reference_badge(probs, embeddings, k, candidates=None, labels=None, cls=None, seed=None,
                    output="sigmoid"):
    """BADGE with the N x (d+1)C gradient matrix built and distances taken directly."""
    rng = np.random.default_rng(seed)
    p = np.asarray(probs, dtype=np.float64)
    n = p.shape[0]
    if output == "sigmoid":
        a = p - (p >= 0.5)
    else:
        a = p.copy()
        a[np.arange(n), p.argmax(axis=1)] -= 1.0
    eligible = np.ones(n, dtype=bool) if candidates is None else candidates.copy()
    if labels is not None:
        known = ~np.isnan(labels)
        a[known] = 0.0
        eligible &= ~(known[:, cls] if cls is not None else known.all(axis=1))
    if cls is not None:
        a = a[:, [cls]]
    h = np.hstack([np.asarray(embeddings, dtype=np.float64), np.ones((n, 1))])
    g = (a[:, :, None] * h[:, None, :]).reshape(n, -1)  # the materialised gradient embeddings
    rows = np.flatnonzero(eligible)
    g = g[rows]
    k = min(k, len(rows))
    norms = (g * g).sum(axis=1)
    if norms.max() <= 0:
        return rows[rng.choice(len(rows), size=k, replace=False)]
    picks = [int(np.argmax(norms))]
    dist = ((g - g[picks[0]]) ** 2).sum(axis=1)
    dist[picks[0]] = 0.0
    while len(picks) < k:
        cum = np.cumsum(dist)
        if cum[-1] <= 0:
            rest = np.setdiff1d(np.arange(len(rows)), picks)
            picks += rng.choice(rest, size=k - len(picks), replace=False).tolist()
            break
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        picks.append(j)
        dist = np.minimum(dist, ((g - g[j]) ** 2).sum(axis=1))
        dist[picks] = 0.0
    return rows[np.asarray(picks)]


def problem(n, d, c, seed, labeled_fraction=0.0):
    rng = np.random.default_rng(seed)
    probs = 1.0 / (1.0 + np.exp(-2.0 * rng.normal(size=(n, c))))
    emb = rng.normal(size=(n, d))
    labels = np.where(rng.random((n, c)) < labeled_fraction,
                      (rng.random((n, c)) < 0.5).astype(float), np.nan)
    return probs, emb, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("d, c", [(1, 1), (5, 3), (16, 10), (32, 2)])
def test_factorised_picks_equal_the_materialised_reference(seed, d, c, eager):
    probs, emb, labels = problem(300, d, c, seed, labeled_fraction=0.4)
    candidates = np.random.default_rng(seed + 100).random(300) < 0.8
    for kwargs in ({}, {"labels": labels}, {"labels": labels, "candidates": candidates}):
        got = badge(probs, emb, 25, seed=seed, **kwargs)
        want = reference_badge(probs, emb, 25, seed=seed, **kwargs)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", [0, 5])
def test_single_class_and_softmax_match_the_reference(seed, eager):
    probs, emb, labels = problem(200, 8, 4, seed, labeled_fraction=0.5)
    for cls in (0, 3):
        np.testing.assert_array_equal(
            badge(probs, emb, 20, labels=labels, cls=cls, seed=seed),
            reference_badge(probs, emb, 20, labels=labels, cls=cls, seed=seed))
    soft = probs / probs.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(badge(soft, emb, 20, seed=seed, output="softmax"),
                                  reference_badge(soft, emb, 20, seed=seed, output="softmax"))


def test_few_candidates_take_the_compact_path_with_the_same_picks(eager):
    probs, emb, labels = problem(400, 6, 3, 7, labeled_fraction=0.3)
    candidates = np.zeros(400, dtype=bool)
    candidates[::5] = True  # 80 of 400 rows: the compact copy is used
    np.testing.assert_array_equal(
        badge(probs, emb, 30, candidates=candidates, labels=labels, seed=3),
        reference_badge(probs, emb, 30, candidates=candidates, labels=labels, seed=3))


def test_float32_embeddings_give_the_same_picks(eager):
    probs, emb, _ = problem(500, 24, 5, 11)
    np.testing.assert_array_equal(badge(probs, emb.astype(np.float32), 40, seed=2),
                                  reference_badge(probs, emb, 40, seed=2))


def test_labeled_and_excluded_rows_are_never_picked_and_no_row_twice():
    probs, emb, labels = problem(120, 4, 3, 1, labeled_fraction=0.0)
    labels[:40] = 1.0  # fully labeled
    labels[40:60, 0] = 0.0  # partially labeled: still eligible
    candidates = np.ones(120, dtype=bool)
    candidates[100:] = False  # excluded
    for seed in range(5):
        picks = badge(probs, emb, 200, candidates=candidates, labels=labels, seed=seed)
        assert len(picks) == 60 and len(set(picks.tolist())) == 60  # every eligible row once
        assert set(picks.tolist()) == set(range(40, 100))
    picks = badge(probs, emb, 10, labels=labels, cls=0, seed=0)
    assert not np.any(picks < 60)  # class 0 labeled on rows 0-59


def test_zero_gradients_fall_back_to_random_picks():
    n = 50
    probs = np.where(np.arange(n)[:, None] % 2 == 0, 1.0, 0.0) * np.ones((n, 3))
    emb = np.random.default_rng(0).normal(size=(n, 4))
    picks = badge(probs, emb, 10, seed=0)
    assert len(set(picks.tolist())) == 10
    np.testing.assert_array_equal(picks, badge(probs, emb, 10, seed=0))
    assert not np.array_equal(picks, badge(probs, emb, 10, seed=1))


def test_random_fill_when_distances_run_out_before_k():
    probs = np.full((30, 2), 0.3)
    probs[:3] = [[0.9, 0.2], [0.6, 0.4], [0.1, 0.8]]
    emb = np.zeros((30, 3))
    emb[:3] = np.eye(3)
    picks = badge(probs, emb, 8, seed=4)  # rows 3..29 share one gradient embedding
    assert len(set(picks.tolist())) == 8
    assert picks[0] in (0, 1, 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(badge_module, "_refresh_limits", lambda n: (1, 0))
        np.testing.assert_array_equal(badge(probs, emb, 8, seed=4),
                                      reference_badge(probs, emb, 8, seed=4))


def pick_distribution(probs, emb):
    """Exact probabilities of every (second, third) pick of a k = 3 seeding, from the
    materialised gradients: P(j) = D1(j) / sum D1, then P(l | j) = min(D1, Dj)(l) / sum."""
    n = len(probs)
    a = probs - (probs >= 0.5)
    h = np.hstack([emb, np.ones((n, 1))])
    g = (a[:, :, None] * h[:, None, :]).reshape(n, -1)
    sq = ((g[:, None, :] - g[None, :, :]) ** 2).sum(axis=2)
    first = int(np.argmax((g * g).sum(axis=1)))
    out = {}
    for j in range(n):
        if j == first:
            continue
        near = np.minimum(sq[first], sq[j])
        near[[first, j]] = 0.0
        for m in np.flatnonzero(near):
            out[(j, int(m))] = sq[first, j] / sq[first].sum() * near[m] / near.sum()
    return first, out


@pytest.mark.parametrize("limits", [None, (2, 10**9), (3, 0)],
                         ids=["never refreshed", "refresh at two pending", "refresh on rejection"])
def test_lazy_picks_follow_the_reference_distribution(monkeypatch, limits):
    # rows at very different distances, so drawing from the stale bounds instead of D^2
    # (a sampler without the rejection step) is far off this distribution
    probs, emb, _ = problem(7, 3, 2, 4)
    emb[:3] *= 0.1
    first, expected = pick_distribution(probs, emb)
    if limits is not None:
        monkeypatch.setattr(badge_module, "_refresh_limits", lambda n: limits)
    runs = 3000
    counts = dict.fromkeys(expected, 0)
    for seed in range(runs):
        picks = badge(probs, emb, 3, seed=seed)
        assert picks[0] == first
        counts[(int(picks[1]), int(picks[2]))] += 1
    keys = sorted(expected)
    observed = np.array([counts[key] for key in keys])
    want = np.array([expected[key] for key in keys]) * runs
    assert stats.chisquare(observed, want).pvalue > 1e-3


def test_lazy_refreshes_keep_the_rules_on_a_larger_problem(monkeypatch):
    monkeypatch.setattr(badge_module, "_refresh_limits", lambda n: (5, 40))
    probs, emb, labels = problem(3000, 8, 4, 3, labeled_fraction=0.3)
    candidates = np.random.default_rng(0).random(3000) < 0.7
    eligible = candidates & ~(~np.isnan(labels)).all(axis=1)
    picks = badge(probs, emb, 200, candidates=candidates, labels=labels, seed=1)
    assert len(set(picks.tolist())) == 200 and eligible[picks].all()


def test_no_phantom_centre_at_the_origin():
    # a single row far from the rest but with a small gradient norm must still be reachable
    # through D^2 from the first centre, not from the origin
    probs = np.array([[0.45], [0.45], [0.45], [0.55]])
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    picks = badge(probs, emb, 2, seed=0)
    assert picks[0] == 0  # largest norm (ties: the first row)
    assert picks[1] == 3  # the only row at a positive distance from the first centre


def test_gradient_factors_and_validation():
    probs = np.array([[0.2, 0.7], [0.5, 0.4]])
    np.testing.assert_allclose(gradient_factors(probs), [[0.2, -0.3], [-0.5, 0.4]])
    labels = np.array([[np.nan, 1.0], [0.0, np.nan]])
    np.testing.assert_allclose(gradient_factors(probs, labels), [[0.2, 0.0], [0.0, 0.4]])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        badge(probs, np.ones((2, 2)), 0)
    with pytest.raises(ValueError, match="embeddings must be N x d"):
        badge(probs, np.ones((3, 2)), 1)
    with pytest.raises(ValueError, match="unknown output 'logits'; allowed: sigmoid, softmax"):
        badge(probs, np.ones((2, 2)), 1, output="logits")
    with pytest.raises(ValueError, match=r"cls must be a class column index in \[0, 2\)"):
        badge(probs, np.ones((2, 2)), 1, cls=2)


def test_a_refresh_in_blocks_lowers_every_bound_to_the_exact_distance(monkeypatch):
    monkeypatch.setattr(badge_module, "_REFRESH_BLOCK", 50)  # blocks of 10 rows for 5 centres
    probs, emb, _ = problem(233, 6, 3, 8)
    a = gradient_factors(probs)
    grad_sq = (a * a).sum(axis=1) * ((emb * emb).sum(axis=1) + 1.0)
    valid = np.ones(233, dtype=bool)
    valid[::7] = False
    grad_sq[~valid] = 0.0
    first = int(np.argmax(grad_sq))
    seeding = badge_module._LazySeeding(emb, a, grad_sq, valid, first)
    centres = [first, 3, 50, 111, 232]
    for j in centres[1:]:
        seeding.add(j)
    seeding.refresh()
    h = np.hstack([emb, np.ones((233, 1))])
    g = (a[:, :, None] * h[:, None, :]).reshape(233, -1)
    want = ((g[:, None, :] - g[None, centres, :]) ** 2).sum(axis=2).min(axis=1)
    want[~valid] = 0.0
    want[centres] = 0.0
    np.testing.assert_allclose(seeding.bound, want, rtol=1e-9, atol=1e-9)
    assert seeding.pending == [] and seeding.total == pytest.approx(want.sum())
