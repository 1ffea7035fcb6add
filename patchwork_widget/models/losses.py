"""Masked losses for partial labels (feature M2): sigmoid losses for multi-hot labels and the
categorical ones of a one-label-per-image (softmax) output.

``y_true`` holds NaN where a label is missing. Missing entries are replaced *before* the loss
(``tf.where`` on the targets and on the predictions), so neither a NaN nor a gradient reaches
them: ``NaN * 0`` would be NaN, and ``tf.where`` passes exactly zero gradient to the branch it
does not select.

Reduction: the loss is the mean over the present entries of the whole batch,
``sum(mask * l) / max(sum(mask), 1)`` where ``l`` is Keras' element-wise loss. On a fully
labelled batch this is the mean over samples of the per-sample mean over classes, i.e. exactly
Keras' ``BinaryCrossentropy`` / ``BinaryFocalCrossentropy`` with the default
``"sum_over_batch_size"`` reduction; a batch with no label gives 0.

One label per image (:func:`masked_categorical_loss`): a row counts when it has exactly one
"yes" (its one-hot target); any other row is masked out. The loss is the mean over the counted
rows of Keras' ``categorical_crossentropy`` (or ``categorical_focal_crossentropy``), i.e.
Keras' own loss on a batch of counted rows only.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import keras
import tensorflow as tf

from patchwork_widget.options.training import LossKind, LossOptions

__all__ = ["LossOptions", "bce_elements", "focal_elements", "loss_elements", "loss_function",
           "masked_binary_crossentropy", "masked_binary_focal_crossentropy",
           "masked_categorical_loss", "masked_mean", "split_targets"]

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


def masked_categorical_loss(y_true: Any, y_pred: Any,
                            options: LossOptions = LossOptions()) -> tf.Tensor:
    """Categorical cross-entropy (focal with ``options.kind="focal"``, Lin et al. 2017) over
    the rows with exactly one "yes"; 0 when there is none.

    Parameters
    ----------
    y_true : array-like
        (N, C) targets: 0, 1 or NaN (missing).
    y_pred : array-like
        (N, C) softmax outputs.
    options : LossOptions
        Kind, label smoothing (Keras': ``t (1 - s) + s / C``), and for focal ``gamma`` and
        ``alpha`` (None: Keras' default 0.25 is not applied, the weight is 1).
    """
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.cast(tf.convert_to_tensor(y_true), y_pred.dtype)
    yes = tf.cast(tf.equal(y_true, 1.0), y_pred.dtype)
    row = tf.cast(tf.equal(tf.reduce_sum(yes, axis=-1), 1.0), y_pred.dtype)
    target = yes * row[:, None] + (1.0 - row[:, None]) / tf.cast(tf.shape(yes)[-1],
                                                                  y_pred.dtype)
    if options.kind is LossKind.FOCAL:
        per_row = keras.losses.categorical_focal_crossentropy(
            target, y_pred, alpha=1.0 if options.alpha is None else options.alpha,
            gamma=options.gamma, label_smoothing=options.label_smoothing)
    else:
        per_row = keras.losses.categorical_crossentropy(
            target, y_pred, label_smoothing=options.label_smoothing)
    return tf.reduce_sum(row * per_row) / tf.maximum(tf.reduce_sum(row), 1.0)


def loss_function(options: LossOptions, single_label: bool = False) -> LossFn:
    """The masked loss ``(y_true with NaN, y_pred) -> scalar`` of ``options``: sigmoid
    (per entry) or, with ``single_label``, categorical (per row with one "yes")."""
    if single_label:
        return lambda y_true, y_pred: masked_categorical_loss(y_true, y_pred, options)
    elements = loss_elements(options)

    def loss(y_true: Any, y_pred: Any) -> tf.Tensor:
        target, pred, mask = split_targets(y_true, y_pred)
        return masked_mean(elements(target, pred), mask)

    return loss
