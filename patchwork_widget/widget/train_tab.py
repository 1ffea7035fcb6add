"""The Train tab: training settings, a background run with progress, loss curves and output
histograms as bqplot figures (W4; M3, M5)."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import bqplot
import ipywidgets as widgets
import numpy as np

from patchwork_widget.session import Session
from patchwork_widget.widget.model_tab import missing_ml_packages

logger = logging.getLogger(__name__)

GROUPS = [
    ("train_positive", "train yes", "#2e7d32"),
    ("train_negative", "train no", "#c62828"),
    ("validation_positive", "val yes", "#81c784"),
    ("validation_negative", "val no", "#ef9a9a"),
    ("unlabeled", "unlabeled", "#9e9e9e"),
]
FIGURE_LAYOUT = widgets.Layout(width="460px", height="300px")


def line_figure(title: str, x_label: str, y_label: str, lines: bqplot.Lines) -> bqplot.Figure:
    x, y = lines.scales["x"], lines.scales["y"]
    axes = [bqplot.Axis(scale=x, label=x_label), bqplot.Axis(scale=y, side="left", label=y_label)]
    return bqplot.Figure(marks=[lines], axes=axes, title=title, layout=FIGURE_LAYOUT,
                         legend_location="top-right", fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 10})


class TrainTab(widgets.VBox):
    """Train the built model while labeling goes on; show how it did."""

    def __init__(self, session: Session, on_predictions: Callable[[], None]) -> None:
        self.session = session
        self.on_predictions = on_predictions
        style = {"description_width": "170px"}
        self.batch_size = widgets.BoundedIntText(value=32, min=1, max=4096, description="batch size", style=style)
        self.batches = widgets.BoundedIntText(value=0, min=0, max=100_000, description="batches per epoch (0: auto)", style=style)
        self.epochs = widgets.BoundedIntText(value=10, min=1, max=10_000, description="epochs", style=style)
        self.optimizer = widgets.Dropdown(options=["adam", "adamw", "sgd", "rmsprop"], description="optimizer", style=style)
        self.learning_rate = widgets.BoundedFloatText(value=1e-3, min=1e-7, max=10.0, step=1e-4, description="learning rate", style=style)
        self.schedule = widgets.Dropdown(
            options=["constant", "cosine", "exponential", "staircase", "warmup_cosine"], description="schedule", style=style
        )
        self.weight_decay = widgets.BoundedFloatText(value=0.0, min=0.0, max=1.0, step=1e-4, description="weight decay", style=style)
        self.unfreeze = widgets.BoundedIntText(value=0, min=0, max=10_000, description="unfreeze after (0: never)", style=style)
        self.sampling = widgets.Dropdown(
            options=[("square root", "sqrt"), ("uniform", "uniform"), ("proportional", "proportional")],
            description="stratum weights", style=style,
        )
        self.update_predictions = widgets.Checkbox(value=True, description="update predictions after training", indent=False)
        self.update_embeddings = widgets.Checkbox(value=False, description="update BADGE embeddings", indent=False)
        self.train_button = widgets.Button(description="Train", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = widgets.HTML()
        self.train_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.session.job and self.session.job.cancel())

        scales = {"x": bqplot.LinearScale(), "y": bqplot.LinearScale()}
        self.loss_lines = bqplot.Lines(x=[], y=[], scales=scales, labels=["train loss", "validation loss"],
                                       colors=["#1976d2", "#f57c00"], display_legend=True, marker="circle")
        self.loss_figure = line_figure("Loss", "epoch", "loss", self.loss_lines)
        hist_scales = {"x": bqplot.LinearScale(min=0.0, max=1.0), "y": bqplot.LinearScale(min=0.0)}
        self.hist_lines = bqplot.Lines(x=[], y=[], scales=hist_scales, labels=[g[1] for g in GROUPS],
                                       colors=[g[2] for g in GROUPS], display_legend=True)
        self.hist_figure = line_figure("Model outputs", "predicted probability", "images", self.hist_lines)
        self.hist_class = widgets.Dropdown(options=session.classes, description="class")
        self.hist_class.observe(lambda _: self.show_histogram(), names="value")
        self._history: list[dict[str, float]] = []

        form = widgets.VBox([
            self.batch_size, self.batches, self.epochs, self.optimizer, self.learning_rate, self.schedule,
            self.weight_decay, self.unfreeze, self.sampling, self.update_predictions, self.update_embeddings,
            widgets.HBox([self.train_button, self.cancel_button]), self.progress, self.status,
        ])
        plots = widgets.VBox([self.loss_figure, self.hist_class, self.hist_figure])
        super().__init__([widgets.HBox([form, plots])])
        missing = missing_ml_packages()
        if missing:
            self.train_button.disabled = True
            self.status.value = f"Training needs {' and '.join(missing)}: pip install 'patchwork_widget[all]'"

    def options(self) -> dict[str, Any]:
        """The form as ``TrainOptions`` fields."""
        return {
            "batch_size": self.batch_size.value,
            "batches_per_epoch": self.batches.value or None,
            "epochs": self.epochs.value,
            "optimizer": self.optimizer.value,
            "learning_rate": self.learning_rate.value,
            "schedule": self.schedule.value,
            "weight_decay": self.weight_decay.value,
            "unfreeze_after": self.unfreeze.value or None,
            "sampling": self.sampling.value,
        }

    def start(self) -> None:
        """Start a training run in the background (the Train button)."""
        self._history = []
        self.loss_lines.x, self.loss_lines.y = [], []
        self.progress.value = 0
        try:
            self.session.train(self.options(), progress=self._progress,
                               update_predictions=self.update_predictions.value, on_done=self._done)
        except ValueError as err:
            self._say(str(err), error=True)
            return
        self.train_button.disabled, self.cancel_button.disabled = True, False
        self._say("Training…")

    def _progress(self, epoch: int, step: int, logs: dict[str, Any]) -> None:
        """Called from the training thread after each step; the last call of an epoch
        carries its validation loss."""
        steps, epochs = int(logs["steps"]), int(logs["epochs"])
        if "val_loss" not in logs:
            if step % max(1, steps // 10) == 0:  # about ten bar updates per epoch
                self.progress.max, self.progress.value = epochs * steps, (epoch - 1) * steps + step
            return
        self.progress.max, self.progress.value = epochs * steps, epoch * steps
        self._history.append({"epoch": epoch, "loss": float(logs["loss"]), "val_loss": float(logs["val_loss"])})
        self.loss_lines.x = [h["epoch"] for h in self._history]
        self.loss_lines.y = [[h["loss"] for h in self._history], [h["val_loss"] for h in self._history]]
        self._say(f"Epoch {epoch}/{epochs}: loss {logs['loss']:.4f}, validation loss {logs['val_loss']:.4f}")

    def _done(self, job: Any) -> None:
        """Called from the training thread when the run ends."""
        self.train_button.disabled, self.cancel_button.disabled = False, True
        try:
            result = job.result()
        except Exception as err:  # shown to the user; the full traceback is in the log
            self._say(f"Training failed: {err}", error=True)
            return
        if self.update_embeddings.value:
            self.session.update_embeddings()
        self.show_histogram()
        done = "cancelled; kept the last completed epoch" if result.cancelled else "done"
        self._say(f"Training {done}: {result.epochs_completed} epoch(s).")
        self.on_predictions()

    def show_histogram(self) -> None:
        """Draw the output histograms of the chosen class."""
        if self.session.predictions is None or self.hist_class.value is None:
            return
        hist = self.session.histograms()[self.hist_class.value]
        centres = (hist["edges"][:-1] + hist["edges"][1:]) / 2
        self.hist_lines.x = centres
        self.hist_lines.y = [hist[name] for name, _, _ in GROUPS]

    def refresh_classes(self) -> None:
        self.hist_class.options = self.session.classes

    def _say(self, text: str, error: bool = False) -> None:
        style = " style='color:var(--jp-error-color1)'" if error else ""
        self.status.value = f"<span{style}>{html.escape(text)}</span>"
