"""Train the fine-tuning and output models (feature M3), optionally with FixMatch (M4).

:func:`fit` is a plain function that runs in any thread: it reports progress through a
callback and stops at a ``threading.Event``. :func:`patchwork_widget.models.jobs.start_training`
runs it in a background thread. The step is a custom ``tf.function`` (no XLA).

Data:

- with pre-extracted ``features`` (N x d or N x h x w x c, array or memmap) batches are
  gathered with NumPy and images are never read;
- otherwise the label table's files are decoded by the ``tf.data`` pipeline
  (:mod:`patchwork_widget.images.pipeline`), augmented per batch and sent through the extractor.

Rows: training rows are neither excluded nor validation; batches are drawn by the stratified
sampler (I4) over their labels. Validation rows (not excluded, at least one label) give the
validation loss and macro AUC after every epoch. FixMatch's unlabelled rows are training rows
with at least one missing label.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from patchwork_widget.images.augment import augment_batch, is_active, validate_augment
from patchwork_widget.images.batch import read_images
from patchwork_widget.images.pipeline import AUTOTUNE, decoder_kinds, image_loader
from patchwork_widget.images.sampler import StratifiedSampler
from patchwork_widget.labels.groups import train_mask, validation_mask
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.fixmatch import fixmatch_loss, perturb_features
from patchwork_widget.models.losses import LossOptions
from patchwork_widget.models.options import TrainOptions, make_optimizer
from patchwork_widget.models.predictions import macro_auc

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, Dict[str, float]], None]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per completed epoch: ``epoch`` (from 1), ``loss``, ``supervised_loss``,
        ``val_loss``, ``val_auc``, ``learning_rate``, ``seconds`` and, with FixMatch,
        ``fixmatch_loss`` and ``mask_fraction`` (epoch means).
    cancelled : bool
        True when the cancel event stopped training; the models then hold the weights of the
        last completed epoch (or their weights before training if none completed).
    epochs_completed : int
    steps_per_epoch : int
    """

    history: pd.DataFrame
    cancelled: bool
    epochs_completed: int
    steps_per_epoch: int


class _Run:
    """One training run: data access, compiled step, validation."""

    def __init__(self, models: PatchworkModels, df: pd.DataFrame, features: Optional[np.ndarray],
                 options: TrainOptions, read: Dict[str, Any]) -> None:
        self.models, self.options = models, options
        classes = list(models.classes)
        missing = [c for c in classes if c not in df.columns]
        if missing:
            raise ValueError(f"the label table has no column for class(es) {missing}")
        self.labels = df[classes].to_numpy(dtype=np.float32)
        train = train_mask(df)
        val = validation_mask(df)
        labelled = ~np.isnan(self.labels).all(axis=1)
        self.val_rows = np.flatnonzero(val & labelled)
        self.unlabeled_rows = np.flatnonzero(train & np.isnan(self.labels).any(axis=1))
        self.sampler = StratifiedSampler(self.labels, train, options.sampling, options.seed,
                                         classes)
        self.rng = np.random.default_rng(None if options.seed is None else options.seed + 1)
        n_train = int((train & labelled).sum())
        self.steps = options.batches_per_epoch or max(1, math.ceil(n_train / options.batch_size))
        self.fixmatch = options.fixmatch.enabled
        if self.fixmatch and not len(self.unlabeled_rows):
            logger.warning("FixMatch is on but every training row is fully labelled: it is skipped")
            self.fixmatch = False
        self.loss_fn = options.loss.loss_fn()
        lo = options.loss
        self.u_elements = LossOptions(lo.kind, 0.0, lo.gamma, lo.alpha).elements()
        self.features = features
        if features is not None:
            self._init_features(df, features)
        else:
            self._init_images(df, read)
        self.optimizer = make_optimizer(options, self.steps)
        self.optimizer.build(self._trainable(options.unfreeze_after is not None))
        self.unfrozen = False
        self._step = self._make_step()
        self._predict = tf.function(lambda x: self._forward(x, False), reduce_retracing=True,
                                    autograph=False)

    # ------------------------------------------------------------------ set-up
    def _init_features(self, df: pd.DataFrame, features: np.ndarray) -> None:
        if len(features) != len(df):
            raise ValueError(f"features has {len(features)} rows; the table has {len(df)}")
        if tuple(features.shape[1:]) != self.models.feature_shape:
            raise ValueError(f"features have shape {features.shape[1:]} per row; the models "
                             f"expect {self.models.feature_shape}")
        if self.options.unfreeze_after is not None:
            raise ValueError("unfreeze_after needs images and an extractor; training on "
                             "pre-extracted features never changes the extractor")
        if is_active(validate_augment(self.options.augment)):
            logger.info("augment is ignored when training on pre-extracted features")
        self.images = False

    def _init_images(self, df: pd.DataFrame, read: Dict[str, Any]) -> None:
        ext = self.models.extractor
        if ext is None:
            raise ValueError("training from images needs models.extractor; pass features= to "
                             "train on pre-extracted features")
        shape = tuple(ext.inputs[0].shape[1:])
        self.read = {"imshape": read.get("imshape") or (shape[0], shape[1]),
                     "num_channels": read.get("num_channels") or shape[2],
                     "norm": read.get("norm", 255),
                     "single_channel": read.get("single_channel", False)}
        if None in self.read["imshape"]:
            raise ValueError(f"the extractor's input shape {shape} has unknown sizes: pass imshape")
        self.files = df["filepath"].astype(str).tolist()
        self.images = True
        self._iterator: Optional[Any] = iter(self._image_stream())

    def _image_stream(self) -> tf.data.Dataset:
        o = self.options
        kind_of = decoder_kinds(self.files)
        load = image_loader(**self.read, kinds=np.unique(kind_of))
        paths = tf.constant(self.files, dtype=tf.string)
        kinds = tf.constant(kind_of)
        labels = tf.constant(self.labels)

        def rows(draw: Callable[[], np.ndarray], size: int) -> tf.data.Dataset:
            def endless():
                while True:
                    yield draw()

            ds = tf.data.Dataset.from_generator(
                endless, output_signature=tf.TensorSpec([size], tf.int64))
            ds = ds.unbatch().map(
                lambda i: (load(tf.gather(paths, i), tf.gather(kinds, i)), tf.gather(labels, i)),
                num_parallel_calls=AUTOTUNE)
            return ds.ignore_errors(log_warning=True)  # an unreadable image is skipped

        aug = validate_augment(o.augment)
        lab = rows(lambda: self.sampler.sample(o.batch_size), o.batch_size).batch(o.batch_size)
        if is_active(aug):
            lab = lab.map(lambda x, y: (augment_batch(x, aug, clip=False), y),
                          num_parallel_calls=AUTOTUNE)
        if not self.fixmatch:
            return lab.prefetch(AUTOTUNE)
        size = o.fixmatch.mu * o.batch_size
        weak = validate_augment(o.fixmatch.weak_aug)
        strong = validate_augment(o.fixmatch.strong_aug)
        unl = rows(lambda: self.rng.choice(self.unlabeled_rows, size), size).batch(size)
        unl = unl.map(lambda x, _: (augment_batch(x, weak, clip=False),
                                     augment_batch(x, strong, clip=False)),
                      num_parallel_calls=AUTOTUNE)
        return tf.data.Dataset.zip((lab, unl)).map(lambda a, b: a + b).prefetch(AUTOTUNE)

    def _trainable(self, with_extractor: bool) -> List[tf.Variable]:
        out = list(self.models.fine_tuning.trainable_weights)
        out += list(self.models.output.trainable_weights)
        if with_extractor:
            ext = self.models.extractor
            frozen = not ext.trainable
            ext.trainable = True  # list the variables unfreezing will train
            out += list(ext.trainable_weights)
            ext.trainable = not frozen
        return out

    # ------------------------------------------------------------------ model
    def _forward(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        m = self.models
        if self.images:
            x = m.extractor(x, training=False)  # BatchNorm stays in inference mode
        return m.output(m.fine_tuning(x, training=training), training=training)

    def _make_step(self) -> Callable[..., Dict[str, tf.Tensor]]:
        variables = self._trainable(self.unfrozen)
        fm = self.options.fixmatch
        use_fixmatch = self.fixmatch

        def step(x, y, *unlabeled):
            with tf.GradientTape() as tape:
                sup = self.loss_fn(y, self._forward(x, True))
                logs = {"supervised_loss": sup}
                total = sup
                if use_fixmatch:
                    if self.images:
                        weak, strong = unlabeled
                    else:
                        weak = unlabeled[0]
                        strong = perturb_features(weak, fm.feature_dropout, fm.feature_noise)
                    u, frac = fixmatch_loss(self._forward(weak, False),
                                            self._forward(strong, True), fm.tau, self.u_elements)
                    total = sup + fm.lam * u
                    logs.update(fixmatch_loss=u, mask_fraction=frac)
            grads = tape.gradient(total, variables)
            self.optimizer.apply(grads, variables)
            logs["loss"] = total
            return logs

        return tf.function(step, reduce_retracing=True, autograph=False)

    def unfreeze(self) -> None:
        self.models.extractor.trainable = True
        self.unfrozen = True
        self._step = self._make_step()
        logger.info("extractor unfrozen")

    # ------------------------------------------------------------------ data
    def next_batch(self) -> Tuple[Any, ...]:
        if self.images:
            return next(self._iterator)
        o = self.options
        idx = np.sort(self.sampler.sample(o.batch_size))
        batch: Tuple[Any, ...] = (np.asarray(self.features[idx], dtype=np.float32),
                                  self.labels[idx])
        if self.fixmatch:
            u = np.sort(self.rng.choice(self.unlabeled_rows, o.fixmatch.mu * o.batch_size))
            batch += (np.asarray(self.features[u], dtype=np.float32),)
        return batch

    def step(self) -> Dict[str, float]:
        out = self._step(*self.next_batch())
        return {k: float(v) for k, v in out.items()}

    def validate(self) -> Dict[str, float]:
        if not len(self.val_rows):
            return {"val_loss": math.nan, "val_auc": math.nan}
        bs = self.options.eval_batch_size
        if self.images:
            probs = np.full((len(self.val_rows), self.labels.shape[1]), np.nan, np.float32)
            for i in range(0, len(self.val_rows), bs):
                got = read_images([self.files[r] for r in self.val_rows[i:i + bs]],
                                  num_workers=2, **self.read)
                if len(got.arrays):
                    probs[i + got.good_index] = self._predict(got.arrays).numpy()
            keep = ~np.isnan(probs).any(axis=1)
            probs, y = probs[keep], self.labels[self.val_rows[keep]]
        else:
            probs = np.concatenate([
                self._predict(np.asarray(self.features[self.val_rows[i:i + bs]],
                                         dtype=np.float32)).numpy()
                for i in range(0, len(self.val_rows), bs)])
            y = self.labels[self.val_rows]
        return {"val_loss": float(self.loss_fn(y, probs)), "val_auc": macro_auc(probs, y)}

    def weights(self) -> List[List[np.ndarray]]:
        parts = [self.models.fine_tuning, self.models.output]
        if self.options.unfreeze_after is not None:
            parts.append(self.models.extractor)
        return [p.get_weights() for p in parts]

    def restore(self, saved: List[List[np.ndarray]]) -> None:
        parts = [self.models.fine_tuning, self.models.output, self.models.extractor]
        for part, w in zip(parts, saved):
            part.set_weights(w)

    def learning_rate(self) -> float:
        return float(np.asarray(self.optimizer.learning_rate))

    def close(self) -> None:
        """Drop the endless image iterator now, not at interpreter exit."""
        self._iterator = None


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
    norm: Optional[float] = 255,
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
        Batch size, epochs, optimizer, schedule, loss, FixMatch...
    progress : callable, optional
        ``progress(epoch, step, logs)`` after every step, with ``epoch`` in 1..epochs and
        ``step`` in 1..steps_per_epoch. ``logs`` has ``loss``, ``supervised_loss``,
        ``learning_rate``, ``epochs``, ``steps`` (and ``fixmatch_loss``, ``mask_fraction``) for
        that step; the last call of an epoch comes after validation and carries that epoch's
        means and ``val_loss``, ``val_auc``, ``seconds``. An exception raised in it stops
        training (the models keep the last completed epoch's weights) and propagates.
    cancel : threading.Event, optional
        Checked before every step; when set, the models get back the weights of the last
        completed epoch and :attr:`TrainResult.cancelled` is True.
    imshape, num_channels, norm, single_channel
        Image reading options (defaults: the extractor's input shape, 255, False).

    Returns
    -------
    TrainResult
    """
    if not isinstance(options, TrainOptions):
        raise ValueError(f"options must be a TrainOptions; got {type(options).__name__}")
    read = {"imshape": imshape, "num_channels": num_channels, "norm": norm,
            "single_channel": single_channel}
    run = _Run(models, df, features, options, read)
    try:
        history, cancelled = _epochs(run, options, progress, cancel)
    finally:
        run.close()
        if run.unfrozen:
            models.extractor.trainable = False
    return TrainResult(pd.DataFrame(history), cancelled, len(history), run.steps)


def _epochs(run: _Run, options: TrainOptions, progress: Optional[Progress],
            cancel: Optional[threading.Event]) -> Tuple[List[Dict[str, float]], bool]:
    """Run the epochs; on cancel or on an error, put back the last completed epoch's weights."""
    good = run.weights()
    history: List[Dict[str, float]] = []
    try:
        for epoch in range(1, options.epochs + 1):
            if options.unfreeze_after is not None and epoch == options.unfreeze_after + 1:
                run.unfreeze()
            record = _epoch(run, epoch, options, progress, cancel)
            if record is None:
                run.restore(good)
                logger.info("training cancelled after %d complete epoch(s)", len(history))
                return history, True
            history.append(record)
            good = run.weights()
            if progress is not None:
                progress(epoch, run.steps, {**record, "epochs": options.epochs,
                                            "steps": run.steps})
    except BaseException:
        run.restore(good)
        logger.warning("training stopped by an error; the models keep the weights of the last "
                       "completed epoch (%d)", len(history))
        raise
    return history, False


def _epoch(run: _Run, epoch: int, options: TrainOptions, progress: Optional[Progress],
           cancel: Optional[threading.Event]) -> Optional[Dict[str, float]]:
    """One epoch's steps and validation; None when cancelled."""
    start = time.perf_counter()
    sums: Dict[str, float] = {}
    for step in range(1, run.steps + 1):
        if cancel is not None and cancel.is_set():
            return None
        logs = run.step()
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        logs.update(learning_rate=run.learning_rate(), epochs=options.epochs, steps=run.steps)
        if step < run.steps and progress is not None:
            progress(epoch, step, logs)
    record = {"epoch": epoch, **{k: v / run.steps for k, v in sums.items()}}
    record.update(run.validate(), learning_rate=run.learning_rate(),
                  seconds=time.perf_counter() - start)
    logger.info("epoch %d/%d: loss %.4f, val_loss %.4f, val_auc %.3f", epoch, options.epochs,
                record["loss"], record["val_loss"], record["val_auc"])
    return record
