"""Comparison figures (FEATURES A5): learning curves with spread, and a map of the picks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.active.simulate import area_under_learning_curve, aulc_summary

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from patchwork_widget.active.plots import embed_2d, plot_comparison, plot_picks  # noqa: E402


def frame():
    rows = []
    for strategy, slope in (("random", 0.001), ("badge", 0.002)):
        for repeat in range(3):
            for rnd, n in enumerate((10, 20, 40)):
                rows.append((strategy, repeat, rnd, n, 0.5 + slope * n + 0.01 * repeat,
                             "acquisition"))
    results = pd.DataFrame(rows, columns=["strategy", "repeat", "round", "n_labeled", "metric",
                                          "model"])
    results.attrs["metric"] = "accuracy"
    return results


def test_area_under_the_learning_curve_by_hand():
    aulc = area_under_learning_curve(frame())
    # random, repeat 0: points (10, .51), (20, .52), (40, .54): area (10 * .515 + 20 * .53) / 30
    assert aulc.iloc[0]["aulc"] == pytest.approx((10 * 0.515 + 20 * 0.53) / 30)
    summary = aulc_summary(frame())
    assert list(summary.index) == ["badge", "random"]
    assert summary.loc["random", "std"] == pytest.approx(np.std([0.0, 0.01, 0.02]))


def test_plot_comparison_draws_a_line_and_a_band_per_strategy():
    ax = plot_comparison(frame())
    assert len(ax.get_lines()) == 2 and len(ax.collections) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("random (AULC 0.5")
    assert ax.get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="spread must be 'std' or 'range'"):
        plot_comparison(frame(), spread="iqr")
    matplotlib.pyplot.close("all")


def test_plot_picks_marks_each_strategy_on_one_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    axes = plot_picks(x, {"a": [1, 2, 3], "b": [4]}, labels=rng.integers(0, 3, 80))
    assert [ax.get_title() for ax in axes] == ["a (3 picks)", "b (1 pick)"]
    assert embed_2d(x, "tsne").shape == (80, 2)
    with pytest.raises(ValueError, match="unknown method 'umap'; allowed: pca, tsne"):
        embed_2d(x, "umap")
    matplotlib.pyplot.close("all")
