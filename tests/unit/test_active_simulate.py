"""Strategy comparison (FEATURES A5): determinism, plug-ins, and a real gain over random."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from patchwork_widget.active.simulate import (
    area_under_learning_curve,
    aulc_summary,
    compare_strategies,
    load_results,
    picked_rows,
)
from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.active.strategies import PoolState, from_diversity, from_scores, mixed

# every order the widget offers that needs no class, and per-class ones on a named class
STRATEGIES = ["random", "max entropy", "least confidence", "margin", "knn confidence", "badge",
              "coreset", "diversity", "disagreement", OrderChoice("highest", "3"),
              OrderChoice("low", "3"), OrderChoice("propagation score", "3"),
              OrderChoice("margin", random_fraction=0.5)]
TITLES = [s if isinstance(s, str) else s.title for s in STRATEGIES]

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x / 16.0, y


def logistic():
    return LogisticRegression(max_iter=200, tol=1e-3)


def small_run(digits, **kwargs):
    x, y = digits
    options = dict(seed_size=15, query_size=10, rounds=2, repeats=2, seed=3)
    options.update(kwargs)
    return compare_strategies(x[:500], y[:500], options.pop("strategies", list(STRATEGIES)),
                              logistic, **options)


def test_every_strategy_runs_and_the_frame_is_tidy(digits):
    results = small_run(digits)
    assert list(results.columns) == ["strategy", "repeat", "round", "n_labeled", "metric", "model"]
    assert set(results["strategy"]) == set(TITLES)
    assert len(results) == len(STRATEGIES) * 2 * 3
    assert results.groupby(["strategy", "repeat"])["n_labeled"].apply(list).map(
        lambda n: n == [15, 25, 35]).all()
    picks = picked_rows(results, repeat=1)
    for rows in picks.values():
        assert len(rows) == 20 and len(set(rows.tolist())) == 20


def test_deterministic_for_a_seed(digits):
    strategies = ["random", "badge", "margin"]
    first = small_run(digits, strategies=strategies)
    second = small_run(digits, strategies=strategies)
    pd.testing.assert_frame_equal(first, second)
    assert first.attrs["picks"] == second.attrs["picks"]
    other = small_run(digits, strategies=strategies, seed=4)
    assert first.attrs["picks"] != other.attrs["picks"]
    # a strategy's picks do not depend on which other strategies run beside it
    alone = small_run(digits, strategies=["badge"])
    assert [r for r in first.attrs["picks"] if r["strategy"] == "badge"] == alone.attrs["picks"]


def test_user_plugins_mixes_successor_and_json(digits, tmp_path):
    seen = {}

    def widest(probs):  # a scoring function: higher = label first
        return probs.max(axis=1) - probs.min(axis=1)

    def first_rows(features, k, candidates, rng):  # a diversity function
        return np.flatnonzero(candidates)[:k]

    def spy(state: PoolState, k, rng):  # a raw strategy
        seen["state"] = state
        return np.flatnonzero(~state.labeled)[-k:]

    path = tmp_path / "results.json"
    results = small_run(digits, strategies={
        "score": from_scores(widest), "first": from_diversity(first_rows), "spy": spy,
        "margin+50% random": mixed("margin", 0.5), "all random": mixed("badge", 1.0)},
        successor_factory=lambda: LogisticRegression(C=0.1, max_iter=200),
        json_path=path, metric="macro_f1")
    assert set(results["model"]) == {"acquisition", "successor"}
    assert seen["state"].probs.shape == (len(seen["state"].labeled), 10)
    first = picked_rows(results)["first"]
    assert np.all(np.diff(first[:10]) > 0)  # the lowest unlabeled rows, in order
    back = load_results(path)
    pd.testing.assert_frame_equal(back, results.reset_index(drop=True), check_dtype=False)
    assert back.attrs["picks"] == results.attrs["picks"]
    assert json.loads(path.read_text())["config"]["metric"] == "macro_f1"


def test_multi_hot_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = np.c_[x[:, 0] + 0.3 * x[:, 1] > 0, x[:, 2] > 0.5, x[:, 3] - x[:, 4] > 0].astype(int)
    results = compare_strategies(x, y, ["random", "max entropy", "badge", "least confidence",
                                        "margin", OrderChoice("highest", "1")], logistic, seed_size=20, query_size=10,
                                 rounds=2, repeats=2, metric="auc")
    assert results["metric"].between(0.5, 1.0).all()
    with pytest.raises(ValueError, match="multi-hot labels must be 0 or 1"):
        compare_strategies(x, np.where(y == 1, np.nan, y), ["random"], logistic)


def test_options_are_validated(digits):
    x, y = digits
    with pytest.raises(ValueError, match="unknown strategy 'bald'; available: random"):
        compare_strategies(x, y, ["bald"], logistic)
    with pytest.raises(ValueError, match="unknown metric 'f2'; allowed: accuracy, macro_f1, auc"):
        compare_strategies(x, y, ["random"], logistic, metric="f2")
    with pytest.raises(ValueError, match="seed_size must be a count in"):
        compare_strategies(x, y, ["random"], logistic, seed_size=0)
    with pytest.raises(ValueError, match="model_factory must be a callable"):
        compare_strategies(x, y, ["random"], LogisticRegression())
    with pytest.raises(ValueError, match="give callables as a mapping"):
        compare_strategies(x, y, [lambda s, k, r: []], logistic)


def test_badge_beats_random_on_digits_in_area_under_the_learning_curve(digits):
    """Digits, logistic regression, 20 seed rows + 6 rounds of 20, 5 repeats (~10 s)."""
    x, y = digits
    results = compare_strategies(x, y, ["random", "max entropy", "badge"], logistic, seed_size=20,
                                 query_size=20, rounds=6, repeats=5, seed=0)
    summary = aulc_summary(results)
    logger.info("AULC on digits:\n%s", summary)
    per_repeat = area_under_learning_curve(results).pivot(index="repeat", columns="strategy",
                                                           values="aulc")
    assert summary.loc["badge", "mean"] > summary.loc["random", "mean"] + 0.02
    assert (per_repeat["badge"] > per_repeat["random"]).sum() >= 3  # 4 of 5 as measured


def test_no_tensorflow_under_active():
    code = ("import sys, patchwork_widget.active as a; "
            "import patchwork_widget.active.badge, patchwork_widget.active.graph, "
            "patchwork_widget.active.neighbors, patchwork_widget.active.propagate, "
            "patchwork_widget.active.simulate, patchwork_widget.active.strategies, "
            "patchwork_widget.active.plots, patchwork_widget.active.diversity; "
            "import numpy as np; from patchwork_widget.active.neighbors import knn_search; "
            "knn_search(np.random.rand(60, 4), 3, backend='hnsw'); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', "
            "'torch', 'pynndescent', 'numba')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
