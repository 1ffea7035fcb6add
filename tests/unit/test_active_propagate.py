"""kNN graph and label propagation (FEATURES A4) against exact search and LabelSpreading."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.semi_supervised import LabelSpreading

from patchwork_widget.active.graph import knn_graph, normalize_graph
from patchwork_widget.active.neighbors import knn_search
from patchwork_widget.active.propagate import propagate, pseudo_label_frame, pseudo_labels

NAN = np.nan


def clustered(n, d, seed=0, clusters=8, latent=6):
    """Rows near a few clusters on a low-dimensional subspace, like image features."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(clusters, latent))[rng.integers(0, clusters, n)]
    z += rng.normal(size=(n, latent))
    return (z @ rng.normal(size=(latent, d)) + 0.05 * rng.normal(size=(n, d))), z


def recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_search_equals_sklearn(metric):
    x, _ = clustered(700, 12, seed=1)
    idx, dist = knn_search(x, 5, metric=metric, backend="exact")
    nn = NearestNeighbors(n_neighbors=6, metric=metric, algorithm="brute").fit(x)
    want_dist, want = nn.kneighbors(x)
    assert recall(idx, want[:, 1:]) == 1.0
    np.testing.assert_allclose(dist, want_dist[:, 1:], rtol=1e-4, atol=1e-4)  # float32
    assert not np.any(idx == np.arange(700)[:, None])


def test_approximate_path_recall_against_exact_sklearn_neighbours():
    x, _ = clustered(6000, 32, seed=2)
    graph = knn_graph(x, k=10, exact_max_rows=2000, normalize=False)  # 6,000 rows: IVF-Flat
    assert graph.search.backend == "ivf" and graph.search.reached
    assert graph.shape == (6000, 6000) and (graph != graph.T).nnz == 0
    # a row's 10 heaviest edges are its neighbours (a mutual pair's weight counts twice)
    found = [row.indices[np.argsort(-row.data, kind="stable")[:10]] for row in graph]
    want = NearestNeighbors(n_neighbors=11, metric="cosine").fit(x).kneighbors(x)[1][:, 1:]
    assert recall(found, want) >= 0.95


def test_graph_is_symmetric_normalised_with_exp_or_power_weights():
    x, _ = clustered(300, 8, seed=3)
    idx, dist = knn_search(x, 4)
    w = knn_graph(x, k=4, normalize=False, temperature=0.2).toarray()
    assert np.allclose(w, w.T) and np.all(np.diag(w) == 0)
    i, j = 7, idx[7, 0]
    one_way = np.exp(-dist[7, 0] / 0.2)
    assert w[i, j] == pytest.approx(one_way * (1 + (i in idx[j])), rel=1e-5)
    s = knn_graph(x, k=4, temperature=0.2).toarray()
    deg = w.sum(axis=1)
    np.testing.assert_allclose(s, w / np.sqrt(np.outer(deg, deg)), rtol=1e-5)
    p = knn_graph(x, k=4, weighting="power", gamma=3.0, normalize=False).toarray()
    assert p[i, j] == pytest.approx((1 - dist[7, 0]) ** 3 * (1 + (i in idx[j])), rel=1e-4)
    assert sp.issparse(knn_graph(x, k=4))
    with pytest.raises(ValueError, match="unknown weighting 'gauss'; allowed: exp, power"):
        knn_graph(x, weighting="gauss")
    with pytest.raises(ValueError, match="use metric='cosine'"):
        knn_graph(x, weighting="power", metric="euclidean")
    with pytest.raises(ValueError, match="k must be an integer in"):
        knn_graph(x, k=300)


def test_zhou_closed_form_agrees_with_sklearn_label_spreading():
    x, z = clustered(400, 10, seed=4, clusters=2)
    truth = (z[:, 0] > np.median(z[:, 0])).astype(float)
    rng = np.random.default_rng(0)
    y = np.full(400, -1)
    known = rng.choice(400, 30, replace=False)
    y[known] = truth[known]
    w = knn_graph(x, k=8, normalize=False).toarray().astype(np.float64)
    spreading = LabelSpreading(kernel=lambda a, b: w, alpha=0.99, max_iter=20000, tol=1e-12)
    spreading.fit(x, y)
    labels = np.where(y >= 0, y, np.nan).astype(float)
    ours = propagate(normalize_graph(w), labels, method="zhou", alpha=0.99, tol=1e-12,
                     dtype=np.float64)
    np.testing.assert_allclose(ours[:, 0], spreading.label_distributions_[:, 1], atol=1e-6)


def test_multi_hot_labels_with_per_class_missing_entries():
    x, z = clustered(500, 10, seed=5, clusters=3)
    truth = np.c_[z[:, 0] > 0, z[:, 1] > 0, z[:, 2] > 0].astype(float)
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((500, 3)) < 0.1, truth, np.nan)  # each class its own gaps
    graph = knn_graph(x, k=10)
    for method in ("zhou", "bai"):
        exact = dict(method=method, dtype=np.float64, tol=1e-9)  # agree beyond CG's tolerance
        scores = propagate(graph, labels, **exact)
        assert scores.shape == (500, 3) and scores.min() >= 0 and scores.max() <= 1
        alone = np.hstack([propagate(graph, labels[:, c], **exact) for c in range(3)])
        np.testing.assert_allclose(scores, alone, atol=1e-5)  # classes propagate independently
        unknown = np.isnan(labels)
        assert np.mean((scores[unknown] >= 0.5) == truth[unknown]) > 0.8
    bai = propagate(graph, labels, method="bai")
    np.testing.assert_array_equal(bai[~np.isnan(labels)], labels[~np.isnan(labels)])


def test_unreached_rows_and_unlabeled_classes_score_one_half():
    # two components: a path 0-1-2 and an edge 3-4; only row 0 (positive) and row 2
    # (negative) are labeled
    w = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 0, 0, 0],
                                [0, 0, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=float))
    labels = np.array([[1.0, NAN], [NAN, NAN], [0.0, NAN], [NAN, NAN], [NAN, NAN]])
    for method in ("bai", "zhou"):
        scores = propagate(normalize_graph(w), labels, method=method)
        np.testing.assert_array_equal(scores[:, 1], 0.5)  # class 1 has no labels at all
        np.testing.assert_array_equal(scores[[3, 4], 0], 0.5)  # unreached
        np.testing.assert_allclose(scores[1, 0], 0.5, atol=1e-6)  # halfway (float32)
        assert scores[0, 0] > 0.5 > scores[2, 0]


def test_bai_iteration_by_hand():
    # path 0-1-2-3; S for a path: 1/sqrt(d_i d_j) on edges, degrees (1, 2, 2, 1)
    w = sp.diags([np.ones(3), np.ones(3)], [-1, 1]).tocsr()
    s = normalize_graph(w)
    labels = np.array([1.0, NAN, NAN, 0.0])
    # one step from positive seed [1,0,0,0] -> row 1 gets 1/sqrt(2); negative [0,0,0,1] -> row
    # 2 gets 1/sqrt(2); the "both" channel is their sum: scores 1, 1, 0, 0 after one step
    np.testing.assert_allclose(propagate(s, labels, method="bai", iterations=1)[:, 0],
                               [1.0, 1.0, 0.0, 0.0], atol=1e-6)
    # two steps: positive rows 1, 2 = 1/sqrt2, 1/(2 sqrt2); both-channel rows 1, 2 = 3/(2 sqrt2)
    np.testing.assert_allclose(propagate(s, labels, method="bai", iterations=2)[:, 0],
                               [1.0, 2 / 3, 1 / 3, 0.0], atol=1e-6)


def test_pseudo_labels():
    scores = np.array([[0.95, 0.5], [0.02, 0.91], [0.6, 0.08]])
    np.testing.assert_array_equal(pseudo_labels(scores, 0.9),
                                  [[1, NAN], [0, 1], [NAN, 0]])
    known = np.array([[0.0, NAN], [NAN, NAN], [NAN, 1.0]])
    frame = pseudo_label_frame(scores, ["a", "b"], 0.9, labels=known)
    np.testing.assert_array_equal(frame.to_numpy(), [[0, NAN], [0, 1], [NAN, 1]])
    assert list(frame.columns) == ["a", "b"]
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0.5, 1\]"):
        pseudo_labels(scores, 0.4)


def test_propagate_validates_its_inputs():
    s = normalize_graph(sp.eye(3, format="csr"))
    with pytest.raises(ValueError, match="labels must be 0, 1 or NaN; row 1, column 0 holds 2"):
        propagate(s, np.array([1.0, 2.0, NAN]))
    with pytest.raises(ValueError, match="unknown method 'lp'; allowed: bai, zhou"):
        propagate(s, np.array([1.0, 0.0, NAN]), method="lp")
    with pytest.raises(ValueError, match=r"alpha must be a float in \(0, 1\)"):
        propagate(s, np.array([1.0, 0.0, NAN]), alpha=1.0)


def test_renumbering_large_graphs_does_not_change_the_scores(monkeypatch):
    from patchwork_widget.active import propagate as module

    x, z = clustered(400, 10, seed=6, clusters=3)
    labels = np.where(np.random.default_rng(2).random((400, 2)) < 0.1,
                      np.c_[z[:, 0] > 0, z[:, 1] > 0].astype(float), np.nan)
    graph = knn_graph(x, k=8)
    plain = {m: propagate(graph, labels, method=m, dtype=np.float64) for m in ("bai", "zhou")}
    monkeypatch.setattr(module, "REORDER_MIN_ROWS", 10)
    for method, want in plain.items():
        np.testing.assert_allclose(propagate(graph, labels, method=method, dtype=np.float64),
                                   want, atol=1e-9)
        np.testing.assert_allclose(propagate(graph, labels, method=method), want, atol=1e-4)


def test_balanced_channels_equal_class_mass_normalised_label_spreading():
    # one positive seed against many negative ones: plain scores lean to "no"; balanced ones
    # weigh each channel by 1 / its seed count (Zhu et al. 2003), computed here from
    # scikit-learn's own (unbalanced) label distributions
    x, z = clustered(400, 10, seed=6, clusters=4)
    truth = (z[:, 0] > np.quantile(z[:, 0], 0.75)).astype(float)
    rng = np.random.default_rng(2)
    y = np.full(400, -1)
    known = np.r_[rng.choice(np.flatnonzero(truth == 1), 3, replace=False),
                  rng.choice(np.flatnonzero(truth == 0), 27, replace=False)]
    y[known] = truth[known]
    w = knn_graph(x, k=8, normalize=False).toarray().astype(np.float64)
    spreading = LabelSpreading(kernel=lambda a, b: w, alpha=0.9, max_iter=20000, tol=1e-12)
    d = spreading.fit(x, y).label_distributions_[:, 1]
    expected = (d / 3) / (d / 3 + (1 - d) / 27)
    labels = np.where(y >= 0, y, np.nan).astype(float)
    exact = dict(method="zhou", alpha=0.9, tol=1e-12, dtype=np.float64)
    balanced = propagate(normalize_graph(w), labels, balance=True, **exact)[:, 0]
    np.testing.assert_allclose(balanced, expected, atol=1e-6)
    plain = propagate(normalize_graph(w), labels, **exact)[:, 0]
    np.testing.assert_allclose(plain, d, atol=1e-6)
    unknown = y < 0
    assert (balanced[unknown] >= 0.9).sum() > (plain[unknown] >= 0.9).sum()
    with pytest.raises(ValueError, match="balance must be True or False, got 'yes'"):
        propagate(normalize_graph(w), labels, balance="yes")
