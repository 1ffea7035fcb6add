"""The Propagate tab: kNN graph, label propagation, score histograms, pseudo-labels (W4; A4)."""

from __future__ import annotations

import html
import os
from collections.abc import Callable

import bqplot
import ipywidgets as widgets
import numpy as np

from patchwork_widget.labels import save_labels
from patchwork_widget.session import Session
from patchwork_widget.widget.train_tab import line_figure

GROUPS = [("labeled yes", "#2e7d32"), ("labeled no", "#c62828"), ("unlabeled", "#9e9e9e")]
BINS = np.linspace(0.0, 1.0, 21)


class PropagateTab(widgets.VBox):
    """Spread labels over a nearest-neighbour graph of the features (Bai et al. 2021;
    Zhou et al. 2004)."""

    def __init__(self, session: Session, on_scores: Callable[[], None]) -> None:
        self.session = session
        self.on_scores = on_scores
        style = {"description_width": "120px"}
        self.k = widgets.BoundedIntText(value=10, min=2, max=200, description="neighbours k", style=style)
        self.temperature = widgets.BoundedFloatText(value=0.1, min=1e-3, max=10.0, step=0.01, description="temperature", style=style)
        self.method = widgets.Dropdown(
            options=[("closed form (Zhou et al.)", "zhou"), ("iterative (Bai et al.)", "bai")],
            description="method", style=style,
        )
        self.threshold = widgets.BoundedFloatText(value=0.9, min=0.51, max=1.0, step=0.01, description="threshold", style=style)
        self.build_button = widgets.Button(description="Build graph", button_style="primary")
        self.propagate_button = widgets.Button(description="Propagate labels", disabled=True)
        self.export_button = widgets.Button(description="Export pseudo-labels", disabled=True)
        self.status = widgets.HTML()
        self.build_button.on_click(lambda _: self._run(self.build))
        self.propagate_button.on_click(lambda _: self._run(self.run_propagation))
        self.export_button.on_click(lambda _: self._run(self.export))
        scales = {"x": bqplot.LinearScale(min=0.0, max=1.0), "y": bqplot.LinearScale(min=0.0)}
        self.lines = bqplot.Lines(x=[], y=[], scales=scales, labels=[g[0] for g in GROUPS],
                                  colors=[g[1] for g in GROUPS], display_legend=True)
        self.figure = line_figure("Propagation scores", "score", "images", self.lines)
        self.hist_class = widgets.Dropdown(options=session.classes, description="class")
        self.hist_class.observe(lambda _: self.show_histogram(), names="value")
        form = widgets.VBox([
            self.k, self.temperature, self.build_button, self.method, self.propagate_button,
            self.threshold, self.export_button, self.status,
        ])
        super().__init__([widgets.HBox([form, widgets.VBox([self.hist_class, self.figure])])])
        if session.features is None:
            self.build_button.disabled = True
            self.status.value = "Label propagation needs pre-extracted features (features=...)."

    def build(self) -> str:
        graph = self.session.build_graph(k=self.k.value, temperature=self.temperature.value)
        self.propagate_button.disabled = False
        return f"Graph built: {graph.shape[0]:,} images, {graph.nnz:,} edges."

    def run_propagation(self) -> str:
        scores = self.session.propagate(self.method.value)
        self.export_button.disabled = False
        self.hist_class.options = self.session.classes
        self.show_histogram()
        self.on_scores()
        return f"Propagated: scores for {len(scores):,} images; 'disagreement' is now an order."

    def export(self) -> str:
        stem, _ = os.path.splitext(str(self.session.store.path))
        path = f"{stem}_pseudo_labels.csv"
        save_labels(self.session.pseudo_labels(self.threshold.value), path)
        return f"Pseudo-labels written to {path}"

    def show_histogram(self) -> None:
        """Histograms of the chosen class's scores for labeled yes / no and unlabeled rows."""
        scores, cls = self.session.propagation, self.hist_class.value
        if scores is None or cls not in scores:
            return
        y = self.session.df[cls].to_numpy(dtype=float)
        p = scores[cls].to_numpy()
        groups = [y == 1.0, y == 0.0, np.isnan(y)]
        self.lines.x = (BINS[:-1] + BINS[1:]) / 2
        self.lines.y = [np.histogram(p[g], bins=BINS)[0] for g in groups]

    def _run(self, action: Callable[[], str]) -> None:
        try:
            self.status.value = html.escape(action())
        except ValueError as err:
            self.status.value = f"<span style='color:var(--jp-error-color1)'>{html.escape(str(err))}</span>"
