"""The Session's modeling part (M1-M5): build, train in the background, predict, embed.

TensorFlow is imported only inside its methods, so a labeling-only Session never loads it.
Training follows :mod:`.background`: the worker trains and predicts on a snapshot of the table
taken when training starts; the history, predictions and embeddings are put in place on the
owner thread, carried through any class edit made meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patchwork_widget.labels.groups import validation_mask
from patchwork_widget.options import (
    FineTuneOptions,
    FixMatchOptions,
    LossOptions,
    TrainOptions,
)
from patchwork_widget.options.checks import too_large_for_memory
from patchwork_widget.session.background import Report, Task, run_in_background
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.derived import training_positives
from patchwork_widget.session.events import EventKind

if TYPE_CHECKING:  # the models package imports TensorFlow: only when a model is built
    from patchwork_widget.models import PatchworkModels, TrainResult

Progress = Callable[[int, int, dict], None]

MIN_VALIDATION = 50  # labeled validation rows that choose the thresholds on their own


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training worker hands back: the run, and arrays computed from the trained model."""

    result: TrainResult
    probs: np.ndarray | None
    embeddings: np.ndarray | None
    class_auc: dict[str, float] = field(default_factory=dict)  # validation AUC per class
    heldout: tuple[np.ndarray, np.ndarray] | None = None  # heldout_predictions
    out_of_fold: np.ndarray | None = None  # labeled_out_of_fold


@dataclass(frozen=True)
class RoundRequest:
    """What one training run needs besides the model and the features: the table as of the
    run's start (flags and class columns) and what to compute after training."""

    snapshot: pd.DataFrame
    options: TrainOptions
    update_predictions: bool
    update_embeddings: bool
    class_auc: bool = False  # also the validation AUC per class (online rounds' stop rules)
    # out-of-fold predictions of every labeled training row (the disagreement order's); when
    # False (online rounds, which re-rank unlabeled images only) only where the suggestion
    # thresholds need them (too few validation rows)
    out_of_fold: bool = True


# runner(model, request, model inputs, cancel event, report) -> outcome; the model ends trained
Runner = Callable[[Any, RoundRequest, dict, threading.Event, Report], TrainingOutcome]


def snapshot_classes(snapshot: pd.DataFrame) -> list[str]:
    """A run's class names: its snapshot's class columns. A class renamed during the run
    renames the kernel's model (``model.classes``) but not the snapshot."""
    return [c for c in snapshot.columns if c not in ("filepath", "exclude", "validation")]


def train_and_predict(model: PatchworkModels, request: RoundRequest, inputs: dict[str, Any],
                      cancel: threading.Event, report: Report) -> TrainingOutcome:
    """Train ``model`` in place on ``request.snapshot``, then predict every row (and compute
    BADGE embeddings) as asked. ``inputs`` are :func:`~patchwork_widget.models.fit`'s
    ``features`` or image reading options."""
    from patchwork_widget import models as m

    snapshot = request.snapshot
    result = m.fit(model, snapshot, options=request.options, cancel=cancel,
                   progress=lambda *step: report(step), **inputs)
    # columns in output order, which is the snapshot's classes (a rename meanwhile renames
    # model.classes, not the outputs)
    probs = m.predict(model, snapshot, **inputs).to_numpy() if request.update_predictions else None
    embeddings = (m.embed_features(model, inputs["features"])
                  if request.update_embeddings else None)
    class_auc = {}
    if request.class_auc and probs is not None:
        classes = snapshot_classes(snapshot)
        rows = validation_mask(snapshot)
        auc, _ = m.class_metrics(probs[rows].astype(float), snapshot.loc[rows, classes].to_numpy(float))
        class_auc = {c: float(a) for c, a in zip(classes, auc)}
    _, _, validation = _labeled_rows(snapshot)
    wanted = request.out_of_fold or validation.sum() < MIN_VALIDATION
    oof = (labeled_out_of_fold(model, snapshot, result, inputs.get("features"), request.options)
           if probs is not None and wanted else None)
    heldout = heldout_predictions(snapshot, probs, oof) if probs is not None else None
    return TrainingOutcome(result, probs, embeddings, class_auc, heldout, oof)


def _labeled_rows(snapshot: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The snapshot's labels (N x C), its labeled training rows and its labeled validation
    rows (masks; excluded rows are neither)."""
    labels = snapshot[snapshot_classes(snapshot)].to_numpy(float)
    labeled = ~np.isnan(labels).all(axis=1) & ~snapshot["exclude"].to_numpy(bool)
    validation = labeled & validation_mask(snapshot)
    return labels, labeled & ~validation, validation


def labeled_out_of_fold(model: PatchworkModels, snapshot: pd.DataFrame, result: TrainResult,
                        features: np.ndarray | None, options: TrainOptions) -> np.ndarray | None:
    """N x C 5-fold out-of-fold predictions of the labeled training rows (a linear head on
    features, as L-BFGS fits it: :func:`~patchwork_widget.models.convex.out_of_fold`), NaN on
    every other row; None when not possible (a convnet head, no features, fewer than 10
    labeled training rows). Each row's prediction comes from a head that never saw its label,
    which the suggestion thresholds (:func:`heldout_predictions`) and the disagreement order
    (B4: a head fitted on a flipped label has learned it) need."""
    from patchwork_widget.models import convex, full_batch

    labels, train, _ = _labeled_rows(snapshot)
    if result.solver != "lbfgs" or features is None or train.sum() < 10:
        return None
    rows = np.flatnonzero(train)
    x = full_batch.pooled_features(model, features, rows, options.eval_batch_size)
    out = np.full(labels.shape, np.nan)
    out[rows] = convex.out_of_fold(x, labels[rows], l2=options.l2,
                                   single_label=result.single_label, max_iter=options.max_iter)
    return out


def heldout_predictions(snapshot: pd.DataFrame, probs: np.ndarray, out_of_fold: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(probs, labels)`` of held-out rows, which the suggestion thresholds are chosen from
    (:meth:`DerivedState.quality`): the validation rows' predictions when at least
    ``MIN_VALIDATION`` are labeled, else the out-of-fold predictions of the training labels
    (:func:`labeled_out_of_fold`); None when neither exists."""
    labels, train, validation = _labeled_rows(snapshot)
    if validation.sum() >= MIN_VALIDATION:
        return probs[validation], labels[validation]
    if out_of_fold is not None:
        return out_of_fold[train], labels[train]
    return None


class Modeling:
    """The model of a Session: building, background training, outputs. Uses the context's
    store, features and derived state (which holds the model)."""

    def __init__(self, context: SessionContext, single_label: bool | None = None) -> None:
        self.context = context
        self.single_label = single_label  # declared one label per image (None: from the labels)
        self.job: Task | None = None
        self.loss: LossOptions | None = None  # of the model, set by build_model
        self.fixmatch: FixMatchOptions | None = None  # of the model, set by build_model

    # ------------------------------------------------------------------ what exists
    @property
    def model(self) -> PatchworkModels | None:
        return self.context.derived.model

    @property
    def models(self) -> dict[str, Any]:
        """The Keras models built so far: feature_extractor, fine_tuning, output."""
        model = self.context.derived.model
        return {} if model is None else model.as_dict()

    @property
    def predictions(self) -> pd.DataFrame | None:
        """Model outputs in [0, 1] per row, one column per class they cover (M5)."""
        ctx = self.context
        ctx.dispatcher.drain()
        return ctx.derived.predictions

    @property
    def embeddings(self) -> np.ndarray | None:
        return self.context.derived.embeddings

    @property
    def train_history(self) -> pd.DataFrame | None:
        """Per-epoch figures of the last training run."""
        return self.context.derived.history

    def set_predictions(self, predictions: pd.DataFrame) -> None:
        """Use outputs in [0, 1] computed elsewhere: one row per table row, a column per class."""
        ctx = self.context
        missing = [c for c in ctx.classes if c not in predictions.columns]
        if missing or len(predictions) != len(ctx.df):
            raise ValueError(
                f"predictions need one row per table row ({len(ctx.df)}) and a column per "
                f"class; got {len(predictions)} rows, missing columns {missing}"
            )
        ctx.derived.set_predictions(predictions, ctx.derived.stamp(ctx.classes),
                                     training_positives(ctx.df, ctx.classes))
        ctx.emit(EventKind.DERIVED, source="predictions")

    # ------------------------------------------------------------------ build and train
    def build_model(
        self,
        finetune: FineTuneOptions | Mapping[str, Any] | None = None,
        loss: LossOptions | Mapping[str, Any] | None = None,
        fixmatch: FixMatchOptions | Mapping[str, Any] | None = None,
    ) -> PatchworkModels:
        """Implements ``Session.build_model`` (documented there)."""
        ctx = self.context
        head = _options(FineTuneOptions, finetune)  # validated before TensorFlow is loaded
        loss_options, fixmatch_options = _options(LossOptions, loss), _options(FixMatchOptions, fixmatch)
        features = ctx.features
        if features is None and ctx.extraction.running:
            partial = ctx.partial_features()
            if partial is None:
                raise ValueError(f"no features yet ({ctx.extraction.progress_text()}): build "
                                 "the model once the first batch is extracted")
            features = partial[0]
        if features is None and ctx.feature_extractor is None:
            raise ValueError("a model needs features or a feature_extractor; the session has neither")
        self._check_not_training()
        from patchwork_widget import models as m

        ctx.derived.model = m.build_models(
            ctx.classes,
            feature_shape=None if features is None else features.shape[1:],
            extractor=None if features is not None else ctx.feature_extractor,
            options=head,
        )
        self.loss, self.fixmatch = loss_options, fixmatch_options
        return ctx.derived.model

    def train(
        self,
        options: TrainOptions | Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        update_predictions: bool = True,
        update_embeddings: bool = False,
        on_done: Callable[[Task], None] | None = None,
        runner: Runner | None = None,
    ) -> Task:
        """Implements ``Session.train`` (documented there)."""
        ctx = self.context
        ctx.dispatcher.drain()
        model = ctx.derived.model
        if model is None or list(model.classes) != ctx.classes:
            raise ValueError("build a model for the current classes first (build_model)")
        self._check_not_training()
        if update_embeddings:
            _check_embeddable(ctx.features)
        train_options = _options(TrainOptions, options)
        train_options = replace(train_options, loss=self.loss, fixmatch=self.fixmatch,
                                single_label=self.single_label
                                if train_options.single_label is None else train_options.single_label)
        stamp = ctx.derived.stamp(ctx.classes)
        snapshot = ctx.store.copy(["filepath", "exclude", "validation", *ctx.classes])
        inputs, missing = self._model_inputs()
        unreadable = ctx.unreadable_mask() | missing  # rows without features count as these
        snapshot.loc[unreadable, "exclude"] = True  # never trained or validated on
        if missing.any():
            _check_some_labeled(snapshot, ctx)
        request = RoundRequest(snapshot, train_options, update_predictions, update_embeddings)

        def work(cancel: threading.Event, report: Report) -> TrainingOutcome:
            return (runner or train_and_predict)(model, request, inputs, cancel, report)

        def apply(outcome: TrainingOutcome) -> TrainResult:
            ctx.derived.history = outcome.result.history
            if outcome.probs is not None:
                probs = outcome.probs.astype(float)
                probs[unreadable | ctx.unreadable_mask()] = np.nan  # no output: no suggestion
                frame = pd.DataFrame(probs, columns=list(stamp.classes), index=snapshot.index)
                ctx.derived.set_predictions(frame, stamp,
                                            training_positives(snapshot, stamp.classes),
                                            outcome.result.single_label, outcome.heldout,
                                            outcome.out_of_fold)
            if outcome.embeddings is not None:
                ctx.derived.set_embeddings(outcome.embeddings)
            ctx.emit(EventKind.DERIVED, source="train")
            return outcome.result

        def on_progress(step: tuple) -> None:
            if progress is not None:
                progress(*step)
            ctx.emit(EventKind.PROGRESS, payload=step, source="train")

        def on_end(task: Task) -> None:
            ctx.emit(EventKind.TASK_END, task=task, source="train")
            if on_done is not None:
                on_done(task)

        self.job = run_in_background("train", ctx.dispatcher, work, apply,
                                     on_progress=on_progress, on_end=on_end)
        return self.job

    def _check_not_training(self) -> None:
        if self.job is not None and not self.job.done():
            raise ValueError("a training run is going; cancel it or wait for it")

    # ------------------------------------------------------------------ outputs
    def update_predictions(self) -> pd.DataFrame:
        """Predict every row with the current model and keep the result (M5)."""
        from patchwork_widget import models as m

        ctx = self.context
        model = ctx.derived.model
        if model is None:
            raise ValueError("no model yet: build and train one first")
        if list(model.classes) != ctx.classes:
            raise ValueError("the model was built for other classes: build it again and train")
        inputs, missing = self._model_inputs()
        predictions = m.predict(model, ctx.df, **inputs)
        predictions.loc[missing] = np.nan  # no features yet: no output
        self.set_predictions(predictions)
        return ctx.derived.predictions

    def update_embeddings(self) -> np.ndarray:
        """Penultimate features of every row (the fine-tuning model's output), for BADGE."""
        ctx = self.context
        model = ctx.derived.model
        if model is None or ctx.features is None:
            raise ValueError("BADGE embeddings need a model trained on pre-extracted features")
        _check_embeddable(ctx.features)
        from patchwork_widget import models as m

        ctx.derived.set_embeddings(m.embed_features(model, ctx.features))
        ctx.emit(EventKind.DERIVED, source="embeddings")
        return ctx.derived.embeddings

    def histograms(self, bins: int = 20) -> dict[str, dict[str, np.ndarray]]:
        """Implements ``Session.histograms`` (documented there)."""
        from patchwork_widget import models as m

        ctx = self.context
        predictions = ctx.derived.predictions
        if predictions is None:
            raise ValueError("no predictions yet: train a model first")
        covered = [c for c in ctx.classes if c in predictions.columns]
        return m.output_histograms(predictions, ctx.df, covered, bins=bins)

    def _model_inputs(self) -> tuple[dict[str, Any], np.ndarray]:
        """What the model reads (features or image options), and the mask of the rows that
        have no features yet (the background extraction's; then left out and given NaN)."""
        ctx = self.context
        missing = np.zeros(len(ctx.df), dtype=bool)
        if ctx.features is not None:
            return {"features": ctx.features}, missing
        partial = ctx.partial_features()
        if partial is not None:
            features, ready = partial
            return {"features": features}, ~ready.copy()
        if ctx.extraction.running:
            raise ValueError(f"no features yet ({ctx.extraction.progress_text()}): train once "
                             "the first batch is extracted")
        return {"imshape": ctx.model_input_size(), "num_channels": ctx.num_channels}, missing


def _check_some_labeled(snapshot: pd.DataFrame, ctx: SessionContext) -> None:
    """While features are extracted: refuse a run none of whose labeled images has features."""
    _, train, _ = _labeled_rows(snapshot)
    if not train.any():
        raise ValueError(f"none of the labeled images has features yet "
                         f"({ctx.extraction.progress_text()}; the labeled rows go first): "
                         "train again in a moment")


def _check_embeddable(features: Any) -> None:
    """Refuse BADGE embeddings where they cannot be held: they are an in-memory array with a
    row per image (the features themselves for a linear head), which features read from
    storage (a memmap or Zarr array) are there to avoid."""
    if features is None:
        raise ValueError("BADGE embeddings need pre-extracted features (features=...)")
    if too_large_for_memory(features):
        raise ValueError(f"update_embeddings: BADGE embeddings hold a row per image in memory, "
                         f"as large as the features for a linear head; the features here are "
                         f"read from storage ({type(features).__name__} of shape "
                         f"{tuple(features.shape)}) and larger than IN_MEMORY_BYTES, so the "
                         "'badge' order is not available: use another order")


def _options(kind: type, value: Any) -> Any:
    """An options dataclass from an instance, a dict of its fields, or None (defaults)."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind.from_dict(value)
    raise ValueError(f"expected {kind.__name__} or a dict of its fields, got {type(value).__name__}")
