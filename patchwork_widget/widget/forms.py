"""Pieces the ipywidgets tabs share: status lines and bqplot line figures.

Figures are made when their tab is first shown (:class:`LazyFigure`): bqplot lays out a figure
in a hidden tab with a negative width and logs console errors. A figure never receives NaN or
infinite values either (bqplot logs console errors for each): :func:`finite_series` drops them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import bqplot
import ipywidgets as widgets
import numpy as np

FIGURE_LAYOUT = {"width": "460px", "height": "300px"}
FORM_STYLE = {"description_width": "170px"}
FORM_LAYOUT = {"width": "380px"}


def finite_series(x: Any, ys: Sequence[Any], names: Sequence[str]
                  ) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """The points of ``x`` where every kept series is finite, and those series.

    A series with no finite value at all (e.g. the validation loss of a run without validation
    rows) is left out entirely rather than emptying the others.

    Returns
    -------
    x : numpy.ndarray
        The kept x values.
    ys : list of numpy.ndarray
        The kept series, each restricted to the kept x values.
    kept : list of int
        Indices (into ``ys`` and ``names``) of the kept series.
    """
    if len(ys) != len(names):
        raise ValueError(f"ys: got {len(ys)} series for {len(names)} names")
    x = np.asarray(x, dtype=float)
    series = [np.asarray(v, dtype=float) for v in ys]
    kept = [i for i, v in enumerate(series) if np.isfinite(v).any()]
    if not kept:
        return x[:0], [], []
    points = np.isfinite(x)
    for i in kept:
        points &= np.isfinite(series[i])
    return x[points], [series[i][points] for i in kept], kept


class Status(widgets.HTML):
    """One line saying what the last action did; errors in the theme's error colour."""

    def say(self, text: str, error: bool = False) -> None:
        style = " style='color:var(--jp-error-color1)'" if error else ""
        self.value = f"<span{style}>{html.escape(text)}</span>"

    def clear(self) -> None:
        self.value = ""


class LazyFigure(widgets.VBox):
    """A bqplot line figure created on first :meth:`show`; data given before is kept."""

    def __init__(self, title: str, x_label: str, y_label: str, labels: Sequence[str],
                 colors: Sequence[str], x_range: tuple[float, float] | None = None) -> None:
        super().__init__(layout=widgets.Layout(**FIGURE_LAYOUT))
        self._spec = (title, x_label, y_label, list(labels), list(colors), x_range)
        self.lines: bqplot.Lines | None = None
        self._data: tuple[Any, Any] = ([], [])
        self._shown: tuple[list[str], list[str]] = (list(labels), list(colors))  # kept series

    def show(self) -> None:
        """Create the figure (once); call when its tab becomes visible."""
        if self.lines is not None:
            return
        title, x_label, y_label, labels, colors, x_range = self._spec
        x_scale = bqplot.LinearScale() if x_range is None else bqplot.LinearScale(min=x_range[0], max=x_range[1])
        scales = {"x": x_scale, "y": bqplot.LinearScale(min=0.0)}
        self.lines = bqplot.Lines(x=[], y=[], scales=scales, labels=labels,
                                  colors=colors, display_legend=True, marker="circle" if x_range is None else None)
        self._draw()
        axes = [bqplot.Axis(scale=scales["x"], label=x_label),
                bqplot.Axis(scale=scales["y"], side="left", label=y_label)]
        figure = bqplot.Figure(marks=[self.lines], axes=axes, title=title, legend_location="top-right",
                               layout=widgets.Layout(**FIGURE_LAYOUT),
                               fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 10})
        self.children = [figure]

    def plot(self, x: Any, y: Any) -> None:
        """Set the lines' data (x and one y series per label); non-finite points and series
        are left out (:func:`finite_series`), with their legend entries."""
        labels, colors = self._spec[3], self._spec[4]
        x, series, kept = finite_series(x, list(y) if len(y) else [], labels[:len(y)])
        self._data = (x, series)
        self._shown = ([labels[i] for i in kept], [colors[i] for i in kept])
        if self.lines is not None:
            self._draw()

    def _draw(self) -> None:
        assert self.lines is not None
        labels, colors = self._shown
        x, ys = self._data
        if len(x) == 1:  # bqplot squeezes a (series x 1) array into the wrong shape:
            x, ys = np.repeat(x, 2), [np.repeat(v, 2) for v in ys]  # the point, twice
        with self.lines.hold_sync():
            self.lines.x, self.lines.y = x, ys
            if labels:
                self.lines.labels, self.lines.colors = labels, colors

    @property
    def data(self) -> tuple[Any, Any]:
        return self._data
