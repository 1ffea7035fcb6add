"""Masked sigmoid losses for partial multi-hot labels (feature M2).

``y_true`` holds NaN where a label is missing. Missing entries are replaced *before* the loss
(``tf.where`` on the targets and on the predictions), so neither a NaN nor a gradient reaches
them: ``NaN * 0`` would be NaN, and ``tf.where`` passes exactly zero gradient to the branch it
does not select.

Reduction: the loss is the mean over the present entries of the whole batch,
``sum(mask * l) / max(sum(mask), 1)`` where ``l`` is Keras' element-wise loss. On a fully
labelled batch this is the mean over samples of the per-sample mean over classes, i.e. exactly
Keras' ``BinaryCrossentropy`` / ``BinaryFocalCrossentropy`` with the default
``"sum_over_batch_size"`` reduction; a batch with no label gives 0.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import keras
import tensorflow as tf

from patchwork_widget.options.training import LossKind, LossOptions

__all__ = ["LossOptions", "bce_elements", "focal_elements", "loss_elements", "loss_function",
           "masked_binary_crossentropy", "masked_binary_focal_crossentropy", "masked_mean",
           "split_targets"]

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def split_targets(y_true: Any, y_pred: Any) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(target, pred, mask)``: NaN targets replaced by 0 and their predictions by 0.5
    (through ``tf.where``, so no gradient reaches them); ``mask`` is 1.0 where labelled."""
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.cast(tf.convert_to_tensor(y_true), y_pred.dtype)
    present = tf.logical_not(tf.math.is_nan(y_true))
    target = tf.where(present, y_true, tf.zeros_like(y_true))
    pred = tf.where(present, y_pred, tf.fill(tf.shape(y_pred), tf.constant(0.5, y_pred.dtype)))
    return target, pred, tf.cast(present, y_pred.dtype)


def _smooth(target: tf.Tensor, label_smoothing: float) -> tf.Tensor:
    if label_smoothing:
        return target * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return target


def bce_elements(target: tf.Tensor, pred: tf.Tensor, label_smoothing: float = 0.0) -> tf.Tensor:
    """Element-wise binary cross-entropy as Keras computes it (probabilities, clipped)."""
    return keras.ops.binary_crossentropy(_smooth(target, label_smoothing), pred)


def focal_elements(target: tf.Tensor, pred: tf.Tensor, gamma: float = 2.0,
                   alpha: Optional[float] = None, label_smoothing: float = 0.0) -> tf.Tensor:
    """Element-wise binary focal cross-entropy (Lin et al. 2017,
    https://arxiv.org/abs/1708.02002), as Keras' ``binary_focal_crossentropy`` computes it."""
    target = _smooth(target, label_smoothing)
    bce = keras.ops.binary_crossentropy(target, pred)
    p_t = target * pred + (1.0 - target) * (1.0 - pred)
    out = keras.ops.power(1.0 - p_t, gamma) * bce
    if alpha is not None:
        out = (target * alpha + (1.0 - target) * (1.0 - alpha)) * out
    return out


def masked_mean(elements: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """``sum(mask * elements) / max(sum(mask), 1)``."""
    return tf.reduce_sum(mask * elements) / tf.maximum(tf.reduce_sum(mask), 1.0)


def masked_binary_crossentropy(y_true: Any, y_pred: Any,
                               label_smoothing: float = 0.0) -> tf.Tensor:
    """Binary cross-entropy over the labelled entries only.

    Parameters
    ----------
    y_true : array-like
        (N, C) targets: 0, 1 or NaN (missing).
    y_pred : array-like
        (N, C) sigmoid outputs in [0, 1].
    label_smoothing : float
        In [0, 1]: targets become ``y * (1 - s) + s / 2`` (Szegedy et al. 2016,
        https://arxiv.org/abs/1512.00567), as in Keras.

    Returns
    -------
    tf.Tensor
        Scalar: mean element loss over present entries (0 if none).
    """
    target, pred, mask = split_targets(y_true, y_pred)
    return masked_mean(bce_elements(target, pred, label_smoothing), mask)


def masked_binary_focal_crossentropy(y_true: Any, y_pred: Any, gamma: float = 2.0,
                                     alpha: Optional[float] = None,
                                     label_smoothing: float = 0.0) -> tf.Tensor:
    """Binary focal cross-entropy over the labelled entries only (Lin et al. 2017).

    ``alpha=None`` means no class balancing (Keras' ``apply_class_balancing=False``); a float
    weights positives by ``alpha`` and negatives by ``1 - alpha``. Other arguments and the
    reduction are those of :func:`masked_binary_crossentropy`.
    """
    target, pred, mask = split_targets(y_true, y_pred)
    return masked_mean(focal_elements(target, pred, gamma, alpha, label_smoothing), mask)


def loss_elements(options: LossOptions) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Element-wise loss ``(target, pred) -> (N, C)`` of ``options`` on already-masked inputs."""
    if options.kind is LossKind.FOCAL:
        return lambda t, p: focal_elements(t, p, options.gamma, options.alpha,
                                           options.label_smoothing)
    return lambda t, p: bce_elements(t, p, options.label_smoothing)


def loss_function(options: LossOptions) -> LossFn:
    """The masked loss ``(y_true with NaN, y_pred) -> scalar`` of ``options``."""
    elements = loss_elements(options)

    def loss(y_true: Any, y_pred: Any) -> tf.Tensor:
        target, pred, mask = split_targets(y_true, y_pred)
        return masked_mean(elements(target, pred), mask)

    return loss
