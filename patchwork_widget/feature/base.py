"""The shared base of the self-supervised trainers (feature F1).

A subclass says what its models are (:meth:`FeatureTrainer._build_models`), what one replica
does with a batch of view pairs (:meth:`FeatureTrainer._replica_step`) and how it scores a test
pair (:meth:`FeatureTrainer._test_step`); the base does the rest: options, the input pipeline,
the distribution strategy, the optimizer and its schedule, the training loop and saving. The
benchmarks (F2) and records (F3) come from :class:`~patchwork_widget.feature.reporting.ReportingMixin`.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from patchwork_widget.feature import evaluate as ev
from patchwork_widget.feature import records
from patchwork_widget.feature.data import TrainingData, pair_dataset
from patchwork_widget.feature.models import ResNetFCN
from patchwork_widget.feature.reporting import ReportingMixin
from patchwork_widget.feature.schedules import DecaySchedule, build_optimizer
from patchwork_widget.images.augment import is_active, validate_augment
from patchwork_widget.images.pipeline import AUTOTUNE

logger = logging.getLogger(__name__)

__all__ = ["FeatureTrainer", "check_int", "check_number"]

Every = Union[bool, int]


def _due(flag: Every, epoch: int, name: str) -> bool:
    """Whether an ``every``-style option (bool, or every N epochs) fires after ``epoch``
    (counted from 1)."""
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, int) and flag >= 1:
        return epoch % flag == 0
    raise ValueError(f"{name} must be True, False or an int >= 1 (every N epochs); got {flag!r}")


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int, or ValueError unless it is an int >= ``low``."""
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and value >= low):
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float, high: float = math.inf,
                 open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float, or ValueError unless it is a number in the given interval."""
    ok = (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if open_low else value >= low)
          and (value < high if open_high else value <= high))
    if not ok:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return float(value)


class FeatureTrainer(ReportingMixin):
    """Train a fully-convolutional network ``fcn`` without labels, in place.

    Parameters
    ----------
    logdir : str or PathLike
        Folder for TensorBoard events, ``config.yaml`` and saved models (created).
    trainingdata : list of paths, image array or tf.data.Dataset
        Training images (see :func:`patchwork_widget.feature.data.pair_dataset`).
    testdata : list of paths or image array, optional
        Held-out images: loss, alignment and uniformity after each epoch; also the default
        images of :meth:`rotation_classification_test`.
    fcn : keras.Model, optional
        Any fully-convolutional Keras model, trained in place (build it inside
        ``strategy.scope()`` when passing a multi-device strategy). Default
        :func:`~patchwork_widget.feature.models.ResNetFCN`.
    augment : bool or dict
        The shared augmentation vocabulary (I3); True for its defaults.
    imshape : (int, int)
        Height and width images are resized to.
    num_channels, norm, single_channel
        As in :func:`patchwork_widget.images.read.read_image`.
    batch_size : int
        GLOBAL batch size, split evenly over the strategy's replicas.
    num_parallel_calls : int
        Parallel decode and augment calls in the input pipeline.
    cache : bool or str
        Cache decoded training images in memory (True) or files with this prefix.
    opt_type : {"adam", "momentum", "lars"}
    lr : float
        Initial (peak) learning rate.
    decay_type : {"none", "exponential", "staircase", "cosine", "warmup_cosine"}
    lr_decay : int
        Steps of the decay (see :class:`~patchwork_widget.feature.schedules.DecaySchedule`).
    warmup_steps : int
        Linear warm-up steps for ``warmup_cosine``.
    weight_decay : float
        Decoupled for adam and momentum, added to the gradient for LARS; 0 disables.
    notes : str
        Anything about the experiment; saved in ``config.yaml`` (and MLflow).
    downstream_labels : mapping of path to label, optional
        Labelled images for the linear probe after each epoch (accuracy and confusion matrix).
    strategy : tf.distribute.Strategy, optional
        Default: the current (default) strategy.
    seed : int, optional
        Seeds Python, NumPy and TensorFlow before the models are built.
    eval_batch_size : int
        Batch size of feature extraction in the benchmarks.
    """

    modelname = "feature"
    needs_augment = True       # contrastive methods learn nothing without augmentation
    min_local_batch = 2        # smallest batch one replica may see

    def __init__(
        self,
        logdir: Union[str, "os.PathLike[str]"],
        trainingdata: TrainingData,
        testdata: Optional[TrainingData] = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any]] = True,
        imshape: Tuple[int, int] = (64, 64),
        num_channels: int = 3,
        norm: Optional[float] = 255,
        single_channel: bool = False,
        batch_size: int = 64,
        num_parallel_calls: int = AUTOTUNE,
        cache: Union[bool, str] = False,
        opt_type: str = "adam",
        lr: float = 1e-3,
        decay_type: str = "none",
        lr_decay: int = 0,
        warmup_steps: int = 0,
        weight_decay: float = 0.0,
        notes: str = "",
        downstream_labels: Optional[Mapping[str, Any]] = None,
        strategy: Optional[tf.distribute.Strategy] = None,
        seed: Optional[int] = None,
        eval_batch_size: int = 256,
    ) -> None:
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self.augment_params = validate_augment(augment)
        if self.needs_augment and not is_active(self.augment_params):
            raise ValueError(f"{type(self).__name__} learns by comparing augmented views; "
                             "augment must be True or a dict with at least one active key")
        if not (isinstance(imshape, (tuple, list)) and len(imshape) == 2):
            raise ValueError(f"imshape must be (height, width); got {imshape!r}")
        self.imshape = (check_int("imshape[0]", imshape[0], 1),
                        check_int("imshape[1]", imshape[1], 1))
        self.num_channels = check_int("num_channels", num_channels, 1)
        self.batch_size = check_int("batch_size", batch_size, 2)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        if not isinstance(notes, str):
            raise ValueError(f"notes must be a string; got {type(notes).__name__}")
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.num_replicas = int(self.strategy.num_replicas_in_sync)
        if self.batch_size % self.num_replicas or (
                self.batch_size // self.num_replicas < self.min_local_batch):
            raise ValueError(
                f"batch_size={self.batch_size} must be a multiple of the "
                f"{self.num_replicas} replicas with at least {self.min_local_batch} images "
                f"per replica"
            )
        if seed is not None:
            keras.utils.set_random_seed(check_int("seed", seed, 0))
        self._downstream = self._check_labels(downstream_labels)
        self._input = dict(imshape=self.imshape, num_channels=self.num_channels, norm=norm,
                           single_channel=single_channel)
        self.step = 0
        self._mlflow: Any = None
        self._schedule = DecaySchedule(lr, decay_type, lr_decay, warmup_steps)

        ds, self.steps_per_epoch = pair_dataset(
            trainingdata, self.augment_params, batch_size=self.batch_size, shuffle=True,
            num_parallel_calls=num_parallel_calls, cache=cache, **self._input)
        self._ds = self.strategy.experimental_distribute_dataset(ds)
        self._trainingdata = trainingdata
        self._testdata = testdata
        self._test_ds = None
        if testdata is not None:
            self._test_ds, _ = pair_dataset(
                testdata, self.augment_params, batch_size=min(self.eval_batch_size,
                                                              self._count(testdata)),
                shuffle=False, num_parallel_calls=num_parallel_calls, **self._input)

        with self.strategy.scope():
            if fcn is None:
                fcn = ResNetFCN(self.num_channels, synchronized_bn=self.num_replicas > 1)
            self._check_in_scope(fcn)
            self.fcn = fcn
            self._models: Dict[str, keras.Model] = {"fcn": fcn, **self._build_models()}
            self.optimizer = build_optimizer(opt_type, self._schedule, weight_decay)
            self.optimizer.build(self._trainable_variables())
        self._downstream_images: Optional[np.ndarray] = None
        self._features = ev.feature_function(self.fcn)
        self._train_step = self._make_train_step()
        self._test_fn = tf.function(self._test_step, autograph=False)

        self.config: Dict[str, Any] = {
            "trainer": self.modelname,
            **self._method_config(),
            "fcn": self.fcn.name,
            "opt_type": opt_type, "lr": float(lr), "decay_type": decay_type,
            "lr_decay": int(lr_decay), "warmup_steps": int(warmup_steps),
            "weight_decay": float(weight_decay),
            "input": {**self._input, "batch_size": self.batch_size,
                      "num_replicas": self.num_replicas, "cache": cache,
                      "eval_batch_size": self.eval_batch_size,
                      "num_parallel_calls": int(num_parallel_calls)},
            "augment": dict(self.augment_params),
            "seed": seed,
            "num_downstream_labels": 0 if self._downstream is None else len(self._downstream[0]),
            "notes": notes,
        }
        records.write_config(self.logdir, self.config)
        self._writer = tf.summary.create_file_writer(self.logdir)
        records.write_hparams(self._writer, {k: v for k, v in self.config.items()
                                             if k != "notes"},
                              trial_id=os.path.basename(os.path.abspath(self.logdir)))

    # -- hooks for subclasses ------------------------------------------------------------------

    def _method_config(self) -> Dict[str, Any]:
        """The method's own hyperparameters, for ``config.yaml``, HPARAMS and MLflow."""
        raise NotImplementedError

    def _build_models(self) -> Dict[str, keras.Model]:
        """Build the method's models (heads, momentum encoder) in the strategy's scope."""
        raise NotImplementedError

    def _trainable_variables(self) -> list:
        """The variables the optimizer updates."""
        raise NotImplementedError

    def _replica_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Dict[str, tf.Tensor]:
        """One replica's training step on its share of the views. Returns scalar metrics
        (averaged over replicas); keys starting with ``_`` are passed to
        :meth:`_after_step` instead."""
        raise NotImplementedError

    def _after_step(self, outputs: Dict[str, Any]) -> None:
        """Cross-replica work after every step (e.g. MoCo's queue and momentum encoder)."""

    def _test_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Loss of a test batch and the normalised embeddings of both views (inference mode)."""
        raise NotImplementedError

    # -- helpers shared by the subclasses ------------------------------------------------------

    def _minimize(self, tape: tf.GradientTape, loss: tf.Tensor, variables: list) -> None:
        """Apply the gradient of ``loss`` (already divided by the number of replicas, since
        the optimizer sums gradients over replicas)."""
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))

    def _gather(self, *tensors: tf.Tensor) -> Tuple[list, Any]:
        """All-gather ``tensors`` over replicas (with gradients) and return them with the row
        offset of this replica's part (feature F11)."""
        if self.num_replicas == 1:
            return list(tensors), 0
        ctx = tf.distribute.get_replica_context()
        gathered = [ctx.all_gather(t, axis=0) for t in tensors]
        offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(tensors[0])[0]
        return gathered, offset

    def _make_train_step(self):
        strategy = self.strategy

        @tf.function(autograph=False)
        def train_step(x1: Any, x2: Any) -> Dict[str, tf.Tensor]:
            out = strategy.run(self._replica_step, args=(x1, x2))
            self._after_step(out)
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in out.items() if not k.startswith("_")}

        return train_step

    # -- options -------------------------------------------------------------------------------

    def _check_in_scope(self, fcn: Any) -> None:
        if not isinstance(fcn, keras.Model):
            raise ValueError(f"fcn must be a keras.Model; got {type(fcn).__name__}")
        if len(fcn.outputs) != 1 or len(fcn.outputs[0].shape) != 4:
            raise ValueError("fcn must be fully convolutional: one output of shape "
                             f"(batch, h, w, channels); got outputs {fcn.outputs}")
        if self.num_replicas > 1 and fcn.weights and not (
                self.strategy.extended.variable_created_in_scope(fcn.weights[0].value)):
            raise ValueError("fcn was built outside strategy.scope(); build (or load) it "
                             "inside `with strategy.scope():` before passing it")

    @staticmethod
    def _count(data: Any) -> int:
        if isinstance(data, tf.data.Dataset):
            raise ValueError("testdata must be a list of image paths or an image array")
        if len(data) < 2:
            raise ValueError(f"testdata needs at least 2 images; got {len(data)}")
        return len(data)

    def _check_labels(self, labels: Optional[Mapping[str, Any]]
                      ) -> Optional[Tuple[list, np.ndarray, np.ndarray]]:
        if labels is None:
            return None
        if not isinstance(labels, Mapping) or not labels:
            raise ValueError("downstream_labels must be a non-empty dict mapping image paths "
                             "to labels")
        files = [os.fspath(p) for p in labels]
        values = np.asarray(list(labels.values()))
        return files, values, ev.deterministic_split(files)

    # -- training ------------------------------------------------------------------------------

    def fit(
        self,
        epochs: int = 1,
        save: Every = True,
        evaluate: Every = True,
        save_projections: Every = False,
        visualize_kernels: Every = False,
        query_fig: Every = False,
        progress: bool = True,
    ) -> Dict[str, float]:
        """Train for ``epochs`` passes over the training data.

        The ``Every`` options are True/False (after every epoch or never) or an int N
        (after every N-th epoch).

        Returns
        -------
        dict
            The mean training metrics of the last epoch and the last benchmarks.
        """
        epochs = check_int("epochs", epochs, 1)
        for name, flag in (("save", save), ("evaluate", evaluate),
                           ("save_projections", save_projections),
                           ("visualize_kernels", visualize_kernels), ("query_fig", query_fig)):
            _due(flag, 1, name)
        summary: Dict[str, float] = {}
        for epoch in range(1, epochs + 1):
            totals: Dict[str, float] = {}
            n = 0
            bar = tqdm(self._ds, total=self.steps_per_epoch, disable=not progress,
                       desc=f"{self.modelname} epoch {epoch}/{epochs}", leave=False)
            for x1, x2 in bar:
                lr = float(self._schedule(self.optimizer.iterations))
                out = {k: float(v) for k, v in self._train_step(x1, x2).items()}
                self._record_scalars(learning_rate=lr, **out)
                self.step += 1
                n += 1
                for k, v in out.items():
                    totals[k] = totals.get(k, 0.0) + v
                bar.set_postfix(loss=f"{out.get('loss', float('nan')):.4f}")
            summary = {f"epoch_{k}": v / max(n, 1) for k, v in totals.items()}
            logger.info("%s epoch %d/%d: %s", self.modelname, epoch, epochs, summary)
            if self._mlflow is not None:
                self._mlflow.log_metrics(summary, step=self.step)
            if _due(save, epoch, "save"):
                self.save()
            if _due(evaluate, epoch, "evaluate"):
                summary.update(self.evaluate(query_fig=_due(query_fig, epoch, "query_fig")))
            if _due(save_projections, epoch, "save_projections"):
                self.save_projections()
            if _due(visualize_kernels, epoch, "visualize_kernels"):
                self.visualize_kernels()
        self._writer.flush()
        return summary

    # -- persistence ---------------------------------------------------------------------------

    def save(self) -> Dict[str, str]:
        """Write ``fcn.keras`` (the extractor, ready for the widget) and the weights of every
        component as ``<name>.weights.h5`` into ``logdir``; returns the paths."""
        paths = {"fcn.keras": os.path.join(self.logdir, "fcn.keras")}
        self.fcn.save(paths["fcn.keras"])
        for name, model in self._models.items():
            paths[name] = os.path.join(self.logdir, f"{name}.weights.h5")
            model.save_weights(paths[name])
        return paths

    def load_weights(self, logdir: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
        """Load every component's ``<name>.weights.h5`` saved by :meth:`save` in ``logdir``
        (default: this trainer's), e.g. to resume a run."""
        folder = os.fspath(logdir) if logdir is not None else self.logdir
        missing = [n for n in self._models
                   if not os.path.isfile(os.path.join(folder, f"{n}.weights.h5"))]
        if missing:
            raise FileNotFoundError(f"no saved weights for {missing} in {folder}; "
                                    "call save() in the run you load from")
        for name, model in self._models.items():
            model.load_weights(os.path.join(folder, f"{name}.weights.h5"))
