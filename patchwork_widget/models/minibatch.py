"""The minibatch solver of :func:`~patchwork_widget.models.train.fit`: data access, the
compiled training step and validation of one run (feature M3, with FixMatch, M4).

Data:

- with pre-extracted ``features`` (N x d or N x h x w x c, array or memmap) batches are
  gathered with NumPy and images are never read;
- otherwise the label table's files are decoded by the ``tf.data`` pipeline
  (:mod:`patchwork_widget.images.pipeline`), augmented per batch and sent through the extractor.

Batches are drawn by the stratified sampler (I4) over the training rows' labels. The number of
steps per epoch does not shrink with the number of labels: an epoch has enough steps to see
each labelled training row once on average, and the run at least ``min_steps`` in all. The step
is a custom ``tf.function`` (no XLA). FixMatch's unlabelled rows are training rows with at least
one missing label.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from patchwork_widget.images.augment import augment_batch, is_active, validate_augment
from patchwork_widget.images.batch import read_images
from patchwork_widget.images.feature_rows import take_rows
from patchwork_widget.images.pipeline import AUTOTUNE, decoder_kinds, image_loader
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.fixmatch import fixmatch_loss, perturb_features
from patchwork_widget.models.losses import LossOptions, loss_elements, loss_function
from patchwork_widget.models.optim import build_optimizer, make_schedule
from patchwork_widget.models.rows import TrainingRows
from patchwork_widget.options.training import TrainOptions

logger = logging.getLogger(__name__)

__all__ = ["MinibatchRun", "steps_per_epoch"]


def steps_per_epoch(n_train: int, options: TrainOptions) -> int:
    """``batches_per_epoch`` if given, else ``ceil(n_train / batch_size)`` but at least
    ``ceil(min_steps / epochs)``."""
    if options.batches_per_epoch:
        return options.batches_per_epoch
    return max(1, math.ceil(n_train / options.batch_size),
               math.ceil(options.min_steps / options.epochs))


class MinibatchRun:
    """One training run: data access, compiled step, validation."""

    def __init__(self, models: PatchworkModels, df: pd.DataFrame, rows: TrainingRows,
                 features: Optional[np.ndarray], options: TrainOptions,
                 read: Dict[str, Any]) -> None:
        self.models, self.options = models, options
        self.labels = rows.labels
        self.val_rows = rows.val_rows
        self.unlabeled_rows = rows.unlabeled_rows
        self.sampler = rows.sampler
        self.rng = np.random.default_rng(None if options.seed is None else options.seed + 1)
        self.steps = steps_per_epoch(len(rows.train_rows), options)
        # the L2 penalty on the output kernel, per labelled entry as the loss is a mean
        self.l2 = options.l2 / max(rows.num_train_entries, 1)
        self.fixmatch = options.fixmatch.enabled
        if self.fixmatch and not len(self.unlabeled_rows):
            logger.warning("FixMatch is on but every training row is fully labelled: it is skipped")
            self.fixmatch = False
        self.loss_fn = loss_function(options.loss, models.single_label)
        lo = options.loss
        self.u_elements = loss_elements(LossOptions(lo.kind, 0.0, lo.gamma, lo.alpha))
        self.features = features
        if features is not None:
            self._init_features(df, features)
        else:
            self._init_images(df, read)
        schedule = make_schedule(options.schedule, options.learning_rate,
                                 options.epochs * self.steps, self.steps, options.decay_steps,
                                 options.warmup_steps)
        self.optimizer = build_optimizer(options.optimizer, schedule,
                                         self._trainable(options.unfreeze_after is not None),
                                         options.weight_decay)
        self.unfrozen = False
        self._step = self._make_step()
        self._predict = tf.function(lambda x: self._forward(x, False), reduce_retracing=True,
                                    autograph=False)

    # ------------------------------------------------------------------ set-up
    def _init_features(self, df: pd.DataFrame, features: np.ndarray) -> None:
        if features.shape[0] != len(df):
            raise ValueError(f"features has {features.shape[0]} rows; the table has {len(df)}")
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
                     "norm": read.get("norm"),
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
        kernel = self.models.output.layers[-1].kernel
        fm = self.options.fixmatch
        use_fixmatch = self.fixmatch

        def step(x, y, *unlabeled):
            with tf.GradientTape() as tape:
                sup = self.loss_fn(y, self._forward(x, True))
                penalty = 0.5 * self.l2 * tf.reduce_sum(tf.square(kernel))
                logs = {"supervised_loss": sup, "l2_penalty": penalty}
                total = sup + penalty
                if use_fixmatch:
                    if self.images:
                        weak, strong = unlabeled
                    else:
                        weak = unlabeled[0]
                        strong = perturb_features(weak, fm.feature_dropout, fm.feature_noise)
                    u, frac = fixmatch_loss(self._forward(weak, False),
                                            self._forward(strong, True), fm.tau, self.u_elements)
                    total = total + fm.lam * u
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
        batch: Tuple[Any, ...] = (take_rows(self.features, idx), self.labels[idx])
        if self.fixmatch:
            u = np.sort(self.rng.choice(self.unlabeled_rows, o.fixmatch.mu * o.batch_size))
            batch += (take_rows(self.features, u),)
        return batch

    def step(self) -> Dict[str, float]:
        out = self._step(*self.next_batch())
        return {k: float(v) for k, v in out.items()}

    def validation_probs(self) -> Tuple[np.ndarray, np.ndarray]:
        """Predictions and labels of the validation rows (unreadable images left out)."""
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
            chunks = [self._predict(take_rows(self.features, self.val_rows[i:i + bs])).numpy()
                      for i in range(0, len(self.val_rows), bs)]
            probs = np.concatenate(chunks) if chunks else np.zeros((0, self.labels.shape[1]))
            y = self.labels[self.val_rows]
        return probs, y

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
