"""BADGE: the factorised picks equal a materialised reference's (FEATURES A3, B1)."""

from __future__ import annotations

import numpy as np
import pytest

from patchwork_widget.active.badge import badge, gradient_factors


def reference_badge(probs, embeddings, k, candidates=None, labels=None, cls=None, seed=None,
                    output="sigmoid"):
    """BADGE with the N x (d+1)C gradient matrix built and distances taken directly."""
    rng = np.random.default_rng(seed)
    p = np.asarray(probs, dtype=np.float64)
    n, c = p.shape
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
def test_factorised_picks_equal_the_materialised_reference(seed, d, c):
    probs, emb, labels = problem(300, d, c, seed, labeled_fraction=0.4)
    candidates = np.random.default_rng(seed + 100).random(300) < 0.8
    for kwargs in ({}, {"labels": labels}, {"labels": labels, "candidates": candidates}):
        got = badge(probs, emb, 25, seed=seed, **kwargs)
        want = reference_badge(probs, emb, 25, seed=seed, **kwargs)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", [0, 5])
def test_single_class_and_softmax_match_the_reference(seed):
    probs, emb, labels = problem(200, 8, 4, seed, labeled_fraction=0.5)
    for cls in (0, 3):
        np.testing.assert_array_equal(
            badge(probs, emb, 20, labels=labels, cls=cls, seed=seed),
            reference_badge(probs, emb, 20, labels=labels, cls=cls, seed=seed))
    soft = probs / probs.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(badge(soft, emb, 20, seed=seed, output="softmax"),
                                  reference_badge(soft, emb, 20, seed=seed, output="softmax"))


def test_few_candidates_take_the_compact_path_with_the_same_picks():
    probs, emb, labels = problem(400, 6, 3, 7, labeled_fraction=0.3)
    candidates = np.zeros(400, dtype=bool)
    candidates[::5] = True  # 80 of 400 rows: the compact copy is used
    np.testing.assert_array_equal(
        badge(probs, emb, 30, candidates=candidates, labels=labels, seed=3),
        reference_badge(probs, emb, 30, candidates=candidates, labels=labels, seed=3))


def test_float32_embeddings_give_the_same_picks():
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
    np.testing.assert_array_equal(picks, reference_badge(probs, emb, 8, seed=4))


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
