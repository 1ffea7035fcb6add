"""DetCon-S (feature F7): SimCLR/HCL over segment-pooled features instead of whole images."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import tensorflow as tf

from patchwork_widget.feature.data import TrainingData
from patchwork_widget.feature.hcl import HCLTrainer
from patchwork_widget.feature.losses import contrastive_logits, hard_negative_term
from patchwork_widget.feature.segments import detcon_dataset, segment_present
from patchwork_widget.options.params import Interval

# Segments per image: each is a mask over the image and a pair of projections, so memory grows
# with it; the paper uses 16, and past 256 segments of a small image are single pixels.
NUM_SAMPLES = Interval(int, 1, 256)
MEAN_SCALE = Interval(float, 0.0, 100_000.0)

__all__ = ["DetConTrainer", "masked_hcl_loss", "segment_pool"]


def masked_hcl_loss(
    z1: tf.Tensor, z2: tf.Tensor, valid: tf.Tensor, temperature: float = 0.1,
    beta: float = 0.0, tau_plus: float = 0.0, all_z1: Any = None, all_z2: Any = None,
    all_valid: Any = None, offset: Any = 0,
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """HCL (NT-Xent at ``beta = tau_plus = 0``) where some pairs are left out.

    A pair ``i`` with ``valid[i]`` False (its segment was cropped out of a view) is neither
    an anchor nor a negative of any other anchor; each anchor's negatives are the valid
    candidates other than itself and its positive. Per anchor, with its ``N`` negatives
    ``n`` and ``s = cos / temperature``: ``log R = logsumexp((1 + beta) s_n) -
    logsumexp(beta s_n) + log N``; ``Ng = (R - tau_plus N exp(s_pos)) / (1 - tau_plus)``
    clamped below at ``N exp(-1 / temperature)``; loss ``log(exp(s_pos) + Ng) - s_pos``
    (Robinson et al. 2021, eq. 6). With every pair valid this is
    :func:`~patchwork_widget.feature.losses.hcl_loss`.

    Parameters
    ----------
    z1, z2 : tf.Tensor
        ``(b, d)`` normalised embeddings of this replica's pairs.
    valid : tf.Tensor
        ``(b,)`` bool.
    all_z1, all_z2, all_valid, offset
        The same gathered over replicas and where this replica's rows start (default: the
        local ones, offset 0).

    Returns
    -------
    (loss_sum, count, accuracy)
        Sum of the loss over this replica's valid anchors (two per valid pair), the number of
        valid anchors over ALL replicas (divide the first by it for the global mean), and the
        share of valid local anchors whose most similar valid candidate is their positive.
    """
    if not 0.0 <= tau_plus < 1.0:
        raise ValueError(f"tau_plus must be in [0, 1); got {tau_plus!r}")
    all_z1 = z1 if all_z1 is None else all_z1
    all_z2 = z2 if all_z2 is None else all_z2
    all_valid = valid if all_valid is None else all_valid
    logits, positive, self_mask = contrastive_logits(z1, z2, all_z1, all_z2, temperature, offset)
    n_cand = tf.shape(logits)[1]
    anchor_ok = tf.concat([valid, valid], axis=0)
    cand_ok = tf.concat([all_valid, all_valid], axis=0)[None, :]
    pos_mask = tf.one_hot(positive, n_cand, on_value=True, off_value=False)
    neg_mask = tf.logical_and(cand_ok, tf.logical_not(tf.logical_or(self_mask, pos_mask)))
    n_neg = tf.reduce_sum(tf.cast(neg_mask, logits.dtype), axis=1)
    anchor_ok = tf.logical_and(anchor_ok, n_neg > 0)
    n_neg = tf.maximum(n_neg, 1.0)
    s_pos = tf.gather(logits, positive, axis=1, batch_dims=1)
    very_small = tf.cast(-1e9, logits.dtype)
    log_ng = hard_negative_term(logits, s_pos, neg_mask, n_neg, beta, tau_plus, temperature)
    loss = tf.reduce_logsumexp(tf.stack([s_pos, log_ng], axis=1), axis=1) - s_pos
    weight = tf.cast(anchor_ok, logits.dtype)
    count = 2.0 * tf.reduce_sum(tf.cast(all_valid, logits.dtype))
    others = tf.where(tf.logical_or(self_mask, tf.logical_not(cand_ok)), very_small, logits)
    hits = tf.cast(tf.equal(tf.argmax(others, axis=1, output_type=tf.int32), positive),
                   logits.dtype)
    acc = tf.reduce_sum(hits * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
    return tf.reduce_sum(loss * weight), count, acc


def segment_pool(features: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """Mask-weighted means of a feature map ``(N, h, w, C)`` over each of the ``S`` masks
    ``(N, H, W, S)`` (area-resized to ``h x w``): ``(N * S, C)``, image-major."""
    small = tf.image.resize(masks, tf.shape(features)[1:3], method="area")
    summed = tf.einsum("nhws,nhwc->nsc", small, features)
    area = tf.reduce_sum(small, axis=[1, 2])[:, :, None]
    pooled = summed / tf.maximum(area, 1e-6)
    return tf.reshape(pooled, [-1, features.shape[-1]])


class DetConTrainer(HCLTrainer):
    """Train ``fcn`` with DetCon-S (Hénaff et al. 2021, https://arxiv.org/abs/2103.10957).

    Each image is segmented (Felzenszwalb, or a grid) and ``num_samples`` segments are drawn;
    both augmented views carry the segments' masks through the same crops, shears and flips.
    The fcn's feature map is averaged under each mask, projected by the head, and every
    segment of a view is contrasted with the same segment of the other view against all other
    segments of the global batch (``num_samples x batch_size`` pairs) with HCL's loss
    (:func:`masked_hcl_loss`; ``beta = tau_plus = 0`` is SimCLR's). A pair whose segment
    covers less than 0.1% of either view (cropped away) is left out of the loss.

    Parameters
    ----------
    mean_scale : float
        Felzenszwalb scale (and minimum segment size in pixels), drawn per image uniformly in
        ``[mean_scale / 2, 1.5 * mean_scale]``; 0 gives a grid of
        ``ceil(sqrt(num_samples))`` squared cells.
    num_samples : int
        Segments per image, 1 to 256 (a square number for the grid).
    *args, **kwargs
        Those of :class:`~patchwork_widget.feature.hcl.HCLTrainer` (``temperature``,
        ``num_hidden``, ``output_dim``, ``batchnorm``, ``beta``, ``tau_plus``) and the base.
        ``decoupled`` is not available.
    """

    modelname = "DetCon"

    def __init__(self, *args: Any, mean_scale: float = 100.0, num_samples: int = 16,
                 **kwargs: Any) -> None:
        self.mean_scale = MEAN_SCALE.check("mean_scale", mean_scale, False)
        self.num_samples = NUM_SAMPLES.check("num_samples", num_samples, False)
        if kwargs.get("decoupled"):
            raise ValueError("DetConTrainer has no decoupled loss; leave decoupled=False")
        super().__init__(*args, **kwargs)

    def _method_config(self) -> Dict[str, Any]:
        out = {**super()._method_config(), "mean_scale": self.mean_scale,
               "num_samples": self.num_samples}
        out.pop("decoupled")
        return out

    def _training_dataset(self, trainingdata: TrainingData) -> Tuple[tf.data.Dataset, int]:
        o = self.options
        return detcon_dataset(trainingdata, self.augment_params, self.mean_scale,
                              self.num_samples, batch_size=self.batch_size, shuffle=True,
                              num_parallel_calls=o.num_parallel_calls, cache=o.cache,
                              **self._input)

    def segment_embed(self, x: tf.Tensor, masks: tf.Tensor, training: bool = False
                      ) -> tf.Tensor:
        """Normalised projections of each segment of images ``x``: ``(N * S, output_dim)``."""
        pooled = segment_pool(self.fcn(x, training=training), masks)
        return tf.math.l2_normalize(self.head(pooled[:, None, None, :], training=training),
                                    axis=1)

    def _replica_step(self, view1: Any, view2: Any) -> Dict[str, tf.Tensor]:
        (x1, m1), (x2, m2) = view1, view2
        valid = tf.reshape(tf.logical_and(segment_present(m1), segment_present(m2)), [-1])
        variables = self._trainable_variables()
        with tf.GradientTape() as tape:
            z = self.segment_embed(tf.concat([x1, x2], 0), tf.concat([m1, m2], 0), True)
            z1, z2 = tf.split(z, 2)
            (all_z1, all_z2, all_valid), offset = self._gather(z1, z2, tf.cast(valid,
                                                                              tf.float32))
            loss_sum, count, acc = masked_hcl_loss(
                z1, z2, valid, self.temperature, self.beta, self.tau_plus,
                all_z1, all_z2, all_valid > 0.5, offset)
            loss = loss_sum / tf.maximum(count, 1.0)   # this replica's share of the mean
        self._minimize(tape, loss, variables)
        kept = tf.reduce_mean(all_valid)
        return {"loss": loss * self.num_replicas, "nce_batch_accuracy": acc,
                "segment_pairs_kept": kept}
