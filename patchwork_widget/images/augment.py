"""Image augmentation shared by every trainer and by FixMatch (feature I3).

One vocabulary, ``augment=False | True | dict``, checked by :func:`validate_augment` and applied
by :func:`augment_batch` (a batch ``(N, H, W, C)``) or :func:`augment_image` (one ``(H, W, C)``
image). Both are pure TensorFlow ops: they run inside ``tf.data`` maps and inside a
``tf.function`` train step, and every random choice is drawn per image. Inputs and outputs are
float32 in [0, 1]. The meaning of every key, its default and what happens for channel counts
other than 3 are in ``docs/training.md`` and in :data:`AUGMENT_DOCS`.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

import tensorflow as tf

from patchwork_widget.images import augment_ops as ops

from patchwork_widget.options.augment import (  # noqa: F401 (the vocabulary, re-exported)
    AUGMENT_DOCS,
    AUGMENT_KEYS,
    DEFAULT_AUGMENT,
    EXACT_KEYS,
    AugmentParams,
    is_active,
    validate_augment,
)


# ---------------------------------------------------------------------------------------------
# Public ops.


@tf.autograph.experimental.do_not_convert
def augment_batch(images: Any, params: Union[bool, Mapping[str, Any], None],
                  clip: bool = True) -> tf.Tensor:
    """Augment a batch of images, each with its own random draws.

    Parameters
    ----------
    images : array-like or tf.Tensor
        float, shape ``(N, H, W, C)``, values in [0, 1] (clipped first). ``H``, ``W`` and
        ``C`` must be known statically; ``N`` may vary.
    params : bool or dict
        Anything :func:`validate_augment` accepts.
    clip : bool
        Clip the input to [0, 1] first. Pass False for images known to be in range (the
        pipeline's own), which saves one pass over the batch.

    Returns
    -------
    tf.Tensor
        float32, same shape, values in [0, 1].

    Notes
    -----
    Order: zoom_scale, center_zoom_scale, shear, flips, rot90; jitter, brightness, contrast,
    saturation, hue, drop_color, solarize, autocontrast; gaussian_blur, sobel, jpeg_degrade,
    gaussian_noise; mask. Saturation, hue and the jitter's saturation/hue parts need 3
    channels and are skipped otherwise; ``jpeg_degrade`` runs on 1 and 3 channels only;
    ``drop_color`` uses luminance for RGB, the channel mean for other counts and does nothing to
    a single channel. Colour jitter and random resized crops follow SimCLR (Chen et al. 2020,
    https://arxiv.org/abs/2002.05709); the rectangle mask is Cutout (DeVries and Taylor 2017).
    """
    p = validate_augment(params)
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if clip:
        x = ops.clip01(x)
    if x.shape.rank != 4:
        raise ValueError(f"augment_batch needs a batch (N, H, W, C); got shape {x.shape}")
    h, w, c = x.shape[1:]
    if h is None or w is None or c is None:
        raise ValueError(
            f"augment_batch needs static height, width and channels; got shape {x.shape} "
            "(resize to a fixed imshape first)"
        )
    if not is_active(p):
        return x
    n = tf.shape(x)[0]
    rgb = c == 3

    if p["zoom_scale"]:
        x = ops.resized_crop(x, n, p["zoom_scale"], centred=False, shape=(h, w, c))
    if p["center_zoom_scale"]:
        x = ops.resized_crop(x, n, p["center_zoom_scale"], centred=True, shape=(h, w, c))
    if p["shear"]:
        x = ops.shear(x, n, p["shear"])
    if p["flip_left_right"] or p["flip_up_down"] or p["rot90"]:
        x = ops.dihedral(x, n, (h, w, c), p["flip_left_right"], p["flip_up_down"], p["rot90"])

    if p["jitter"]:
        x = ops.jitter(x, n, p["jitter"], rgb)
    if p["brightness_delta"]:
        d = p["brightness_delta"]
        x = ops.clip01(x + ops.b4(ops.uniform(n, -d, d)))
    if p["contrast_delta"]:
        d = p["contrast_delta"]
        x = ops.contrast(x, ops.uniform(n, 1 - d, 1 + d))
    if p["saturation_delta"] and rgb:
        d = p["saturation_delta"]
        x = ops.saturation(x, ops.uniform(n, 1 - d, 1 + d))
    if p["hue_delta"] and rgb:
        d = p["hue_delta"]
        x = ops.hue(x, ops.uniform(n, -d, d))
    if p["drop_color"] and c > 1:
        x = ops.apply_some(x, ops.coin(n, p["drop_color"]), lambda t, _: ops.grayscale(t, c))
    if p["solarize"]:
        x = ops.apply_some(x, ops.coin(n, p["solarize"]),
                           lambda t, _: tf.where(t >= 0.5, 1 - t, t))
    if p["autocontrast"]:
        x = ops.apply_some(x, ops.coin(n, p["autocontrast"]),
                           lambda t, _: ops.autocontrast(t))

    if p["gaussian_blur"]:
        x = ops.apply_some(x, ops.coin(n, p["gaussian_blur"]),
                           lambda t, _: ops.blur(t, (h, w, c)))
    if p["sobel_prob"]:
        x = ops.apply_some(x, ops.coin(n, p["sobel_prob"]), lambda t, _: ops.sobel(t))
    if p["jpeg_degrade"] and c in (1, 3):
        x = ops.apply_some(x, ops.coin(n, p["jpeg_degrade"]), lambda t, _: ops.jpeg(t))
    if p["gaussian_noise"]:
        x = ops.apply_some(x, ops.coin(n, p["gaussian_noise"]), lambda t, _: ops.noise(t))
    if p["mask"]:
        x = ops.mask_rectangle(x, n, p["mask"])
    if any(v for k, v in p.items() if k not in EXACT_KEYS):
        x = ops.clip01(x)  # interpolation and noise may step an ulp (or more) outside [0, 1]
    return tf.ensure_shape(x, [None, h, w, c])


def augment_image(image: Any, params: Union[bool, Mapping[str, Any], None]) -> tf.Tensor:
    """Augment one image ``(H, W, C)``; see :func:`augment_batch` for every detail."""
    x = tf.convert_to_tensor(image)
    if x.shape.rank != 3:
        raise ValueError(f"augment_image needs one image (H, W, C); got shape {x.shape}")
    return augment_batch(x[None], params)[0]
