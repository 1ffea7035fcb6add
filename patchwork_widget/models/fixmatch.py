"""FixMatch for multi-hot sigmoid outputs (feature M4).

Sohn et al. 2020, https://arxiv.org/abs/2001.07685, adapted to independent sigmoids: for an
unlabelled image, the model's output on a weakly augmented view gives, per class, a hard
pseudo-label 1 where ``p >= tau`` and 0 where ``p <= 1 - tau``; other classes of that image are
masked. The strongly augmented view is trained towards those pseudo-labels:

    l_u = sum_{b, c} m_bc * H(yhat_bc, q_bc) / (mu * B * C)

with ``m`` the mask, ``q`` the strong-view output and ``H`` the supervised element-wise loss
(without label smoothing). Like the paper, the sum is divided by every unlabelled entry, not by
the confident ones, so a model with few confident outputs gets a small unlabelled loss. The
total loss is ``l_s + lambda * l_u``; ``lambda = 0`` switches FixMatch off (no unlabelled batch is
even drawn). The mask fraction ``mean(m)`` is logged.

Pre-extracted features cannot be augmented as images. There the weak view is the features
themselves and the strong view is a feature-space perturbation (:func:`perturb_features`):
inverted dropout of rate ``feature_dropout`` followed by Gaussian noise of standard deviation
``feature_noise`` times the root-mean-square of each sample's features.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import tensorflow as tf

from patchwork_widget.options.training import WEAK_AUGMENT, FixMatchOptions

__all__ = ["FixMatchOptions", "WEAK_AUGMENT", "fixmatch_loss", "perturb_features",
           "pseudo_labels"]


def pseudo_labels(probs: Any, tau: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """Hard multi-hot pseudo-labels and their mask.

    Parameters
    ----------
    probs : array-like
        (N, C) sigmoid outputs on the weak view.
    tau : float
        Threshold in (0.5, 1].

    Returns
    -------
    (targets, mask) : (tf.Tensor, tf.Tensor)
        float32 (N, C): ``targets`` is 1 where ``p >= tau`` else 0; ``mask`` is 1 where
        ``p >= tau`` or ``p <= 1 - tau``.
    """
    p = tf.stop_gradient(tf.cast(tf.convert_to_tensor(probs), tf.float32))
    pos = p >= tau
    mask = tf.logical_or(pos, p <= 1.0 - tau)
    return tf.cast(pos, tf.float32), tf.cast(mask, tf.float32)


def fixmatch_loss(
    weak_probs: Any,
    strong_probs: Any,
    tau: float,
    elements: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Unlabelled loss and mask fraction (see the module docstring for the formula).

    Parameters
    ----------
    weak_probs, strong_probs : array-like
        (N, C) outputs on the weak and the strong view.
    tau : float
        Confidence threshold.
    elements : callable
        Element-wise loss ``(target, pred) -> (N, C)``, e.g. ``loss_elements(LossOptions(...))``.

    Returns
    -------
    (loss, mask_fraction) : scalars
    """
    targets, mask = pseudo_labels(weak_probs, tau)
    strong = tf.cast(tf.convert_to_tensor(strong_probs), tf.float32)
    pred = tf.where(mask > 0, strong, tf.fill(tf.shape(strong), 0.5))
    total = tf.cast(tf.size(mask), tf.float32)
    loss = tf.reduce_sum(mask * elements(targets, pred)) / tf.maximum(total, 1.0)
    return loss, tf.reduce_mean(mask)


def perturb_features(x: tf.Tensor, dropout: float, noise: float) -> tf.Tensor:
    """Strong view of pre-extracted features: inverted dropout, then Gaussian noise scaled by
    each sample's feature RMS. Used instead of image augmentation when there are no images."""
    x = tf.convert_to_tensor(x, tf.float32)
    if dropout > 0:
        keep = tf.cast(tf.random.uniform(tf.shape(x)) >= dropout, x.dtype)
        x = x * keep / (1.0 - dropout)
    if noise > 0:
        axes = list(range(1, x.shape.rank))
        rms = tf.sqrt(tf.reduce_mean(tf.square(x), axis=axes, keepdims=True))
        x = x + noise * rms * tf.random.normal(tf.shape(x))
    return x
