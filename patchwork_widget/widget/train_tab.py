"""The Train tab: training settings, a background run with progress, loss curves and output
histograms as bqplot figures (W4; M3, M5).

It never touches the Session from another thread: progress and the end of a run reach it as
session events, on the kernel's thread. Train with no model yet builds one first (the Model
tab's settings). An L-BFGS run (the automatic solver's choice for a pooling head on features)
has no epochs: the tab says how the solve went instead of drawing a one-point loss curve.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np

from patchwork_widget.options import Optimizer, Schedule, Solver, TrainOptions, Weighting
from patchwork_widget.options.params import form_bounds
from patchwork_widget.session import Cancelled, EventKind, Session, SessionEvent
from patchwork_widget.widget.forms import FORM_LAYOUT, FORM_STYLE, LazyFigure, Status
from patchwork_widget.widget.model_tab import missing_ml_packages

logger = logging.getLogger(__name__)

GROUPS = [
    ("train_positive", "train yes", "#2e7d32"),
    ("train_negative", "train no", "#c62828"),
    ("validation_positive", "val yes", "#81c784"),
    ("validation_negative", "val no", "#ef9a9a"),
    ("unlabeled", "unlabeled", "#9e9e9e"),
]
PROGRESS_UPDATES_PER_EPOCH = 10


def group_shares(counts: list[np.ndarray]) -> list[np.ndarray]:
    """Each group's histogram as shares of that group, so a few labeled rows are not flattened
    by thousands of unlabeled ones."""
    return [c / c.sum() if c.sum() else c.astype(float) for c in counts]


def solver_summary(result: Any) -> str:
    """What an L-BFGS run did, as a sentence (``result``: a
    :class:`~patchwork_widget.models.TrainResult` with ``solver == "lbfgs"``)."""
    last = result.history.iloc[-1]
    iterations = int(last["iterations"])
    done = (f"converged in {iterations} iteration(s)" if bool(last.get("converged", True))
            else f"stopped at its limit of {iterations} iteration(s) before converging")
    val = float(last.get("val_loss", math.nan))
    val_text = (f"validation loss {val:.4f}" if math.isfinite(val)
                else "no validation rows to measure it (mark some with v)")
    return (f"L-BFGS (full batch): {done}; loss {float(last['loss']):.4f}, {val_text}. "
            "Epochs, batches and the optimizer apply to the minibatch solver only.")


class TrainTab(widgets.VBox):
    """Train the model while labeling goes on; show how it did.

    Parameters
    ----------
    session : Session
    train : mapping, optional
        ``TrainOptions`` fields the form does not show (e.g. ``augment`` from the original
        GUI's keyword); they go into every run. The number fields' bounds are
        ``TrainOptions``' declared limits (``TrainOptions.CONSTRAINTS``), so the form takes
        exactly what a script may pass.
    build : callable, optional
        Called with no argument to build the model when Train is pressed before one exists
        (the app passes the Model tab's form); raises ValueError when it cannot. By default
        the session's default model (``session.build_model()``).
    """

    def __init__(self, session: Session, train: Mapping[str, Any] | None = None,
                 build: Callable[[], Any] | None = None) -> None:
        self.session = session
        self.train_extra = dict(train or {})
        TrainOptions.from_dict(self.train_extra)  # a bad value fails here, not at the first run
        self._build = session.build_model if build is None else build
        style, layout = FORM_STYLE, widgets.Layout(**FORM_LAYOUT)

        def field(kind: type, **kw: Any) -> Any:
            return kind(style=style, layout=layout, **kw)

        default = TrainOptions()  # the form starts at the library's defaults
        self.solver = field(widgets.Dropdown, options=Solver.choices(), value=default.solver.value, description="solver")
        self.batch_size = field(widgets.BoundedIntText, value=default.batch_size, **form_bounds(TrainOptions, "batch_size"),
                                description="batch size")
        self.batches = field(widgets.BoundedIntText, value=default.batches_per_epoch or 0, min=0,
                             max=form_bounds(TrainOptions, "batches_per_epoch")["max"],
                             description="batches per epoch (0: auto)")
        self.epochs = field(widgets.BoundedIntText, value=default.epochs, **form_bounds(TrainOptions, "epochs"), description="epochs")
        self.optimizer = field(widgets.Dropdown, options=Optimizer.choices(), value=default.optimizer.value, description="optimizer")
        self.learning_rate = field(widgets.BoundedFloatText, value=default.learning_rate, step=1e-4,
                                   **form_bounds(TrainOptions, "learning_rate", 1e-9),
                                   description="learning rate")
        self.schedule = field(widgets.Dropdown, options=Schedule.choices(), value=default.schedule.value, description="schedule")
        self.weight_decay = field(widgets.BoundedFloatText, value=default.weight_decay, step=1e-4,
                                  **form_bounds(TrainOptions, "weight_decay"),
                                  description="weight decay")
        self.unfreeze = field(widgets.BoundedIntText, value=default.unfreeze_after or 0,
                              **form_bounds(TrainOptions, "unfreeze_after"),
                              description="unfreeze after (0: never)")
        self.sampling = field(widgets.Dropdown, options=Weighting.choices(), value=default.sampling.value,
                              description="stratum weights")
        self.update_predictions = widgets.Checkbox(value=True, description="update predictions after training", indent=False)
        self.update_embeddings = widgets.Checkbox(value=False, description="update BADGE embeddings", indent=False)
        self.train_button = widgets.Button(description="Train", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = Status(layout=widgets.Layout(min_height="3em", width="380px"))
        self.train_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.session.job and self.session.job.cancel())

        self.loss_figure = LazyFigure("Loss", "epoch", "loss", ["train loss", "validation loss"],
                                      ["#1976d2", "#f57c00"])
        self.hist_figure = LazyFigure("Model outputs", "predicted probability", "share of group",
                                      [g[1] for g in GROUPS], [g[2] for g in GROUPS], x_range=(0.0, 1.0))
        self.hist_class = widgets.Dropdown(options=session.classes, description="class")
        self.hist_class.observe(lambda _: self.show_histogram(), names="value")
        self._history: list[dict[str, float]] = []

        form = widgets.VBox([
            self.solver, self.batch_size, self.batches, self.epochs, self.optimizer, self.learning_rate, self.schedule,
            self.weight_decay, self.unfreeze, self.sampling, self.update_predictions, self.update_embeddings,
            widgets.HBox([self.train_button, self.cancel_button]), self.progress, self.status,
        ])
        plots = widgets.VBox([self.loss_figure, self.hist_class, self.hist_figure])
        super().__init__([widgets.HBox([form, plots], layout=widgets.Layout(flex_flow="row wrap"))])
        missing = missing_ml_packages()
        if missing:
            self.train_button.disabled = True
            self.status.say(f"Training needs {' and '.join(missing)}: pip install 'patchwork_widget[all]'")
        session.subscribe(self._on_event)

    def show(self) -> None:
        """The tab became visible: draw its figures."""
        self.loss_figure.show()
        self.hist_figure.show()

    def options(self) -> dict[str, Any]:
        """The form as ``TrainOptions`` fields."""
        return {
            **self.train_extra,
            "solver": self.solver.value,
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
        """Start a training run in the background (the Train button); with no model yet,
        build one first."""
        if self.session.model is None and not self._build_first():
            return
        try:
            self.session.train(self.options(), update_predictions=self.update_predictions.value,
                               update_embeddings=self.update_embeddings.value)
        except ValueError as err:
            self.status.say(str(err), error=True)
            return
        self._history = []
        self.loss_figure.plot([], [])
        self.progress.value = 0
        self.train_button.disabled, self.cancel_button.disabled = True, False
        self.status.say("Training…")

    def _build_first(self) -> bool:
        """Build the model Train needs (busy meanwhile); False, with the reason shown, if it
        could not be built."""
        self.train_button.disabled, self.train_button.description = True, "Building model…"
        self.status.say("No model yet: building one with the Model tab's settings…")
        try:
            self._build()
        except ValueError as err:
            self.status.say(f"Could not build a model: {err}", error=True)
            return False
        finally:
            self.train_button.disabled, self.train_button.description = False, "Train"
        return True

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind is EventKind.CLASSES:
            self.hist_class.options = self.session.classes
        elif event.kind is EventKind.DERIVED:
            self.show_histogram()
        elif event.source == "train" and event.kind is EventKind.PROGRESS:
            self._progress(*event.payload)
        elif event.source == "train" and event.kind is EventKind.TASK_END:
            self._done(event.task)

    def _progress(self, epoch: int, step: int, logs: dict[str, Any]) -> None:
        """After each step; the last call of an epoch carries its validation loss."""
        steps, epochs = int(logs["steps"]), int(logs["epochs"])
        if "val_loss" not in logs:
            if step % max(1, steps // PROGRESS_UPDATES_PER_EPOCH) == 0:
                self.progress.max, self.progress.value = epochs * steps, (epoch - 1) * steps + step
            return
        self.progress.max, self.progress.value = epochs * steps, epoch * steps
        if "iterations" in logs:  # L-BFGS: one solve, no curve to draw (see _done)
            self.loss_figure.layout.display = "none"
            return
        self.loss_figure.layout.display = ""
        self._history.append({"epoch": epoch, "loss": float(logs["loss"]), "val_loss": float(logs["val_loss"])})
        self.loss_figure.plot([h["epoch"] for h in self._history],
                              [[h["loss"] for h in self._history], [h["val_loss"] for h in self._history]])
        val = float(logs["val_loss"])
        val_text = f"validation loss {val:.4f}" if math.isfinite(val) else "no validation rows"
        self.status.say(f"Epoch {epoch}/{epochs}: loss {logs['loss']:.4f}, {val_text}")

    def _done(self, task: Any) -> None:
        self.train_button.disabled, self.cancel_button.disabled = False, True
        error = task.exception()
        if isinstance(error, Cancelled):  # an online round stopped while it trained
            self.status.say("Training cancelled.")
            return
        if error is not None:  # shown to the user; the full traceback is in the log
            self.status.say(f"Training failed: {error}", error=True)
            return
        result = task.result()
        if result.cancelled:
            self.status.say(f"Training cancelled; kept the last completed epoch: "
                            f"{result.epochs_completed} epoch(s).")
        elif result.solver == "lbfgs":
            self.status.say(f"Training done. {solver_summary(result)}")
        else:
            self.status.say(f"Training done: {result.epochs_completed} epoch(s) of minibatches.")

    def show_histogram(self) -> None:
        """Draw the output histograms of the chosen class, as shares of each group."""
        predictions, cls = self.session.predictions, self.hist_class.value
        if predictions is None or cls not in predictions.columns:
            self.hist_figure.plot([], [])
            return
        hist = self.session.histograms()[cls]
        centres = (hist["edges"][:-1] + hist["edges"][1:]) / 2
        self.hist_figure.plot(centres, group_shares([hist[name] for name, _, _ in GROUPS]))
