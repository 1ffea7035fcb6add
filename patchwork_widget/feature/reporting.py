"""Benchmarks (F2) and records (F3) of a trainer: :class:`Reporter`, a part each
:class:`~patchwork_widget.feature.base.FeatureTrainer` owns (``trainer.reporting``).

The reporter owns the run's records: the TensorBoard writer (created, with ``config.yaml`` and
the hyperparameters, when first used), the MLflow run once :meth:`Reporter.track_with_mlflow`
started one, and the cache of decoded downstream images. It receives what it reads as explicit
arguments at construction (the folder, the config, the network and its pooled-feature
function, the input options, the downstream labels) and the trainer's step as a function; it
never sees the trainer. The trainer's public methods (``evaluate``,
``rotation_classification_test``, ``visualize_kernels``, ``save_projections``,
``track_with_mlflow``) call it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from patchwork_widget.feature import evaluate as ev
from patchwork_widget.feature import records
from patchwork_widget.feature.data import file_list

logger = logging.getLogger(__name__)

__all__ = ["Downstream", "Reporter"]

#: Labelled images for the linear probe: (files, labels, test mask).
Downstream = Tuple[Sequence[str], np.ndarray, np.ndarray]


class Reporter:
    """The records and benchmarks of one training run.

    Parameters
    ----------
    logdir : str
        Folder of the TensorBoard events and ``config.yaml`` (created when first written).
    config : mapping
        The run's configuration, written as ``config.yaml`` and as hyperparameters.
    fcn : keras.Model
        The network trained (its first convolution's kernels are drawn).
    features : callable
        Images -> pooled features (``feature.evaluate.feature_function(fcn)``).
    input_options : mapping
        How images are read (``imshape``, ``num_channels``, ``norm``, ``single_channel``).
    eval_batch_size : int
        Batch size of feature extraction for the benchmarks.
    downstream : (files, labels, test mask), optional
        Labelled images for the linear probe.
    step : callable
        The trainer's current step, for every record.
    """

    def __init__(self, logdir: str, config: Mapping[str, Any], *, fcn: keras.Model,
                 features: Callable[[Any], Any], input_options: Mapping[str, Any],
                 eval_batch_size: int, downstream: Optional[Downstream],
                 step: Callable[[], int]) -> None:
        self.logdir = logdir
        self.config = config
        self.fcn = fcn
        self.features = features
        self.input_options = dict(input_options)
        self.eval_batch_size = eval_batch_size
        self.downstream = downstream
        self.step = step
        self._writer: Any = None
        self._mlflow: Any = None
        self._downstream_images: Optional[np.ndarray] = None

    @property
    def writer(self) -> Any:
        """The TensorBoard writer; the first use creates ``logdir`` and writes
        ``config.yaml`` and the hyperparameters."""
        if self._writer is None:
            os.makedirs(self.logdir, exist_ok=True)
            records.write_config(self.logdir, self.config)
            self._writer = tf.summary.create_file_writer(self.logdir)
            records.write_hparams(self._writer,
                                  {k: v for k, v in self.config.items() if k != "notes"},
                                  trial_id=os.path.basename(os.path.abspath(self.logdir)))
        return self._writer

    # -- records (F3) --------------------------------------------------------------------------

    def record(self, metric: bool = False, **scalars: float) -> None:
        """Write ``scalars`` at the current step; a ``metric`` also goes to MLflow when a run
        is tracked."""
        with self.writer.as_default(step=self.step()):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        if metric and scalars:
            self.log_metrics(scalars)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """``metrics`` to the tracked MLflow run, if there is one."""
        if self._mlflow is not None:
            self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()},
                                     step=self.step())

    def flush(self) -> None:
        self.writer.flush()

    def visualize_kernels(self) -> np.ndarray:
        """Record the first convolution's kernels as a TensorBoard image; returns it."""
        image = records.kernel_image(self.fcn)
        with self.writer.as_default(step=self.step()):
            tf.summary.image("first_layer_kernels", image)
        self.writer.flush()
        return image

    def save_projections(self, testdata: Any, max_images: int = 1000,
                         sprite_size: int = 32) -> str:
        """Pooled features of the labelled images (else the images of ``testdata``) for
        TensorBoard's projector, with sprites and labels; returns the projector config path."""
        if self.downstream is not None:
            images = self.labelled_images()[:max_images]
            meta = [str(v) for v in self.downstream[1][:max_images]]
        else:
            files = file_list(testdata, "testdata") if testdata is not None else None
            if files is None:
                raise ValueError("save_projections needs downstream_labels or testdata paths")
            files = files[:max_images]
            images = ev.load_images(files, batch_size=self.eval_batch_size,
                                    **self.input_options)
            meta = [os.path.basename(f) for f in files]
        feats = ev.pooled_features(self.features, images, self.eval_batch_size)
        return records.save_projections(self.logdir, feats, images, meta, sprite_size)

    def track_with_mlflow(self, experiment: Optional[str] = None,
                          tracking_uri: Optional[str] = None, run_name: Optional[str] = None
                          ) -> Any:
        """Log the hyperparameters now, and the metrics from here on, with MLflow; returns
        the active run (ImportError saying ``pip install mlflow`` without it)."""
        mlflow = records.import_mlflow()
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        if experiment is not None:
            mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name=run_name or os.path.basename(
            os.path.abspath(self.logdir)))
        mlflow.log_params(records.scalar_hparams(
            {k: v for k, v in self.config.items() if k != "notes"}))
        mlflow.set_tag("mlflow.note.content", self.config["notes"])
        mlflow.set_tag("logdir", os.path.abspath(self.logdir))
        self._mlflow = mlflow
        return run

    # -- benchmarks (F2) -----------------------------------------------------------------------

    def labelled_images(self) -> np.ndarray:
        """Decoded downstream images, read once and kept (labelled sets are small)."""
        if self.downstream is None:
            raise ValueError("no downstream_labels were given")
        if self._downstream_images is None:
            self._downstream_images = ev.load_images(self.downstream[0],
                                                     batch_size=self.eval_batch_size,
                                                     **self.input_options)
        return self._downstream_images

    def linear_probe(self, query_fig: bool) -> Dict[str, float]:
        """Linear classification of the downstream labels on pooled features: its accuracy,
        with the confusion matrix (and the query figure) recorded."""
        _, labels, test_mask = self.downstream
        images = self.labelled_images()
        feats = ev.pooled_features(self.features, images, self.eval_batch_size)
        result = ev.linear_classification_test(feats, labels, test_mask)
        cm = result.confusion.astype(np.float32)
        cm = np.kron(cm / max(cm.max(), 1.0), np.ones((8, 8), np.float32))
        with self.writer.as_default(step=self.step()):
            tf.summary.image("linear_classification_confusion_matrix", cm[None, :, :, None])
            if query_fig:
                tf.summary.image("query_figure", records.query_figure(
                    feats[test_mask], images[test_mask], labels[test_mask]))
        return {"linear_classification_accuracy": result.accuracy}

    def rotation_classification_test(self, data: Any, max_images: int = 1000) -> float:
        """Label-free proxy (Reed et al. 2021): linear accuracy at predicting quarter turns
        from pooled features of the images ``data`` (paths or an array), recorded as
        ``rotation_classification_accuracy`` and returned."""
        files = file_list(data, "testdata")
        if files is None and not isinstance(data, np.ndarray):
            raise ValueError("rotation_classification_test needs image paths or an image "
                             "array; pass testdata=")
        images = ev.load_images((files if files is not None else data)[:max_images],
                                batch_size=self.eval_batch_size, **self.input_options)
        acc = ev.rotation_classification_test(self.features, images,
                                              self.eval_batch_size).accuracy
        self.record(metric=True, rotation_classification_accuracy=acc)
        return acc
