"""Pieces the ipywidgets tabs share: status lines and bqplot line figures.

Figures are made when their tab is first shown (:class:`LazyFigure`): bqplot lays out a figure
in a hidden tab with a negative width and logs console errors.
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

    def show(self) -> None:
        """Create the figure (once); call when its tab becomes visible."""
        if self.lines is not None:
            return
        title, x_label, y_label, labels, colors, x_range = self._spec
        x_scale = bqplot.LinearScale() if x_range is None else bqplot.LinearScale(min=x_range[0], max=x_range[1])
        scales = {"x": x_scale, "y": bqplot.LinearScale(min=0.0)}
        self.lines = bqplot.Lines(x=self._data[0], y=self._data[1], scales=scales, labels=labels,
                                  colors=colors, display_legend=True, marker="circle" if x_range is None else None)
        axes = [bqplot.Axis(scale=scales["x"], label=x_label),
                bqplot.Axis(scale=scales["y"], side="left", label=y_label)]
        figure = bqplot.Figure(marks=[self.lines], axes=axes, title=title, legend_location="top-right",
                               layout=widgets.Layout(**FIGURE_LAYOUT),
                               fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 10})
        self.children = [figure]

    def plot(self, x: Any, y: Any) -> None:
        """Set the lines' data (x and one y series per label)."""
        self._data = (np.asarray(x), [np.asarray(v) for v in y] if len(y) else [])
        if self.lines is not None:
            self.lines.x, self.lines.y = self._data

    @property
    def data(self) -> tuple[Any, Any]:
        return self._data
