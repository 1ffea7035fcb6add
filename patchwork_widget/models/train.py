"""Train the fine-tuning and output models (feature M3), optionally with FixMatch (M4).

:func:`fit` is a plain function that runs in any thread: it reports progress through a
callback and stops at a ``threading.Event``. :func:`patchwork_widget.models.jobs.start_training`
runs it in a background thread. Two solvers (``TrainOptions.solver``):

- **L-BFGS** (:mod:`patchwork_widget.models.full_batch`), the default for a pooling head on
  pre-extracted features with the cross-entropy loss and no FixMatch: the problem is a convex
  logistic regression per class, solved on all labelled rows to convergence, so it is as good
  with 30 labels as a well-tuned minibatch run and needs no tuning;
- **minibatch** (:mod:`patchwork_widget.models.minibatch`): stratified batches and the
  optimizer, epoch by epoch, for convnet heads, images, focal loss, FixMatch and unfreezing.
  The number of steps does not shrink with the number of labels (``min_steps``).

Both start a new model's output bias at each class's log prior odds, minimise the same weighted
loss plus ``l2 / 2 * ||W||^2`` on the output kernel, and end, when validation labels exist and
``calibrate`` is on, with a Platt scaling per class (:mod:`patchwork_widget.models.calibration`).

One label per image: when ``TrainOptions.single_label`` says so, or (None, the default) every
labeled row has exactly one "yes", the output becomes a softmax
(:meth:`PatchworkModels.set_single_label`), the loss the masked categorical cross-entropy
(multinomial logistic regression for L-BFGS), the starting bias the classes' log shares and
the calibration one temperature; otherwise the output is (or goes back to) one sigmoid per
class.
Validation rows (not excluded, at least one label) give the validation loss, macro AUC and
calibration error.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from patchwork_widget.labels.schema import check_table, one_label_per_row
from patchwork_widget.models.calibration import (
    calibration_error,
    fold_into_output,
    logits,
    platt_scaling,
    temperature_scaling,
)
from patchwork_widget.models.convex import Cancelled, prior_bias, prior_log_rates
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.full_batch import (
    convex_obstacle,
    fit_full_batch,
    pooled_features,
)
from patchwork_widget.models.loop import Diverged, Hooks, run_epochs
from patchwork_widget.models.losses import loss_function
from patchwork_widget.models.minibatch import MinibatchRun
from patchwork_widget.models.predictions import macro_auc
from patchwork_widget.models.rows import TrainingRows
from patchwork_widget.options.checks import check_features
from patchwork_widget.options.training import Solver, TrainOptions

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, Dict[str, float]], None]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per completed epoch (one row in all for L-BFGS): ``epoch`` (from 1), ``loss``,
        ``supervised_loss``, ``val_loss``, ``val_auc``, ``val_ece``, ``learning_rate``,
        ``seconds`` and, with FixMatch, ``fixmatch_loss`` and ``mask_fraction`` (epoch means);
        L-BFGS adds ``iterations`` and ``converged``. After calibration the last row's validation figures are
        those of the calibrated model.
    cancelled : bool
        True when the cancel event stopped training; the models then hold the weights of the
        last completed epoch (or their weights before training if none completed).
    epochs_completed : int
    steps_per_epoch : int
    solver : str
        ``"lbfgs"`` or ``"minibatch"``.
    stopped : str or None
        Why training stopped early without being cancelled (a loss that became NaN or
        infinite); the models keep the last good weights.
    classes_with_positives : list of str
        Classes with a positive label among the training rows: the suggestion rule
        (:func:`patchwork_widget.active.suggest.suggestions`) never says "yes" for the others.
    single_label : bool
        Whether the model was trained as one label per image (a softmax output).
    """

    history: pd.DataFrame
    cancelled: bool
    epochs_completed: int
    steps_per_epoch: int
    solver: str = Solver.MINIBATCH.value
    stopped: Optional[str] = None
    classes_with_positives: List[str] = field(default_factory=list)
    single_label: bool = False


def choose_solver(models: PatchworkModels, features: Optional[np.ndarray],
                  options: TrainOptions) -> Solver:
    """The solver :func:`fit` uses: ``auto`` is L-BFGS where the problem is convex."""
    obstacle = convex_obstacle(models, features, options)
    if options.solver is Solver.LBFGS and obstacle is not None:
        raise ValueError(f"solver 'lbfgs' cannot train this model: {obstacle}; use solver "
                         "'minibatch' or 'auto'")
    if options.solver is Solver.AUTO:
        return Solver.LBFGS if obstacle is None else Solver.MINIBATCH
    return options.solver


def fit(
    models: PatchworkModels,
    df: pd.DataFrame,
    *,
    features: Optional[np.ndarray] = None,
    options: TrainOptions = TrainOptions(),
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: Optional[int] = None,
    norm: Optional[float] = None,
    single_channel: bool = False,
) -> TrainResult:
    """Train ``models.fine_tuning`` and ``models.output`` in place.

    Parameters
    ----------
    models : PatchworkModels
        From :func:`~patchwork_widget.models.finetune.build_models`.
    df : pandas.DataFrame
        The label table; its labels and flags are copied when training starts.
    features : np.ndarray, optional
        Pre-extracted features, one row per table row. Without them the images in
        ``df["filepath"]`` are read and passed through ``models.extractor``.
    options : TrainOptions
        Solver, batch size, epochs, optimizer, schedule, loss, FixMatch, calibration...
    progress : callable, optional
        ``progress(epoch, step, logs)``. Minibatch: after every step, with ``epoch`` in
        1..epochs and ``step`` in 1..steps_per_epoch; ``logs`` has ``loss``,
        ``supervised_loss``, ``learning_rate``, ``epochs``, ``steps`` (and ``fixmatch_loss``,
        ``mask_fraction``) for that step; the last call of an epoch comes after validation and
        carries that epoch's means and ``val_loss``, ``val_auc``, ``val_ece``, ``seconds``.
        L-BFGS: once, ``progress(1, 1, logs)`` with the history's row. An exception raised in
        it stops training (the models keep the last completed epoch's weights) and propagates.
    cancel : threading.Event, optional
        Checked before every step (every function evaluation for L-BFGS); when set, the models
        get back the weights of the last completed epoch and :attr:`TrainResult.cancelled` is
        True.
    imshape, num_channels, norm, single_channel
        Image reading options (defaults: the extractor's input shape, by the file's dtype,
        False).

    Returns
    -------
    TrainResult
    """
    if not isinstance(options, TrainOptions):
        raise ValueError(f"options must be a TrainOptions; got {type(options).__name__}")
    check_table(df)
    if features is not None:
        features = check_features("features", features, rows=len(df), finite=False)
    solver = choose_solver(models, features, options)
    rows = TrainingRows.from_table(df, models.classes, options)
    models.set_single_label(single_label_mode(rows, options))
    fresh = not models.trained
    if solver is Solver.LBFGS:
        if features.shape[0] != len(df):
            raise ValueError(f"features has {features.shape[0]} rows; the table has {len(df)}")
        result = _fit_lbfgs(models, rows, features, options, progress, cancel, fresh)
    else:
        read = {"imshape": imshape, "num_channels": num_channels, "norm": norm,
                "single_channel": single_channel}
        result = _fit_minibatch(models, df, rows, features, options, progress, cancel, read,
                                fresh)
    if result.epochs_completed:
        models.trained = True
    positives = (rows.labels[rows.train_rows] == 1).any(axis=0)
    return replace(result, classes_with_positives=[c for c, p in zip(models.classes, positives)
                                                   if p], single_label=models.single_label)


def single_label_mode(rows: TrainingRows, options: TrainOptions) -> bool:
    """``options.single_label`` when given, else whether every labeled training and
    validation row has exactly one "yes"."""
    if options.single_label is not None:
        return options.single_label
    labeled = np.concatenate([rows.train_rows, rows.val_rows])
    return len(rows.labels) > 0 and one_label_per_row(rows.labels[labeled])


def _fit_lbfgs(models: PatchworkModels, rows: TrainingRows, features: np.ndarray,
               options: TrainOptions, progress: Optional[Progress],
               cancel: Optional[threading.Event], fresh: bool) -> TrainResult:
    start = time.perf_counter()
    try:
        found = fit_full_batch(models, rows, features, options, not fresh, cancel)
    except Cancelled:
        logger.info("training cancelled")
        return TrainResult(pd.DataFrame(), True, 0, 1, Solver.LBFGS.value)
    record: Dict[str, float] = {"epoch": 1, "loss": found.loss, "supervised_loss": found.loss,
                                "iterations": found.iterations, "converged": found.converged,
                                "learning_rate": math.nan}
    probs = _head_probs(models, features, rows.val_rows, options)
    record.update(_validate(models, probs, rows.labels[rows.val_rows], options))
    record["seconds"] = time.perf_counter() - start
    logger.info("L-BFGS: %d iterations, loss %.4f, val_auc %.3f, val_ece %.3f",
                found.iterations, found.loss, record["val_auc"], record["val_ece"])
    if progress is not None:
        progress(1, 1, {**record, "epochs": 1, "steps": 1})
    return TrainResult(pd.DataFrame([record]), False, 1, 1, Solver.LBFGS.value)


def _head_probs(models: PatchworkModels, features: np.ndarray, rows: np.ndarray,
                options: TrainOptions) -> np.ndarray:
    dense = models.output.layers[-1]
    kernel, bias = dense.get_weights()
    x = pooled_features(models, features, rows, options.eval_batch_size)
    z = x @ kernel.astype(np.float64) + bias
    return softmax(z, axis=1) if models.single_label else expit(z)


def _validate(models: PatchworkModels, probs: np.ndarray, y: np.ndarray,
              options: TrainOptions, calibrate: bool = True) -> Dict[str, float]:
    """Validation figures; first, when asked and possible, calibrate the output layer."""
    if not len(y):
        return {"val_loss": math.nan, "val_auc": math.nan, "val_ece": math.nan}
    single = models.single_label
    if calibrate and options.calibrate and single:
        temperature = temperature_scaling(probs, y)
        if not np.isclose(temperature, 1.0):
            c = y.shape[1]
            fold_into_output(models.output, np.full(c, 1.0 / temperature), np.zeros(c))
            probs = softmax(np.log(np.clip(probs, 1e-30, 1.0)) / temperature, axis=1)
            logger.info("calibrated on %d validation rows: temperature %.2f", len(y),
                        temperature)
    elif calibrate and options.calibrate:
        a, b = platt_scaling(logits(probs), y)
        if not (np.allclose(a, 1.0) and np.allclose(b, 0.0)):
            fold_into_output(models.output, a, b)
            probs = expit(a * logits(probs) + b)
            logger.info("calibrated on %d validation rows: a %s, b %s", len(y),
                        np.round(a, 2).tolist(), np.round(b, 2).tolist())
    ece = calibration_error(probs, y)
    loss = loss_function(options.loss, single)
    return {"val_loss": float(loss(y, probs.astype(np.float32))),
            "val_auc": macro_auc(probs, y),
            "val_ece": float(np.nanmean(ece)) if np.isfinite(ece).any() else math.nan}


def _fit_minibatch(models: PatchworkModels, df: pd.DataFrame, rows: TrainingRows,
                   features: Optional[np.ndarray], options: TrainOptions,
                   progress: Optional[Progress], cancel: Optional[threading.Event],
                   read: Dict[str, object], fresh: bool) -> TrainResult:
    run = MinibatchRun(models, df, rows, features, options, read)
    before = run.weights()
    if fresh:  # start the output bias at the log prior odds
        dense = models.output.layers[-1]
        kernel, _ = dense.get_weights()
        prior = prior_log_rates if models.single_label else prior_bias
        bias = prior(rows.labels[rows.train_rows], rows.row_weights())
        dense.set_weights([kernel, bias.astype(kernel.dtype)])
    try:
        history, cancelled, stopped = _epochs(run, before, options, progress, cancel)
    finally:
        run.close()
        if run.unfrozen:
            models.extractor.trainable = False
    return TrainResult(pd.DataFrame(history), cancelled, len(history), run.steps,
                       Solver.MINIBATCH.value, stopped)


def _epochs(run: MinibatchRun, good: List[List[np.ndarray]], options: TrainOptions,
            progress: Optional[Progress], cancel: Optional[threading.Event]
            ) -> Tuple[List[Dict[str, float]], bool, Optional[str]]:
    """Run the epochs (:func:`~patchwork_widget.models.loop.run_epochs`); on cancel, on a NaN
    loss or on an error, put back the last completed epoch's weights (``good`` before the
    first)."""
    saved = {"good": good, "start": 0.0}
    completed: List[Dict[str, float]] = []

    def epoch_start(epoch: int) -> None:
        if options.unfreeze_after is not None and epoch == options.unfreeze_after + 1:
            run.unfreeze()
        saved["start"] = time.perf_counter()

    def after_step(epoch: int, step: int, logs: Dict[str, float]) -> None:
        logs.update(learning_rate=run.learning_rate(), epochs=options.epochs, steps=run.steps)
        if step < run.steps and progress is not None:  # the last step reports at the end
            progress(epoch, step, logs)

    def epoch_end(epoch: int, record: Dict[str, float]) -> None:
        probs, y = run.validation_probs()
        last = epoch == options.epochs  # the last epoch calibrates (when asked) before reporting
        record.update(_validate(run.models, probs, y, options, calibrate=last),
                      learning_rate=run.learning_rate(),
                      seconds=time.perf_counter() - saved["start"])
        logger.info("epoch %d/%d: loss %.4f, val_loss %.4f, val_auc %.3f", epoch,
                    options.epochs, record["loss"], record["val_loss"], record["val_auc"])
        saved["good"] = run.weights()
        completed.append(record)
        if progress is not None:
            progress(epoch, run.steps, {**record, "epochs": options.epochs, "steps": run.steps})

    try:
        outcome = run_epochs(options.epochs, lambda epoch: range(run.steps),
                             lambda _: run.step(), Hooks(epoch_start, after_step, epoch_end),
                             cancel=cancel, stop_on_nonfinite=True)
    except Diverged as e:
        run.restore(saved["good"])
        message = (f"training stopped: {e}; the models keep the weights of the last good "
                   f"epoch ({len(completed)}): lower the learning rate")
        logger.warning(message)
        return completed, False, message
    except BaseException:
        run.restore(saved["good"])
        logger.warning("training stopped by an error; the models keep the weights of the last "
                       "completed epoch (%d)", len(completed))
        raise
    if outcome.cancelled:
        run.restore(saved["good"])
        logger.info("training cancelled after %d complete epoch(s)", len(outcome.history))
    return outcome.history, outcome.cancelled, None
