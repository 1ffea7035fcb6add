"""kNN search built to a recall target (FEATURES A4): measured against exact search."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from patchwork_widget.active.ann import drop_self
from patchwork_widget.active.graph import knn_graph
from patchwork_widget.active.neighbors import find_neighbors, knn_search

K = 10


@pytest.fixture(scope="module")
def hard():
    """8,000 rows of 128-d noise with no low-dimensional structure: faiss HNSW with the former
    defaults (M 16, efConstruction 40, efSearch 48) finds about 0.88 of the 10 neighbours."""
    x = np.random.default_rng(0).standard_normal((8000, 128)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # euclidean order = cosine order
    exact = NearestNeighbors(n_neighbors=K + 1).fit(unit).kneighbors(unit)[1]
    return x, drop_self(np.arange(len(x)), exact, exact)[0]


def recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


def test_former_hnsw_defaults_miss_the_target_on_this_data(hard):
    import faiss

    x, exact = hard
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.IndexHNSWFlat(x.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(unit)
    index.hnsw.efSearch = 48
    idx = index.search(unit[:1000], K + 1)[1]
    assert recall(drop_self(np.arange(1000), idx, idx)[0], exact[:1000]) < 0.95


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_tuned_search_reaches_the_recall_target_on_all_rows(hard, backend):
    x, exact = hard
    found = find_neighbors(x, K, backend=backend)
    report = found.report
    assert report.backend == backend and report.target == 0.95 and report.reached
    assert report.sample_rows == 500 and report.recall >= 0.95
    assert recall(found.indices, exact) >= 0.95  # every row, not only the sampled ones
    assert not np.any(found.indices == np.arange(len(x))[:, None])


def test_a_lower_target_searches_fewer_lists(hard):
    x, _ = hard
    high = find_neighbors(x, K, backend="ivf", recall=0.99).report
    low = find_neighbors(x, K, backend="ivf", recall=0.5).report
    assert low.setting["nlist"] == high.setting["nlist"] == 205  # 8000 rows / 39 per list
    assert low.setting["nprobe"] < high.setting["nprobe"]
    assert 0.5 <= low.recall < 0.99 <= high.recall


def test_recall_counts_ties_so_duplicate_rows_do_not_stall_the_tuning():
    base = np.random.default_rng(1).standard_normal((1500, 16))
    x = np.repeat(base, 4, axis=0)  # every row has three exact copies: neighbours tie
    found = find_neighbors(x, K, backend="ivf", recall=0.99)
    assert found.report.reached and found.report.setting["nprobe"] < found.report.setting["nlist"]
    exact_kth = NearestNeighbors(n_neighbors=K + 1, metric="cosine").fit(x).kneighbors(x)[0][:, -1]
    assert np.mean(found.distances <= exact_kth[:, None] + 1e-5) >= 0.99


def test_auto_is_exact_up_to_the_threshold_or_at_recall_one():
    x = np.random.default_rng(2).standard_normal((400, 8))
    small = find_neighbors(x, 5)
    big = find_neighbors(x, 5, exact_max_rows=100, recall=1.0)
    for found in (small, big):
        assert found.report.backend == "exact" and found.report.recall == 1.0
        assert found.report.sample_rows == 0 and found.report.reached
    assert find_neighbors(x, 5, exact_max_rows=100).report.backend == "ivf"
    idx, dist = knn_search(x, 5, "euclidean")
    want_dist, want = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x)
    assert recall(idx, want[:, 1:]) == 1.0
    np.testing.assert_allclose(dist, want_dist[:, 1:], rtol=1e-5)


def test_approximate_graph_is_symmetric_normalised_and_carries_its_report(hard):
    x, _ = hard
    w = knn_graph(x, k=K, exact_max_rows=1000, normalize=False)
    s = knn_graph(x, k=K, exact_max_rows=1000)
    assert w.search.backend == "ivf" and w.search.recall >= 0.95 and w.search.reached
    assert s.search.setting == w.search.setting  # seeded: the same search
    assert sp.isspmatrix_csr(s) and s.dtype == np.float32
    assert (w != w.T).nnz == 0 and w.diagonal().max() == 0
    degree = np.asarray(w.sum(axis=1)).ravel()
    scale = sp.diags(1 / np.sqrt(degree))
    assert abs(s - scale @ w @ scale).max() < 1e-6
    assert np.all(np.asarray((w > 0).sum(axis=1)).ravel() >= K)


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, float("nan"), "0.9", True])
def test_a_bad_recall_is_rejected_by_name(bad):
    x = np.random.default_rng(3).standard_normal((50, 4))
    with pytest.raises(ValueError, match=r"recall must be a number in \(0, 1\], got "):
        knn_graph(x, k=3, recall=bad)
    with pytest.raises(ValueError, match="sample_rows must be an integer >= 10, got 2"):
        find_neighbors(x, 3, sample_rows=2)


def test_tuning_bisects_to_the_smallest_setting_that_reaches_the_target():
    import faiss

    from patchwork_widget.active.ann import _tune

    x = np.random.default_rng(4).standard_normal((300, 8)).astype(np.float32)
    tried = []

    def search(queries, value):  # exact from 37 on, nothing found below
        tried.append(value)
        d2, idx = faiss.knn(queries, x, K + 1)
        return (d2, idx) if value >= 37 else (np.full_like(d2, np.inf), np.full_like(idx, -1))

    tuned = _tune(x, np.arange(100), K + 1, 0.95, "nprobe", (1, 300), search,
                  lambda value: search(x, value), {})
    assert tuned.setting == {"nprobe": 37} and tuned.reached and tuned.recall == 1.0
    assert tried[-1] == 37 and len(tried) <= 20  # the ladder to 45, then bisection


def test_ivf_trains_on_24_rows_per_list_quietly_and_still_reaches_the_target(hard, capfd,
                                                                              monkeypatch):
    import faiss

    from patchwork_widget.active.ann import TRAIN_ROWS_PER_LIST

    trained = []
    train = faiss.IndexIVFFlat.train

    def spy(index, rows):
        trained.append(rows.shape)
        return train(index, rows)

    monkeypatch.setattr(faiss.IndexIVFFlat, "train", spy)
    x, exact = hard
    found = find_neighbors(x, K, backend="ivf")
    nlist = found.report.setting["nlist"]
    assert TRAIN_ROWS_PER_LIST == 24 and trained == [(24 * nlist, x.shape[1])]
    assert "WARNING" not in capfd.readouterr().err  # faiss advises 39 rows a list; 24 is chosen
    assert found.report.reached and recall(found.indices, exact) >= 0.95


@pytest.mark.parametrize("known_lists", [True, False])
def test_search_by_list_finds_what_a_plain_ivf_search_finds_and_prints_nothing(known_lists,
                                                                               capfd):
    import faiss

    from patchwork_widget.active.ann import search_by_list

    x = np.random.default_rng(5).standard_normal((3000, 16)).astype(np.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(16), 16, 20)
    index.train(x)
    index.add(x)
    index.nprobe = 3
    want_d2, want = index.search(x, K + 1)
    lists = index.quantizer.search(x, 3)[1] if known_lists else None
    got_d2, got = search_by_list(index, x, K + 1, lists)
    assert (np.sort(got, axis=1) == np.sort(want, axis=1)).mean() > 0.999  # ties may swap
    np.testing.assert_allclose(got_d2, want_d2, rtol=1e-4, atol=1e-4)
    assert capfd.readouterr().out == ""


def test_a_tuned_nprobe_past_the_kept_lists_runs_the_quantizer_again(hard, monkeypatch):
    from patchwork_widget.active import ann

    monkeypatch.setattr(ann, "ASSIGN_PROBES", 2)  # the tuned nprobe on this data is larger
    x, exact = hard
    found = find_neighbors(x, K, backend="ivf")
    assert found.report.setting["nprobe"] > 2
    assert found.report.reached and recall(found.indices, exact) >= 0.95
