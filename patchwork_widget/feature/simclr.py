"""SimCLR (feature F4): two augmented views, a projection head and the NT-Xent loss."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import keras
import tensorflow as tf

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.data import TrainingData
from patchwork_widget.feature.losses import nt_xent_loss
from patchwork_widget.models.networks import projection_head
from patchwork_widget.options.checks import check_int, check_number

__all__ = ["SimCLRTrainer"]


class SimCLRTrainer(FeatureTrainer):
    """Train ``fcn`` with SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709).

    Both views of a batch go through ``fcn`` and the projection head as one batch of ``2B``
    images (so batch norm sees both), and each view is contrasted with all other ``2B - 2``
    views of the GLOBAL batch: under a multi-replica strategy the embeddings are all-gathered
    (with gradients) before the loss.

    Parameters
    ----------
    logdir, trainingdata, testdata, fcn, augment
        See :class:`~patchwork_widget.feature.base.FeatureTrainer`.
    temperature : float
        NT-Xent temperature, > 0.
    num_hidden : int
        Hidden units of the projection head (0: a linear head).
    output_dim : int
        Embedding size the loss works in.
    batchnorm : bool
        Batch norm in the head's hidden layer; switch it off if the loss plateaus early or the
        probe stays at the base rate with small batches (see docs/feature.md).
    **kwargs
        ``options``, ``downstream_labels``, ``strategy`` or the option fields as keywords
        (see :class:`~patchwork_widget.feature.base.FeatureTrainer`).
    """

    modelname = "SimCLR"

    def __init__(
        self,
        logdir: str,
        trainingdata: TrainingData,
        testdata: Optional[TrainingData] = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any], None] = None,
        temperature: float = 0.1,
        num_hidden: int = 128,
        output_dim: int = 64,
        batchnorm: bool = True,
        **kwargs: Any,
    ) -> None:
        self.temperature = check_number("temperature", temperature, 0.0, open_low=True)
        self.num_hidden = check_int("num_hidden", num_hidden, 0)
        self.output_dim = check_int("output_dim", output_dim, 1)
        if not isinstance(batchnorm, bool):
            raise ValueError(f"batchnorm must be True or False; got {batchnorm!r}")
        self.batchnorm = batchnorm
        super().__init__(logdir, trainingdata, testdata, fcn, augment, **kwargs)

    def _method_config(self) -> Dict[str, Any]:
        return {"temperature": self.temperature, "num_hidden": self.num_hidden,
                "output_dim": self.output_dim, "batchnorm": self.batchnorm}

    def _build_models(self) -> Dict[str, keras.Model]:
        self.head = projection_head(self.fcn.outputs[0].shape[-1], self.num_hidden,
                                    self.output_dim, self.batchnorm,
                                    synchronized_bn=self.num_replicas > 1)
        return {"head": self.head}

    def _trainable_variables(self) -> list:
        return self.fcn.trainable_variables + self.head.trainable_variables

    def embed(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Normalised projections of images ``x`` (what the loss compares)."""
        return tf.math.l2_normalize(self.head(self.fcn(x, training=training),
                                              training=training), axis=1)

    def _loss(self, z1: tf.Tensor, z2: tf.Tensor, all_z1: tf.Tensor, all_z2: tf.Tensor,
              offset: Any) -> Tuple[tf.Tensor, tf.Tensor]:
        """(loss, accuracy) of local embeddings against the gathered ones."""
        return nt_xent_loss(z1, z2, self.temperature, all_z1, all_z2, offset)

    def _replica_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Dict[str, tf.Tensor]:
        variables = self._trainable_variables()
        with tf.GradientTape() as tape:
            z1, z2 = tf.split(self.embed(tf.concat([x1, x2], axis=0), training=True), 2)
            (all_z1, all_z2), offset = self._gather(z1, z2)
            loss, acc = self._loss(z1, z2, all_z1, all_z2, offset)
            scaled = loss / self.num_replicas
        self._minimize(tape, scaled, variables)
        return {"loss": loss, "nce_batch_accuracy": acc}

    def _test_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        z1, z2 = self.embed(x1), self.embed(x2)
        return self._loss(z1, z2, z1, z2, 0)[0], z1, z2
