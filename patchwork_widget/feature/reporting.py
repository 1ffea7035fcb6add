"""Benchmarks (F2) and records (F3) of a trainer, as a mixin of
:class:`~patchwork_widget.feature.base.FeatureTrainer`.

The methods use what the base sets up: ``fcn``, ``logdir``, ``step``, the summary writer, the
test pairs, the downstream labels and the input options.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from patchwork_widget.feature import evaluate as ev
from patchwork_widget.feature import records
from patchwork_widget.feature.data import file_list

logger = logging.getLogger(__name__)

__all__ = ["ReportingMixin"]

MAX_UNIFORMITY_SAMPLES = 2048


class ReportingMixin:
    """``evaluate``, ``rotation_classification_test``, ``visualize_kernels``,
    ``save_projections`` and ``track_with_mlflow`` for the trainers."""

    # -- benchmarks (F2) -----------------------------------------------------------------------

    def evaluate(self, query_fig: bool = False) -> Dict[str, float]:
        """Benchmarks now: test loss, alignment and uniformity (with ``testdata``) and the
        linear probe (with ``downstream_labels``); recorded and returned."""
        metrics: Dict[str, float] = {}
        if self._test_ds is not None:
            metrics.update(self._test_metrics())
        if self._downstream is not None:
            metrics.update(self._linear_probe(query_fig))
        elif query_fig:
            logger.warning("query_fig needs downstream_labels; no figure written")
        self._record_scalars(metric=True, **metrics)
        self._writer.flush()
        return metrics

    def _test_metrics(self) -> Dict[str, float]:
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

    def _labelled_images(self) -> np.ndarray:
        """Decoded downstream images, read once and kept (labelled sets are small)."""
        if self._downstream_images is None:
            self._downstream_images = ev.load_images(self._downstream[0],
                                                     batch_size=self.eval_batch_size,
                                                     **self._input)
        return self._downstream_images

    def _linear_probe(self, query_fig: bool) -> Dict[str, float]:
        files, labels, test_mask = self._downstream
        images = self._labelled_images()
        feats = ev.pooled_features(self._features, images, self.eval_batch_size)
        result = ev.linear_classification_test(feats, labels, test_mask)
        cm = result.confusion.astype(np.float32)
        cm = np.kron(cm / max(cm.max(), 1.0), np.ones((8, 8), np.float32))
        with self._writer.as_default(step=self.step):
            tf.summary.image("linear_classification_confusion_matrix", cm[None, :, :, None])
            if query_fig:
                tf.summary.image("query_figure", records.query_figure(
                    feats[test_mask], images[test_mask], labels[test_mask]))
        return {"linear_classification_accuracy": result.accuracy}

    def rotation_classification_test(self, testdata: Optional[Sequence[str]] = None,
                                     max_images: int = 1000) -> float:
        """Label-free proxy (Reed et al. 2021): linear accuracy at predicting quarter turns
        from pooled features of ``testdata`` (default: the trainer's testdata, else its
        training files), recorded as ``rotation_classification_accuracy`` and returned."""
        data = testdata if testdata is not None else (
            self._testdata if self._testdata is not None else self._trainingdata)
        files = file_list(data, "testdata")
        if files is None and not isinstance(data, np.ndarray):
            raise ValueError("rotation_classification_test needs image paths or an image "
                             "array; pass testdata=")
        images = ev.load_images((files if files is not None else data)[:max_images],
                                batch_size=self.eval_batch_size, **self._input)
        acc = ev.rotation_classification_test(self._features, images,
                                              self.eval_batch_size).accuracy
        self._record_scalars(metric=True, rotation_classification_accuracy=acc)
        return acc

    # -- records (F3) --------------------------------------------------------------------------

    def _record_scalars(self, metric: bool = False, **scalars: float) -> None:
        with self._writer.as_default(step=self.step):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        if metric and self._mlflow is not None and scalars:
            self._mlflow.log_metrics({k: float(v) for k, v in scalars.items()}, step=self.step)

    def visualize_kernels(self) -> np.ndarray:
        """Record the first convolution's kernels as a TensorBoard image; returns it."""
        image = records.kernel_image(self.fcn)
        with self._writer.as_default(step=self.step):
            tf.summary.image("first_layer_kernels", image)
        self._writer.flush()
        return image

    def save_projections(self, max_images: int = 1000, sprite_size: int = 32) -> str:
        """Pooled features of the labelled images (else the test images) for TensorBoard's
        projector, with sprites and labels; returns the projector config path."""
        if self._downstream is not None:
            images = self._labelled_images()[:max_images]
            meta = [str(v) for v in self._downstream[1][:max_images]]
        else:
            files = file_list(self._testdata, "testdata") if self._testdata is not None else None
            if files is None:
                raise ValueError("save_projections needs downstream_labels or testdata paths")
            files = files[:max_images]
            images = ev.load_images(files, batch_size=self.eval_batch_size, **self._input)
            meta = [os.path.basename(f) for f in files]
        feats = ev.pooled_features(self._features, images, self.eval_batch_size)
        return records.save_projections(self.logdir, feats, images, meta, sprite_size)

    def track_with_mlflow(self, experiment: Optional[str] = None,
                          tracking_uri: Optional[str] = None, run_name: Optional[str] = None
                          ) -> Any:
        """Log the hyperparameters now, and the metrics from here on, with MLflow.

        Raises ImportError (saying ``pip install mlflow``) when mlflow is not installed.
        Returns the active MLflow run.
        """
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
