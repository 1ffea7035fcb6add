"""The shared base of the self-supervised trainers (feature F1).

A subclass says what its models are (:meth:`FeatureTrainer._build_models`), what one replica
does with a batch of view pairs (:meth:`FeatureTrainer._replica_step`) and how it scores a test
pair (:meth:`FeatureTrainer._test_step`); the base does the rest: options, the input pipeline,
the distribution strategy, the optimizer and its schedule, the training loop and saving. The
benchmarks (F2) and records (F3) are its part ``reporting``, a
:class:`~patchwork_widget.feature.reporting.Reporter`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from patchwork_widget.feature import evaluate as ev
from patchwork_widget.feature.data import TrainingData, pair_dataset
from patchwork_widget.feature.reporting import Reporter
from patchwork_widget.images.augment import is_active, validate_augment
from patchwork_widget.models.networks import ResNetFCN
from patchwork_widget.models.loop import Hooks, run_epochs
from patchwork_widget.models.optim import DecaySchedule, build_optimizer
from patchwork_widget.options.checks import (
    check_bool,
    check_int,
    check_path,
    check_paths,
    shown,
)
from patchwork_widget.options.feature import FeatureTrainerOptions

logger = logging.getLogger(__name__)

__all__ = ["FeatureTrainer"]

Every = Union[bool, int]
STATE_FILE = "state.npz"   # variables outside the models (see FeatureTrainer._state_variables)
MAX_UNIFORMITY_SAMPLES = 2048


def _due(flag: Every, epoch: int, name: str) -> bool:
    """Whether an ``every``-style option (bool, or every N epochs) fires after ``epoch``
    (counted from 1)."""
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, int) and flag >= 1:
        return epoch % flag == 0
    raise ValueError(f"{name} must be True, False or an int >= 1 (every N epochs); got {flag!r}")


def check_training_data(name: str, data: Any) -> None:
    """Refuse by ``name`` what is not training data: a list of image paths (not one path
    string), an image array or a ``tf.data.Dataset``; and an empty list or array."""
    if not isinstance(data, (np.ndarray, tf.data.Dataset)) and (
            isinstance(data, (str, bytes, os.PathLike, Mapping)) or not hasattr(data, "__len__")):
        raise ValueError(f"{name} must be a list of image paths, an image array or a "
                         f"tf.data.Dataset; got {shown(data)}")
    if not isinstance(data, tf.data.Dataset) and len(data) == 0:
        raise ValueError(f"{name} is empty: give at least one image")
    if not isinstance(data, (np.ndarray, tf.data.Dataset)):
        check_paths(name, data)


class FeatureTrainer:
    """Train a fully-convolutional network ``fcn`` without labels, in place.

    Construction checks every option and builds the models, the optimizer and the input
    pipeline; it writes no file and seeds nothing. :meth:`fit` does the work; the records
    (``config.yaml``, TensorBoard hyperparameters and events) are written when the first one
    is needed.

    Parameters
    ----------
    logdir : str or PathLike
        Folder for TensorBoard events, ``config.yaml`` and saved models (created when first
        written to).
    trainingdata : list of paths, image array or tf.data.Dataset
        Training images (see :func:`patchwork_widget.feature.data.pair_dataset`).
    testdata : list of paths or image array, optional
        Held-out images: loss, alignment and uniformity after each epoch; also the default
        images of :meth:`rotation_classification_test`.
    fcn : keras.Model, optional
        Any fully-convolutional Keras model, trained in place (build it inside
        ``strategy.scope()`` when passing a multi-device strategy). Default
        :func:`~patchwork_widget.models.networks.ResNetFCN`.
    augment : bool or dict, optional
        Shorthand for ``options.augment`` (the reference's positional argument).
    options : FeatureTrainerOptions, optional
        Input, batch, optimizer, schedule, augmentation, seed and notes
        (:class:`~patchwork_widget.options.FeatureTrainerOptions`).
    downstream_labels : mapping of path to label, optional
        Labelled images for the linear probe after each epoch (accuracy and confusion matrix).
    strategy : tf.distribute.Strategy, optional
        Default: the current (default) strategy.
    **settings
        Instead of ``options``: its fields as keywords, or the reference's names
        (``opt_type``, ``lr``, ``decay_type``, ``lr_decay``).
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
        augment: Union[bool, Mapping[str, Any], None] = None,
        *,
        options: Optional[FeatureTrainerOptions] = None,
        downstream_labels: Optional[Mapping[str, Any]] = None,
        strategy: Optional[tf.distribute.Strategy] = None,
        **settings: Any,
    ) -> None:
        self.options = o = self._resolve_options(options, augment, settings)
        self.logdir = check_path("logdir", logdir)
        check_training_data("trainingdata", trainingdata)
        if testdata is not None:
            check_training_data("testdata", testdata)
        self.augment_params = validate_augment(o.augment)
        if self.needs_augment and not is_active(self.augment_params):
            raise ValueError(f"{type(self).__name__} learns by comparing augmented views; "
                             "augment must be True or a dict with at least one active key")
        self.imshape, self.num_channels = o.imshape, o.num_channels
        self.batch_size, self.eval_batch_size = o.batch_size, o.eval_batch_size
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.num_replicas = int(self.strategy.num_replicas_in_sync)
        if self.batch_size % self.num_replicas or (
                self.batch_size // self.num_replicas < self.min_local_batch):
            raise ValueError(
                f"batch_size={self.batch_size} must be a multiple of the "
                f"{self.num_replicas} replicas with at least {self.min_local_batch} images "
                f"per replica"
            )
        self._downstream = self._check_labels(downstream_labels)
        self._input = dict(imshape=self.imshape, num_channels=self.num_channels, norm=o.norm,
                           single_channel=o.single_channel)
        self.step = 0
        self._epochs_started = 0
        self._seeded = False
        self._schedule = DecaySchedule(o.learning_rate, o.schedule, o.decay_steps,
                                       o.warmup_steps)

        ds, self.steps_per_epoch = self._training_dataset(trainingdata)
        self._ds = None if ds is None else self.strategy.experimental_distribute_dataset(ds)
        self._trainingdata = trainingdata
        self._testdata = testdata
        self._test_ds = None
        if testdata is not None:
            self._test_ds, _ = pair_dataset(
                testdata, self.augment_params, batch_size=min(self.eval_batch_size,
                                                              self._count(testdata)),
                shuffle=False, num_parallel_calls=o.num_parallel_calls, **self._input)

        with self.strategy.scope():
            if fcn is None:
                fcn = ResNetFCN(self.num_channels, synchronized_bn=self.num_replicas > 1)
            fcn = self._in_scope(fcn)
            self.fcn = fcn
            self._models: Dict[str, keras.Model] = {"fcn": fcn, **self._build_models()}
            self.optimizer = build_optimizer(o.optimizer, self._schedule,
                                             self._trainable_variables(), o.weight_decay)
        self._features = ev.feature_function(self.fcn)
        self._train_step = self._make_train_step()
        self._test_fn = tf.function(self._test_step, autograph=False)

        self.config: Dict[str, Any] = {
            "trainer": self.modelname,
            **self._method_config(),
            "fcn": self.fcn.name,
            **{k: v for k, v in o.as_dict().items() if k != "augment"},
            "num_replicas": self.num_replicas,
            "augment": dict(self.augment_params),
            "num_downstream_labels": 0 if self._downstream is None else len(self._downstream[0]),
        }
        self.reporting = Reporter(self.logdir, self.config, fcn=self.fcn,
                                  features=self._features, input_options=self._input,
                                  eval_batch_size=self.eval_batch_size,
                                  downstream=self._downstream, step=lambda: self.step)

    @staticmethod
    def _resolve_options(options: Optional[FeatureTrainerOptions],
                         augment: Union[bool, Mapping[str, Any], None],
                         settings: Mapping[str, Any]) -> FeatureTrainerOptions:
        if options is None:
            given = dict(settings)
            if augment is not None:
                given["augment"] = augment
            return FeatureTrainerOptions.from_dict(given)
        if not isinstance(options, FeatureTrainerOptions):
            raise ValueError(f"options must be a FeatureTrainerOptions; got "
                             f"{type(options).__name__}")
        if settings or augment is not None:
            extra = sorted(settings) + (["augment"] if augment is not None else [])
            raise ValueError(f"give options or keyword settings, not both; got options and "
                             f"{extra}")
        return options

    # -- hooks for subclasses ------------------------------------------------------------------

    def _training_dataset(self, trainingdata: TrainingData
                          ) -> Tuple[Optional[tf.data.Dataset], Optional[int]]:
        """The batches :meth:`fit` passes to the train step, and their number per epoch:
        ``(view1, view2)`` pairs by default. A method whose batches depend on its models
        (DeepCluster's pseudo-labels) returns ``(None, steps)`` here and sets ``_ds`` in
        :meth:`_before_epoch`."""
        o = self.options
        return pair_dataset(trainingdata, self.augment_params, batch_size=self.batch_size,
                            shuffle=True, num_parallel_calls=o.num_parallel_calls,
                            cache=o.cache, **self._input)

    def _before_epoch(self, epoch: int) -> None:
        """Work before each training epoch (``epoch`` counts every epoch this trainer has
        started, from 0), e.g. DeepCluster's refit of its clusters."""

    def _state_variables(self) -> Dict[str, tf.Variable]:
        """Variables outside the models that :meth:`save` keeps (in ``state.npz``) and
        :meth:`load_weights` restores, e.g. DeepCluster's centroids; none by default."""
        return {}

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

    def _in_scope(self, fcn: Any) -> keras.Model:
        """``fcn`` checked, or a copy of it made inside ``strategy.scope()`` when it was built
        outside (the original's DetCon example does that): its architecture and weights are
        cloned there, and the trainer trains the copy (``trainer.fcn``), not ``fcn``."""
        if not isinstance(fcn, keras.Model):
            raise ValueError(f"fcn must be a keras.Model; got {type(fcn).__name__}")
        if len(fcn.outputs) != 1 or len(fcn.outputs[0].shape) != 4:
            raise ValueError("fcn must be fully convolutional: one output of shape "
                             f"(batch, h, w, channels); got outputs {fcn.outputs}")
        if self.num_replicas == 1 or not fcn.weights or (
                self.strategy.extended.variable_created_in_scope(fcn.weights[0].value)):
            return fcn
        try:
            clone = keras.models.clone_model(fcn)  # inside the scope: the caller holds it
        except (TypeError, ValueError) as err:
            raise ValueError("fcn was built outside strategy.scope() and cannot be cloned "
                             f"into it ({err}); build (or load) it inside `with "
                             "strategy.scope():` before passing it") from None
        clone.set_weights(fcn.get_weights())
        logger.warning("fcn was built outside strategy.scope(): training a copy made inside "
                       "it; use trainer.fcn (not the fcn you passed) for the trained model")
        return clone

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
        check_bool("progress", progress)
        if self.options.seed is not None and not self._seeded:
            keras.utils.set_random_seed(self.options.seed)  # asked for: at the first fit
            self._seeded = True
        for name, flag in (("save", save), ("evaluate", evaluate),
                           ("save_projections", save_projections),
                           ("visualize_kernels", visualize_kernels), ("query_fig", query_fig)):
            _due(flag, 1, name)
        summary: Dict[str, float] = {}
        bars: Dict[int, Any] = {}

        def epoch_start(epoch: int) -> None:
            self._before_epoch(self._epochs_started)
            self._epochs_started += 1

        def batches(epoch: int) -> Any:
            bars[epoch] = tqdm(self._ds, total=self.steps_per_epoch, disable=not progress,
                               desc=f"{self.modelname} epoch {epoch}/{epochs}", leave=False)
            return bars[epoch]

        def train_step(batch: Tuple[Any, Any]) -> Dict[str, float]:
            lr = float(self._schedule(self.optimizer.iterations))
            out = {k: float(v) for k, v in self._train_step(*batch).items()}
            self.reporting.record(learning_rate=lr, **out)
            self.step += 1
            return out

        def after_step(epoch: int, step: int, logs: Dict[str, float]) -> None:
            bars[epoch].set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}")

        def epoch_end(epoch: int, record: Dict[str, float]) -> None:
            summary.clear()
            summary.update({f"epoch_{k}": v for k, v in record.items() if k != "epoch"})
            logger.info("%s epoch %d/%d: %s", self.modelname, epoch, epochs, dict(summary))
            self.reporting.log_metrics(summary)
            if _due(save, epoch, "save"):
                self.save()
            if _due(evaluate, epoch, "evaluate"):
                summary.update(self.evaluate(query_fig=_due(query_fig, epoch, "query_fig")))
            if _due(save_projections, epoch, "save_projections"):
                self.save_projections()
            if _due(visualize_kernels, epoch, "visualize_kernels"):
                self.visualize_kernels()

        run_epochs(epochs, batches, train_step, Hooks(epoch_start, after_step, epoch_end))
        self.reporting.flush()
        return summary

    # -- benchmarks (F2) and records (F3), kept by the reporting part --------------------------

    def evaluate(self, query_fig: bool = False) -> Dict[str, float]:
        """Benchmarks now: test loss, alignment and uniformity (with ``testdata``) and the
        linear probe (with ``downstream_labels``); recorded and returned."""
        metrics: Dict[str, float] = {}
        if self._test_ds is not None:
            metrics.update(self._test_metrics())
        if self._downstream is not None:
            metrics.update(self.reporting.linear_probe(query_fig))
        elif query_fig:
            logger.warning("query_fig needs downstream_labels; no figure written")
        self.reporting.record(metric=True, **metrics)
        self.reporting.flush()
        return metrics

    def _test_metrics(self) -> Dict[str, float]:
        """The test pairs' loss, alignment and uniformity (a method with other test data
        overrides it)."""
        losses, z1s, z2s = [], [], []
        for x1, x2 in self._test_ds:
            loss, z1, z2 = self._test_fn(x1, x2)
            losses.append(float(loss))
            z1s.append(z1.numpy())
            z2s.append(z2.numpy())
        z1 = np.concatenate(z1s)
        return {"test_loss": float(np.mean(losses)),
                "alignment": ev.alignment(z1, np.concatenate(z2s)),
                "uniformity": ev.uniformity(z1[:MAX_UNIFORMITY_SAMPLES])}

    def rotation_classification_test(self, testdata: Optional[Sequence[str]] = None,
                                     max_images: int = 1000) -> float:
        """Label-free proxy (Reed et al. 2021): linear accuracy at predicting quarter turns
        from pooled features of ``testdata`` (default: the trainer's testdata, else its
        training files), recorded as ``rotation_classification_accuracy`` and returned."""
        data = testdata if testdata is not None else (
            self._testdata if self._testdata is not None else self._trainingdata)
        return self.reporting.rotation_classification_test(data, max_images)

    def visualize_kernels(self) -> np.ndarray:
        """Record the first convolution's kernels as a TensorBoard image; returns it."""
        return self.reporting.visualize_kernels()

    def save_projections(self, max_images: int = 1000, sprite_size: int = 32) -> str:
        """Pooled features of the labelled images (else the test images) for TensorBoard's
        projector, with sprites and labels; returns the projector config path."""
        return self.reporting.save_projections(self._testdata, max_images, sprite_size)

    def track_with_mlflow(self, experiment: Optional[str] = None,
                          tracking_uri: Optional[str] = None, run_name: Optional[str] = None
                          ) -> Any:
        """Log the hyperparameters now, and the metrics from here on, with MLflow.

        Raises ImportError (saying ``pip install mlflow``) when mlflow is not installed.
        Returns the active MLflow run.
        """
        return self.reporting.track_with_mlflow(experiment, tracking_uri, run_name)

    # -- persistence ---------------------------------------------------------------------------

    def save(self) -> Dict[str, str]:
        """Write ``fcn.keras`` (the extractor, ready for the widget), the weights of every
        component as ``<name>.weights.h5`` and, for methods that have any, the variables
        outside the models as ``state.npz`` into ``logdir``; returns the paths."""
        os.makedirs(self.logdir, exist_ok=True)
        paths = {"fcn.keras": os.path.join(self.logdir, "fcn.keras")}
        self.fcn.save(paths["fcn.keras"])
        for name, model in self._models.items():
            paths[name] = os.path.join(self.logdir, f"{name}.weights.h5")
            model.save_weights(paths[name])
        state = self._state_variables()
        if state:
            paths["state"] = os.path.join(self.logdir, STATE_FILE)
            np.savez(paths["state"], **{k: v.numpy() for k, v in state.items()})
        return paths

    def load_weights(self, logdir: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
        """Load every component's ``<name>.weights.h5`` saved by :meth:`save` in ``logdir``
        (default: this trainer's), e.g. to resume a run."""
        folder = os.fspath(logdir) if logdir is not None else self.logdir
        missing = [n for n in self._models
                   if not os.path.isfile(os.path.join(folder, f"{n}.weights.h5"))]
        state = self._state_variables()
        if state and not os.path.isfile(os.path.join(folder, STATE_FILE)):
            missing.append(STATE_FILE)
        if missing:
            raise FileNotFoundError(f"no saved weights for {missing} in {folder}; "
                                    "call save() in the run you load from")
        for name, model in self._models.items():
            model.load_weights(os.path.join(folder, f"{name}.weights.h5"))
        if state:
            with np.load(os.path.join(folder, STATE_FILE)) as saved:
                for name, variable in state.items():
                    variable.assign(saved[name])
