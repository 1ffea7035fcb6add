"""The Propagate tab: kNN graph, label propagation, score histograms, pseudo-labels (W4; A4)."""

from __future__ import annotations

import os
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from patchwork_widget.active.propagate import Method as PropagationMethod
from patchwork_widget.labels import save_labels
from patchwork_widget.session import EventKind, Session, SessionEvent
from patchwork_widget.widget.forms import FORM_LAYOUT, FORM_STYLE, LazyFigure, Status
from patchwork_widget.widget.train_tab import group_shares

GROUPS = [("labeled yes", "#2e7d32"), ("labeled no", "#c62828"), ("unlabeled", "#9e9e9e")]
BINS = np.linspace(0.0, 1.0, 21)
METHOD_TITLES = {PropagationMethod.ZHOU: "closed form (Zhou et al.)",
                 PropagationMethod.BAI: "iterative (Bai et al.)"}


def pseudo_label_path(outfile: os.PathLike | str) -> str:
    """Where pseudo-labels are exported: beside the outfile, ``<stem>_pseudo_labels.csv``."""
    stem, _ = os.path.splitext(str(outfile))
    return f"{stem}_pseudo_labels.csv"


class PropagateTab(widgets.VBox):
    """Spread labels over a nearest-neighbour graph of the features (Bai et al. 2021;
    Zhou et al. 2004)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        style, layout = FORM_STYLE, widgets.Layout(**FORM_LAYOUT)
        self.k = widgets.BoundedIntText(value=10, min=2, max=200, description="neighbours k", style=style, layout=layout)
        self.temperature = widgets.BoundedFloatText(value=0.1, min=1e-3, max=10.0, step=0.01, description="temperature",
                                                    style=style, layout=layout)
        self.method = widgets.Dropdown(options=[(METHOD_TITLES[m], m.value) for m in PropagationMethod],
                                       description="method", style=style, layout=layout)
        self.alpha = widgets.BoundedFloatText(value=0.9, min=0.01, max=0.999, step=0.01, description="alpha (Zhou)",
                                              style=style, layout=layout)
        self.iterations = widgets.BoundedIntText(value=20, min=1, max=1000, description="iterations (Bai)",
                                                 style=style, layout=layout)
        self.method.observe(lambda _: self._show_method_fields(), names="value")
        self.threshold = widgets.BoundedFloatText(value=0.9, min=0.51, max=1.0, step=0.01, description="threshold",
                                                  style=style, layout=layout)
        self.build_button = widgets.Button(description="Build graph", button_style="primary")
        self.propagate_button = widgets.Button(description="Propagate labels", disabled=True)
        self.export_button = widgets.Button(description="Export pseudo-labels", disabled=True)
        self.status = Status(layout=widgets.Layout(min_height="3em", width="380px"))
        self.build_button.on_click(lambda _: self._run(self.build))
        self.propagate_button.on_click(lambda _: self._run(self.run_propagation))
        self.export_button.on_click(lambda _: self._run(self.export))
        self.figure = LazyFigure("Propagation scores", "score", "share of group", [g[0] for g in GROUPS],
                                 [g[1] for g in GROUPS], x_range=(0.0, 1.0))
        self.hist_class = widgets.Dropdown(options=session.classes, description="class")
        self.hist_class.observe(lambda _: self.show_histogram(), names="value")
        form = widgets.VBox([
            self.k, self.temperature, self.build_button, self.method, self.alpha, self.iterations,
            self.propagate_button,
            self.threshold, self.export_button, self.status,
        ])
        super().__init__([widgets.HBox([form, widgets.VBox([self.hist_class, self.figure])],
                                       layout=widgets.Layout(flex_flow="row wrap"))])
        self._show_method_fields()
        if session.features is None:
            self.build_button.disabled = True
            self.status.say("Label propagation needs pre-extracted features (features=...).")
        session.subscribe(self._on_event)

    def show(self) -> None:
        """The tab became visible: draw its figure."""
        self.figure.show()

    def _show_method_fields(self) -> None:
        zhou = self.method.value == PropagationMethod.ZHOU.value
        self.alpha.layout.display = "" if zhou else "none"
        self.iterations.layout.display = "none" if zhou else ""

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind is EventKind.CLASSES:
            self.hist_class.options = self.session.classes
            self.export_button.disabled = self.session.propagation is None
        if event.kind in (EventKind.CLASSES, EventKind.DERIVED):
            self.show_histogram()

    def build(self) -> str:
        graph = self.session.build_graph(k=self.k.value, temperature=self.temperature.value)
        self.propagate_button.disabled = False
        search = graph.search
        found = (f"{search.backend} search, recall {search.recall:.3f}"
                 + ("" if search.reached else f", below the {search.target} asked for"))
        return f"Graph built: {graph.shape[0]:,} images, {graph.nnz:,} edges ({found})."

    def run_propagation(self) -> str:
        scores = self.session.propagate(self.method.value, alpha=self.alpha.value,
                                        iterations=self.iterations.value)
        self.export_button.disabled = False
        return f"Propagated: scores for {len(scores):,} images; 'disagreement' is now an order."

    def export(self) -> str:
        path = pseudo_label_path(self.session.store.path)
        save_labels(self.session.pseudo_labels(self.threshold.value), path)
        return f"Pseudo-labels written to {path}"

    def show_histogram(self) -> None:
        """Histograms of the chosen class's scores for labeled yes / no and unlabeled rows."""
        scores, cls = self.session.propagation, self.hist_class.value
        if scores is None or cls not in scores:
            self.figure.plot([], [])
            return
        y = self.session.df[cls].to_numpy(dtype=float)
        p = scores[cls].to_numpy()
        counts = [np.histogram(p[g], bins=BINS)[0] for g in (y == 1.0, y == 0.0, np.isnan(y))]
        self.figure.plot((BINS[:-1] + BINS[1:]) / 2, group_shares(counts))

    def _run(self, action: Callable[[], str]) -> None:
        try:
            self.status.say(action())
        except ValueError as err:
            self.status.say(str(err), error=True)
