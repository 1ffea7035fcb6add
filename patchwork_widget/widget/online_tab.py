"""The Online tab: online active learning while labeling (W4; A6, B3).

Start, pause, resume and stop the loop of :mod:`patchwork_widget.session.online`; a strip of
the validation macro AUC per round (only rounds that have one: no NaN reaches the chart), the
label distribution, and why the loop stopped. The status says when the rounds hold out images
for validation because none of the user's validation rows is labeled, and when online mode
keeps a queue the user set (more like this, jump, a new sample) instead of re-ranking it.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets

from patchwork_widget.active.online import OnlineOptions, StopRule
from patchwork_widget.active.registry import ORDERS, ClassUse, online_orders
from patchwork_widget.options.params import form_bounds
from patchwork_widget.session import EventKind, Session, SessionEvent
from patchwork_widget.widget.forms import FORM_LAYOUT, FORM_STYLE, LazyFigure, Status
from patchwork_widget.widget.model_tab import missing_ml_packages

# the registry's online orders that need neither a class (the tab has no class picker) nor
# propagation scores (a round does not propagate)
ONLINE_ORDERS = [name for name in online_orders() if ORDERS[name].per_class is not ClassUse.REQUIRED
                 and "propagation" not in ORDERS[name].needs + ORDERS[name].any_of]


def auc_points(history: list[dict[str, Any]]) -> tuple[list[int], list[list[float]]]:
    """The AUC chart's data from the rounds' figures: labeled images against macro AUC (the
    chart leaves out rounds without one)."""
    if not history:
        return [], []
    return [r["images"] for r in history], [[r["val_auc"] for r in history]]


def status_text(status: dict[str, Any]) -> str:
    """The Online tab's status line for :meth:`Session.online_status`."""
    n = status["images_since_update"]
    text = (f"{status['state']}: {status['rounds']} round(s); model updated "
            f"{n} image{'' if n == 1 else 's'} ago")
    if status["training"]:
        if status.get("worker") == "starting":
            text += "; training in the kernel while the worker process is starting"
        else:
            text += "; training" + (" in a worker process" if status["runner"] == "process" else "")
    elif status.get("worker") == "starting":
        text += "; worker process starting"
    held = status["held_out"]
    if held:
        text += (f". No labeled validation rows: {held} labeled image(s) held out to measure "
                 "the model (mark your own with v)")
    elif status["rounds"] and not math.isfinite(status["history"][-1]["val_auc"]):
        text += ". No validation figures yet: mark validation images with v"
    if status["queue_kept"]:
        text += (". Keeping your queue (it changed since online mode ranked it): "
                 "Re-rank now hands it back")
    if status["reason"]:
        text += f". {status['reason']}"
    return text


class OnlineTab(widgets.VBox):
    """Retrain after every n labeled images and re-rank what comes next."""

    def __init__(self, session: Session) -> None:
        self.session = session
        style, layout = FORM_STYLE, widgets.Layout(**FORM_LAYOUT)
        default = OnlineOptions()  # the form starts at the library's defaults, within its limits
        self.every = widgets.BoundedIntText(value=default.every, **form_bounds(OnlineOptions, "every"),
                                            description="retrain every (images)",
                                            style=style, layout=layout)
        self.order = widgets.Dropdown(options=ONLINE_ORDERS, value=default.order.name, description="then order by",
                                      style=style, layout=layout)
        self.explore = widgets.FloatSlider(value=default.explore, **form_bounds(OnlineOptions, "explore"),
                                           step=0.05, description="random share",
                                           style=style, layout=layout)
        self.count = widgets.BoundedIntText(value=default.count, **form_bounds(OnlineOptions, "count"),
                                            description="re-ranked rows",
                                            style=style, layout=layout)
        self.macro_auc = widgets.BoundedFloatText(value=0.0, **form_bounds(StopRule, "macro_auc"), step=0.01,
                                                  description="stop at val. macro AUC (0: off)", style=style, layout=layout)
        self.holdout = widgets.BoundedFloatText(value=default.holdout, **form_bounds(OnlineOptions, "holdout"), step=0.05,
                                                description="hold out if no val. rows", style=style, layout=layout)
        self.start_button = widgets.Button(description="Start", button_style="primary")
        self.rerank_button = widgets.Button(description="Re-rank now", disabled=True,
                                            tooltip="re-rank the queue after the cursor with the current model")
        self.pause_button = widgets.Button(description="Pause", disabled=True)
        self.stop_button = widgets.Button(description="Stop", disabled=True)
        self.status = Status(layout=widgets.Layout(min_height="3em", width="380px"))
        self.distribution = widgets.HTML()
        self.figure = LazyFigure("Validation macro AUC per round", "labeled images", "macro AUC",
                                 ["macro AUC"], ["#1976d2"])
        self.start_button.on_click(lambda _: self._act(self.start))
        self.pause_button.on_click(lambda _: self._act(self.toggle_pause))
        self.stop_button.on_click(lambda _: self._act(self.session.stop_online))
        self.rerank_button.on_click(lambda _: self._act(self.session.rerank_online))
        form = widgets.VBox([self.every, self.order, self.explore, self.count, self.macro_auc, self.holdout,
                             widgets.HBox([self.start_button, self.pause_button, self.stop_button,
                                           self.rerank_button]),
                             self.status])
        super().__init__([widgets.HBox([form, widgets.VBox([self.figure, self.distribution])],
                                       layout=widgets.Layout(flex_flow="row wrap"))])
        missing = missing_ml_packages()
        if missing:
            self.start_button.disabled = True
            self.status.say(f"Online learning needs {' and '.join(missing)}: pip install 'patchwork_widget[all]'")
        session.subscribe(self._on_event)
        self._show_distribution()

    def show(self) -> None:
        """The tab became visible: draw its figure."""
        self.figure.show()

    def start(self) -> None:
        stop: dict[str, Any] = {"macro_auc": self.macro_auc.value or None}
        self.session.start_online(every=self.every.value, order=self.order.value,
                                  explore=self.explore.value, count=self.count.value, stop=stop,
                                  holdout=self.holdout.value)

    def toggle_pause(self) -> None:
        if self.session.online_status()["state"] == "paused":
            self.session.resume_online()
        else:
            self.session.pause_online()

    def _act(self, action: Any) -> None:
        try:
            action()
        except ValueError as err:
            self.status.say(str(err), error=True)

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind is EventKind.ONLINE:
            self._show_status(event.payload)
        elif event.kind in (EventKind.CLASSES, EventKind.DERIVED):
            self._show_distribution()

    def _show_status(self, status: dict[str, Any]) -> None:
        state = status["state"]
        on = state in ("running", "paused")
        self.start_button.disabled = on
        self.pause_button.disabled, self.stop_button.disabled = not on, not on
        self.pause_button.description = "Resume" if state == "paused" else "Pause"
        self.rerank_button.disabled = not on or not status["rounds"]
        self.figure.plot(*auc_points(status["history"]))
        self.status.say(status_text(status), error="failed" in status["reason"])
        self._show_distribution()

    def _show_distribution(self) -> None:
        """Training labels per class: yes / no."""
        counts = self.session.counts
        rows = "".join(
            f"<tr><td>{html.escape(str(c))}</td><td>{int(r['train_positive'])}</td>"
            f"<td>{int(r['train_negative'])}</td></tr>" for c, r in counts.iterrows())
        self.distribution.value = ("<table class='pw-online-labels'><tr><th>class</th><th>yes</th>"
                                   f"<th>no</th></tr>{rows}</table>")
