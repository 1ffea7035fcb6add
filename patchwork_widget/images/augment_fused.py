"""Pixel-wise augmentation steps fused into single XLA-compiled passes over a batch.

:func:`patchwork_widget.images.augment.augment_batch` draws every random value per image
(outside, with the same draws as the separate ops of :mod:`.augment_ops`) and hands them here.
Each pass is one ``tf.function(jit_compile=True)``: XLA fuses the chain of element-wise ops and
per-image reductions into a few loops over the batch instead of one full read and write of the
float batch per op. At 256 px, batches of 64, brightness + contrast + saturation + hue cost
about 60 ms of CPU a batch fused against about 320 ms as separate TensorFlow kernels
(docs/images.md). Results equal the separate ops to float rounding (a unit test compares them).
An op whose argument is None is off; each combination compiles once per batch shape.
Internal: use :mod:`patchwork_widget.images.augment`.
"""

from __future__ import annotations

import tensorflow as tf

# ITU-R BT.601 luma weights, those of tf.image.rgb_to_grayscale
_LUMA = (0.2989, 0.5870, 0.1140)


def _b4(v: tf.Tensor) -> tf.Tensor:
    return tf.reshape(v, [-1, 1, 1, 1])


def _where(chosen: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.where(_b4(chosen), a, b)


@tf.function(jit_compile=True, autograph=False)
def colour_pass(
    x: tf.Tensor,
    perm: tf.Tensor | None = None,
    brightness: tf.Tensor | None = None,
    contrast: tf.Tensor | None = None,
    saturation: tf.Tensor | None = None,
    hue: tf.Tensor | None = None,
    gray: tf.Tensor | None = None,
    solarize: tf.Tensor | None = None,
    autocontrast: tf.Tensor | None = None,
) -> tf.Tensor:
    """A pixel permutation per image (int (n, h*w), from ``augment_ops.dihedral_index``),
    then brightness offset, contrast factor, saturation factor, hue shift (float vectors, one
    value per image), then grayscale, solarize and autocontrast (bool vectors: the images
    drawn for each), in this order, each clipped to [0, 1] like the separate op. Colour ops
    act per pixel or on per-image statistics, so the permutation commutes with them and XLA
    reads each pixel through it in the same loop.

    ``saturation`` and ``hue`` need 3 channels; ``gray`` uses the luminance for 3 channels and
    the channel mean otherwise. The HSV conversions are those of ``tf.image`` (the semantics of
    ``adjust_saturation`` / ``adjust_hue``), done once for both.
    """
    h, w, c = x.shape[1:]
    if perm is not None:
        x = tf.reshape(tf.gather(tf.reshape(x, [-1, h * w, c]), perm, batch_dims=1), tf.shape(x))
    if brightness is not None:
        x = tf.clip_by_value(x + _b4(brightness), 0.0, 1.0)
    if contrast is not None:
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        x = tf.clip_by_value((x - mean) * _b4(contrast) + mean, 0.0, 1.0)
    if saturation is not None or hue is not None:
        hues, sats, vals = tf.unstack(tf.image.rgb_to_hsv(x), axis=-1)
        if saturation is not None:
            sats = tf.clip_by_value(sats * tf.reshape(saturation, [-1, 1, 1]), 0.0, 1.0)
        if hue is not None:
            hues = tf.math.floormod(hues + tf.reshape(hue, [-1, 1, 1]), 1.0)
        x = tf.image.hsv_to_rgb(tf.stack([hues, sats, vals], axis=-1))
        x = tf.clip_by_value(x, 0.0, 1.0)
    if gray is not None:
        if c == 3:
            g = tf.reduce_sum(x * tf.constant(_LUMA, x.dtype), axis=-1, keepdims=True)
        else:
            g = tf.reduce_mean(x, axis=-1, keepdims=True)
        x = _where(gray, tf.broadcast_to(g, tf.shape(x)), x)
    if solarize is not None:
        x = _where(solarize, tf.where(x >= 0.5, 1.0 - x, x), x)
    if autocontrast is not None:
        lo = tf.reduce_min(x, axis=[1, 2], keepdims=True)
        span = tf.reduce_max(x, axis=[1, 2], keepdims=True) - lo
        stretched = tf.where(span > 0, (x - lo) / tf.where(span > 0, span, 1.0), x)
        x = _where(autocontrast, stretched, x)
    return x


@tf.function(jit_compile=True, autograph=False)
def finish_pass(x: tf.Tensor, box: tf.Tensor | None = None, clip: bool = True) -> tf.Tensor:
    """Zero one rectangle per image, then clip to [0, 1], in one pass.

    ``box`` is float (n, 5): top, left, height, width in pixels and 1.0 for an image drawn for
    the mask (0.0 leaves it whole); None masks nothing.
    """
    if box is not None:
        h, w = x.shape[1], x.shape[2]
        top, left, bh, bw, on = tf.unstack(box, axis=1)
        rows = tf.range(h, dtype=x.dtype)[None, :]
        cols = tf.range(w, dtype=x.dtype)[None, :]
        in_y = (rows >= top[:, None]) & (rows < (top + bh)[:, None]) & (on[:, None] > 0)
        in_x = (cols >= left[:, None]) & (cols < (left + bw)[:, None])
        inside = in_y[:, :, None, None] & in_x[:, None, :, None]
        x = tf.where(inside, tf.zeros_like(x), x)
    if clip:
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x
