"""The tabs' figures never receive NaN or infinite values (bqplot logs console errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchwork_widget.widget.forms import LazyFigure, finite_series


def test_points_where_a_series_is_not_finite_are_left_out():
    x, ys, kept = finite_series([1, 2, 3, 4], [[0.5, math.nan, 0.4, 0.3], [0.9, 0.8, math.inf, 0.6]],
                                ["a", "b"])
    assert x.tolist() == [1.0, 4.0] and kept == [0, 1]
    assert [y.tolist() for y in ys] == [[0.5, 0.3], [0.9, 0.6]]


def test_a_series_with_no_finite_value_is_dropped_with_its_legend_entry():
    figure = LazyFigure("t", "x", "y", ["train loss", "validation loss"], ["#111111", "#222222"])
    figure.plot([1, 2], [[0.7, 0.5], [math.nan, math.nan]])
    figure.show()
    x, ys = figure.data
    assert x.tolist() == [1.0, 2.0] and len(ys) == 1
    assert list(figure.lines.labels) == ["train loss"] and list(figure.lines.colors) == ["#111111"]
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in figure.lines.y)
    figure.plot([1, 2, 3], [[0.7, 0.5, 0.4], [0.9, 0.8, 0.7]])  # validation figures arrive
    assert list(figure.lines.labels) == ["train loss", "validation loss"]


def test_only_nan_gives_an_empty_figure():
    figure = LazyFigure("AUC", "images", "AUC", ["macro AUC"], ["#333333"])
    figure.show()
    figure.plot([10, 20], [[math.nan, math.nan]])
    x, ys = figure.data
    assert len(x) == 0 and ys == []


def test_mismatched_names_are_refused():
    with pytest.raises(ValueError, match="ys: got 2 series for 1 names"):
        finite_series([1], [[1.0], [2.0]], ["a"])


def test_a_single_point_of_several_series_keeps_its_shape():
    """bqplot squeezes a (series x 1) array to (series,), which it would read as one series."""
    figure = LazyFigure("Loss", "epoch", "loss", ["train loss", "validation loss"], ["#111111", "#222222"])
    figure.show()
    figure.plot([1], [[0.7], [0.9]])
    assert np.asarray(figure.lines.y).shape == (2, 2) and list(figure.lines.x) == [1, 1]
    figure.plot([1], [[0.7], [math.nan]])
    assert np.asarray(figure.lines.y).shape in ((2,), (1, 2))
    assert figure.data[0].tolist() == [1.0] and len(figure.data[1]) == 1


def test_a_single_point_given_before_the_figure_is_shown_is_drawn():
    figure = LazyFigure("AUC", "images", "AUC", ["macro AUC"], ["#333333"])
    figure.plot([12], [[0.93]])
    figure.show()
    assert list(figure.lines.x) == [12, 12] and np.asarray(figure.lines.y).ravel().tolist() == [0.93, 0.93]
