"""Multitask training (feature F10): several label columns with missing values, shared
layers, one head per task, masked losses and fixed or learned task weights."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.clustering import uniform_over_clusters
from patchwork_widget.feature.data import TrainingData, file_list
from patchwork_widget.feature.tasks import (
    MISSING,
    TaskWeights,
    describe,
    encode_tasks,
    missingness_strata,
    parse_task_weights,
)
from patchwork_widget.images.augment import is_active
from patchwork_widget.images.pipeline import dataset
from patchwork_widget.models.finetune import build_finetuning_model
from patchwork_widget.options.model import FineTuneOptions

__all__ = ["MultiTaskTrainer", "masked_task_losses", "uncertainty_weighted_loss"]

SharedLayers = Union[None, str, FineTuneOptions]


def masked_task_losses(logits: List[tf.Tensor], codes: tf.Tensor
                       ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Cross-entropy of each task's ``logits[t]`` ``(b, C_t)`` against ``codes[:, t]``
    (class index, ``-1`` missing), summed over the rows that have a label: a missing label
    contributes nothing, gradient included.

    Returns
    -------
    (loss_sums, counts, hits)
        ``(T,)`` each: summed loss, labelled rows and correct predictions per task.
    """
    sums, counts, hits = [], [], []
    for t, lg in enumerate(logits):
        y = codes[:, t]
        present = y != MISSING
        safe = tf.where(present, y, 0)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(safe, lg)
        mask = tf.cast(present, lg.dtype)
        sums.append(tf.reduce_sum(tf.where(present, ce, 0.0)))
        counts.append(tf.reduce_sum(mask))
        right = tf.cast(tf.equal(tf.argmax(lg, axis=1, output_type=tf.int32), safe), lg.dtype)
        hits.append(tf.reduce_sum(right * mask))
    return tf.stack(sums), tf.stack(counts), tf.stack(hits)


def uncertainty_weighted_loss(task_losses: tf.Tensor, log_variances: tf.Tensor,
                              active: Optional[tf.Tensor] = None,
                              penalty_share: float = 1.0) -> tf.Tensor:
    """Kendall et al. 2018 (https://arxiv.org/abs/1705.07115, eq. 10) for classification:
    ``sum_t exp(-s_t) L_t + s_t / 2`` with ``s_t = log sigma_t^2`` learned; at its optimum
    ``s_t = log(2 L_t)``, so a noisier task (higher loss) gets a larger ``s_t`` and a smaller
    weight ``exp(-s_t)``. Tasks where ``active`` is False (no label in the batch) are left
    out; ``penalty_share`` scales the ``s_t / 2`` terms (``1 / replicas`` when each replica
    adds its share of the losses, so the sum counts them once)."""
    terms = tf.exp(-log_variances) * task_losses + 0.5 * penalty_share * log_variances
    if active is not None:
        terms = tf.where(active, terms, tf.zeros_like(terms))
    return tf.reduce_sum(terms)


class MultiTaskTrainer(FeatureTrainer):
    """Train ``fcn`` on several label columns at once, any of them missing for any image.

    The fcn's feature map goes through shared layers (a fine-tuning convnet spec string, as
    the Model tab's, then pooling) and one ``Dense`` softmax head per task. Each task's loss is
    its mean cross-entropy over the images labelled for it (missing labels are masked: no
    loss, no gradient); the tasks are combined with weights 1 (``"none"``), fixed weights, or
    learned ones (``"adaptive"``, :func:`uncertainty_weighted_loss`; the log-variances are
    recorded as ``log_variance/<task>``). Every epoch draws its images with replacement,
    evenly over the missingness strata (the sets of tasks an image is labelled for), so tasks
    with few labels are not drowned by those with many.

    Parameters
    ----------
    logdir, trainingdata, fcn, augment
        See :class:`~patchwork_widget.feature.base.FeatureTrainer`; ``trainingdata`` must
        be image paths or an image array.
    labels : pandas.DataFrame or dict of task -> labels
        One column per task, one row per training image; None or NaN where missing. Images
        without any label are left out.
    testdata, testlabels : optional
        Held-out images and their table (same columns): ``test_loss`` and
        ``test_accuracy/<task>`` after each epoch.
    shared_layers : str, FineTuneOptions or None
        A spec string such as ``"64,p,r"`` (convolutions, pooling, dropout, residual blocks;
        followed by average pooling), a :class:`~patchwork_widget.options.model.FineTuneOptions`,
        or None for pooling only.
    task_weights : "none", "adaptive", dict or list
        How the task losses are summed.
    **kwargs
        ``options``, ``downstream_labels``, ``strategy`` or the option fields as keywords.
    """

    modelname = "MultiTask"
    needs_augment = False
    min_local_batch = 1

    def __init__(
        self,
        logdir: str,
        trainingdata: TrainingData,
        labels: Any,
        testdata: Optional[TrainingData] = None,
        testlabels: Any = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any], None] = None,
        shared_layers: SharedLayers = None,
        task_weights: TaskWeights = "adaptive",
        **kwargs: Any,
    ) -> None:
        self._images = self._image_source(trainingdata, "trainingdata")
        table = encode_tasks(labels, len(self._images))
        keep = np.flatnonzero((table.codes != MISSING).any(axis=1))
        if len(keep) == 0:
            raise ValueError("labels has no label at all; give at least one per task")
        self._images = self._subset(self._images, keep)
        self.table = type(table)(table.codes[keep], table.tasks, table.classes)
        self.tasks = self.table.tasks
        self.fixed_weights = parse_task_weights(task_weights, self.tasks)
        self.shared_options = self._shared_options(shared_layers)
        test = None
        if testdata is not None:
            if testlabels is None:
                raise ValueError("testdata needs testlabels (the same task columns)")
            test_images = self._image_source(testdata, "testdata")
            test = (test_images, encode_tasks(testlabels, len(test_images), "testlabels",
                                              self.table.classes))
        self._strata = missingness_strata(self.table.codes)
        super().__init__(logdir, trainingdata, None, fcn, augment, **kwargs)
        self._rng = np.random.default_rng(self.options.seed)
        self._testdata = testdata
        if test is not None:
            self._test_ds, _ = dataset(test[0], ys=test[1].codes, batch_size=self.eval_batch_size,
                                       shuffle=False, skip_errors=False, **self._input)

    @staticmethod
    def _image_source(data: Any, name: str) -> Union[list, np.ndarray]:
        files = file_list(data, name)
        if files is not None:
            return files
        if isinstance(data, np.ndarray) and data.ndim in (3, 4):
            return data
        raise ValueError(f"MultiTaskTrainer needs {name} as image paths or an image array "
                         f"(N, H, W[, C]); got {type(data).__name__}")

    @staticmethod
    def _subset(images: Union[list, np.ndarray], index: np.ndarray) -> Union[list, np.ndarray]:
        return [images[i] for i in index] if isinstance(images, list) else images[index]

    @staticmethod
    def _shared_options(shared: SharedLayers) -> FineTuneOptions:
        if shared is None or (isinstance(shared, str) and not shared.strip()):
            return FineTuneOptions(kind="pool", pooling="avg")
        if isinstance(shared, str):
            return FineTuneOptions(kind="convnet", pooling="avg", spec=shared)
        if isinstance(shared, FineTuneOptions):
            return shared
        raise ValueError(f"shared_layers must be a spec string like '64,p,r', a "
                         f"FineTuneOptions or None; got {shared!r}")

    def _method_config(self) -> Dict[str, Any]:
        weights = ("adaptive" if self.fixed_weights is None
                   else {t: float(w) for t, w in zip(self.tasks, self.fixed_weights)})
        return {**describe(self.table), "task_weights": weights,
                "shared_layers": self.shared_options.as_dict()}

    def _training_dataset(self, trainingdata: TrainingData) -> Tuple[None, int]:
        n = len(self._images)
        if n < self.batch_size:
            raise ValueError(f"batch_size={self.batch_size} is larger than the labelled "
                             f"training set ({n} images); lower batch_size or give more images")
        return None, n // self.batch_size

    def _before_epoch(self, epoch: int) -> None:
        order = uniform_over_clusters(self._strata, int(self._strata.max()) + 1, None,
                                      self._rng)
        ds, _ = dataset(self._subset(self._images, order), ys=self.table.codes[order],
                        batch_size=self.batch_size, shuffle=False, drop_remainder=True,
                        augment=self.augment_params if is_active(self.augment_params) else False,
                        num_parallel_calls=self.options.num_parallel_calls, **self._input)
        self._ds = self.strategy.experimental_distribute_dataset(ds)

    def _build_models(self) -> Dict[str, keras.Model]:
        shape = self.fcn.compute_output_shape((None, *self.imshape, self.num_channels))[1:]
        self.shared = build_finetuning_model(shape, self.shared_options)
        width = self.shared.outputs[0].shape[-1]
        self.heads = {}
        for t, (task, classes) in enumerate(zip(self.tasks, self.table.classes)):
            inp = keras.Input((width,))
            out = keras.layers.Dense(len(classes), name="logits")(inp)
            self.heads[task] = keras.Model(inp, out, name=f"head_{t}")
        self.log_variances = tf.Variable(tf.zeros([len(self.tasks)]), name="log_variances",
                                         trainable=self.fixed_weights is None)
        return {"shared": self.shared, **{f"head_{t}": self.heads[task]
                                          for t, task in enumerate(self.tasks)}}

    def _state_variables(self) -> Dict[str, tf.Variable]:
        return {"log_variances": self.log_variances}

    def _trainable_variables(self) -> list:
        out = self.fcn.trainable_variables + self.shared.trainable_variables
        for head in self.heads.values():
            out += head.trainable_variables
        return out + ([self.log_variances] if self.fixed_weights is None else [])

    def task_logits(self, x: tf.Tensor, training: bool = False) -> List[tf.Tensor]:
        """One ``(N, C_t)`` logits tensor per task for images ``x``."""
        h = self.shared(self.fcn(x, training=training), training=training)
        return [self.heads[t](h, training=training) for t in self.tasks]

    def _combine(self, task_losses: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
        """The weighted total of this replica's shares of the task losses."""
        if self.fixed_weights is None:
            return uncertainty_weighted_loss(task_losses, self.log_variances, active,
                                             1.0 / self.num_replicas)
        return tf.reduce_sum(self.fixed_weights * task_losses)

    def _replica_step(self, x: tf.Tensor, y: tf.Tensor) -> Dict[str, tf.Tensor]:
        codes = tf.cast(y, tf.int32)
        present = tf.cast(codes != MISSING, tf.float32)
        variables = self._trainable_variables()
        with tf.GradientTape() as tape:
            sums, _, hits = masked_task_losses(self.task_logits(x, training=True), codes)
            (all_present,), _ = self._gather(present)
            counts = tf.reduce_sum(all_present, axis=0)
            task_losses = sums / tf.maximum(counts, 1.0)        # this replica's share
            loss = self._combine(task_losses, counts > 0)
        self._minimize(tape, loss, variables)
        out = {"loss": loss * self.num_replicas}
        for t, task in enumerate(self.tasks):
            out[f"loss/{task}"] = task_losses[t] * self.num_replicas
            out[f"accuracy/{task}"] = hits[t] / tf.maximum(counts[t], 1.0) * self.num_replicas
            if self.fixed_weights is None:
                out[f"log_variance/{task}"] = tf.identity(self.log_variances[t])
        return out

    def _test_metrics(self) -> Dict[str, float]:
        sums = np.zeros(len(self.tasks))
        counts = np.zeros(len(self.tasks))
        hits = np.zeros(len(self.tasks))
        for x, y in self._test_ds:
            s, c, h = self._test_fn(x, tf.cast(y, tf.int32))
            sums += s.numpy()
            counts += c.numpy()
            hits += h.numpy()
        losses = sums / np.maximum(counts, 1.0)
        out = {"test_loss": float(np.sum(losses))}
        for t, task in enumerate(self.tasks):
            out[f"test_accuracy/{task}"] = float(hits[t] / max(counts[t], 1.0))
        return out

    def _test_step(self, x: tf.Tensor, codes: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return masked_task_losses(self.task_logits(x), codes)
