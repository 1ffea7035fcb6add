"""Momentum Contrast (feature F6): a momentum key encoder, a queue of past keys, the v2 MLP
head, the EqCo margin, MoCHi hard negatives and batch-norm shuffling on one device."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.data import TrainingData
from patchwork_widget.feature.losses import mochi_negatives, moco_loss
from patchwork_widget.models.networks import projection_head
from patchwork_widget.options.checks import check_int, check_number

__all__ = ["MomentumContrastTrainer", "enqueue", "momentum_update"]


def enqueue(queue: tf.Variable, keys: tf.Tensor) -> None:
    """Push ``keys`` ``(n, d)`` onto the front of ``queue`` ``(K, d)``; the oldest ``n`` rows
    fall off the end (first in, first out; row 0 is always the newest key)."""
    size = queue.shape[0]
    queue.assign(tf.concat([tf.cast(keys, queue.dtype), queue], axis=0)[:size])


def momentum_update(slow: Sequence[Any], fast: Sequence[Any], alpha: float) -> None:
    """``slow <- alpha * slow + (1 - alpha) * fast`` for each pair of variables (MoCo's key
    encoder update, He et al. 2020, eq. 2)."""
    for s, f in zip(slow, fast):
        s.assign(alpha * s + (1.0 - alpha) * f)


class MomentumContrastTrainer(FeatureTrainer):
    """Train ``fcn`` with Momentum Contrast (He et al. 2020, https://arxiv.org/abs/1911.05722).

    The query encoder is ``fcn`` plus a projection head; the key encoder is a copy updated only
    as a moving average of it. Each query is contrasted with its own key and a queue of keys
    from the last ``batches_in_buffer`` batches. To keep batch norm from leaking which key
    matches which query on a single device, the queries are encoded in two halves of the batch
    and the keys in two halves of a random permutation of it, so a query and its key never
    share the same batch statistics pattern (the one-device stand-in for MoCo's shuffling of
    batch norm across GPUs). Under a multi-replica strategy each replica splits its share the
    same way and the keys of all replicas enter the queue.

    Parameters
    ----------
    logdir, trainingdata, testdata, fcn, augment
        See :class:`~patchwork_widget.feature.base.FeatureTrainer`.
    alpha : float
        Momentum of the key encoder, in [0, 1).
    tau : float
        Temperature, > 0.
    batches_in_buffer : int
        Queue length in global batches (``K = batches_in_buffer * batch_size``).
    num_hidden : int
        Hidden units of the head (MoCo v2's MLP, Chen et al. 2020,
        https://arxiv.org/abs/2003.04297); 0 gives MoCo v1's linear head.
    output_dim : int
        Embedding size.
    batchnorm : bool
        Batch norm in the head's hidden layer.
    margin : float
        EqCo margin subtracted from the positive similarity; ``tau * log(a / K)`` keeps the
        loss of a queue of ``K`` equivalent to one of ``a`` negatives (Zhu et al. 2020,
        https://arxiv.org/abs/2010.01929). 0 disables.
    N, s, s_prime : int
        MoCHi (Kalantidis et al. 2020, https://arxiv.org/abs/2010.01028): from the ``N``
        hardest queue entries per query, add ``s`` mixes of two of them and ``s_prime`` mixes
        with the query. ``N=0`` disables.
    shuffle_bn : bool
        Split batches for the encoders as described above; False encodes whole batches.
    **kwargs
        Every option of :class:`~patchwork_widget.feature.base.FeatureTrainer`.
    """

    modelname = "MoCo"

    def __init__(
        self,
        logdir: str,
        trainingdata: TrainingData,
        testdata: Optional[TrainingData] = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any], None] = None,
        alpha: float = 0.999,
        tau: float = 0.07,
        batches_in_buffer: int = 16,
        num_hidden: int = 128,
        output_dim: int = 64,
        batchnorm: bool = True,
        margin: float = 0.0,
        N: int = 0,
        s: int = 0,
        s_prime: int = 0,
        shuffle_bn: bool = True,
        **kwargs: Any,
    ) -> None:
        self.alpha = check_number("alpha", alpha, 0.0, 1.0, open_high=True)
        self.tau = check_number("tau", tau, 0.0, open_low=True)
        self.batches_in_buffer = check_int("batches_in_buffer", batches_in_buffer, 1)
        self.num_hidden = check_int("num_hidden", num_hidden, 0)
        self.output_dim = check_int("output_dim", output_dim, 1)
        self.margin = check_number("margin", margin, -np.inf)
        self.N = check_int("N", N, 0)
        self.s = check_int("s", s, 0)
        self.s_prime = check_int("s_prime", s_prime, 0)
        if self.N == 0 and (self.s or self.s_prime):
            raise ValueError("MoCHi's s and s_prime need N >= 1 (how many hardest negatives "
                             "to mix from)")
        if self.N and not (self.s or self.s_prime):
            raise ValueError("MoCHi with N >= 1 needs s >= 1 or s_prime >= 1 synthetic "
                             "negatives")
        for name, flag in (("batchnorm", batchnorm), ("shuffle_bn", shuffle_bn)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False; got {flag!r}")
        self.batchnorm = batchnorm
        self.shuffle_bn = shuffle_bn
        super().__init__(logdir, trainingdata, testdata, fcn, augment, **kwargs)
        if self.N > self.queue.shape[0]:
            raise ValueError(f"N={self.N} is larger than the queue ({self.queue.shape[0]} keys)")

    def _method_config(self) -> Dict[str, Any]:
        return {"alpha": self.alpha, "tau": self.tau,
                "batches_in_buffer": self.batches_in_buffer, "num_hidden": self.num_hidden,
                "output_dim": self.output_dim, "batchnorm": self.batchnorm,
                "margin": self.margin, "N": self.N, "s": self.s, "s_prime": self.s_prime,
                "shuffle_bn": self.shuffle_bn}

    def _build_models(self) -> Dict[str, keras.Model]:
        self.head = projection_head(self.fcn.outputs[0].shape[-1], self.num_hidden,
                                    self.output_dim, self.batchnorm)
        inp = keras.Input(self.fcn.inputs[0].shape[1:])
        self.query_encoder = keras.Model(inp, self.head(self.fcn(inp)), name="query_encoder")
        self.key_encoder = keras.models.clone_model(self.query_encoder)
        self.key_encoder.set_weights(self.query_encoder.get_weights())
        size = self.batches_in_buffer * self.batch_size
        init = np.random.standard_normal((size, self.output_dim))  # seeded by `seed`
        init /= np.linalg.norm(init, axis=1, keepdims=True)
        self.queue = tf.Variable(init.astype(np.float32), trainable=False, name="moco_queue")
        return {"head": self.head, "key_encoder": self.key_encoder}

    def _trainable_variables(self) -> list:
        return self.query_encoder.trainable_variables

    def _encode(self, model: keras.Model, x: tf.Tensor, training: bool,
                permute: bool = False) -> tf.Tensor:
        """Normalised embeddings; with ``shuffle_bn`` in training, two half batches (of a
        random permutation of ``x`` when ``permute``), put back in the original order."""
        if not (training and self.shuffle_bn):
            return tf.math.l2_normalize(model(x, training=training), axis=1)
        n = tf.shape(x)[0]
        order = tf.random.shuffle(tf.range(n)) if permute else tf.range(n)
        xs = tf.gather(x, order)
        half = n // 2
        z = tf.concat([model(xs[:half], training=True), model(xs[half:], training=True)], 0)
        z = tf.gather(z, tf.math.invert_permutation(order))
        return tf.math.l2_normalize(z, axis=1)

    def _replica_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Dict[str, tf.Tensor]:
        k = tf.stop_gradient(self._encode(self.key_encoder, x2, True, permute=True))
        variables = self._trainable_variables()
        with tf.GradientTape() as tape:
            q = self._encode(self.query_encoder, x1, True)
            extra = (mochi_negatives(q, self.queue, self.N, self.s, self.s_prime)
                     if self.N else None)
            loss, acc = moco_loss(q, k, self.queue, self.tau, self.margin, extra)
            scaled = loss / self.num_replicas
        self._minimize(tape, scaled, variables)
        return {"loss": loss, "nce_batch_accuracy": acc, "_keys": k}

    def _after_step(self, outputs: Dict[str, Any]) -> None:
        keys = outputs["_keys"]
        if self.num_replicas > 1:
            keys = self.strategy.gather(keys, axis=0)
        enqueue(self.queue, keys)
        momentum_update(self.key_encoder.trainable_variables,
                        self.query_encoder.trainable_variables, self.alpha)

    def _test_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        q1 = self._encode(self.query_encoder, x1, False)
        q2 = self._encode(self.query_encoder, x2, False)
        k = self._encode(self.key_encoder, x2, False)
        return moco_loss(q1, k, self.queue, self.tau, self.margin)[0], q1, q2
