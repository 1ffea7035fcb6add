"""Image augmentation shared by every trainer and by FixMatch (feature I3).

One vocabulary, ``augment=False | True | dict``, checked by :func:`validate_augment` and applied
by :func:`augment_batch` (a batch ``(N, H, W, C)``) or :func:`augment_image` (one ``(H, W, C)``
image). Both are pure TensorFlow ops: they run inside ``tf.data`` maps and inside a
``tf.function`` train step, and every random choice is drawn per image. Inputs and outputs are
float32 in [0, 1]. The meaning of every key, its default and what happens for channel counts
other than 3 are in ``docs/training.md`` and in :data:`AUGMENT_DOCS`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Mapping, Tuple, Union

import numpy as np
import tensorflow as tf

from patchwork_widget.images import augment_ops as ops

AugmentParams = Dict[str, Union[bool, float]]

# key -> (kind, lower bound, upper bound, what it does). kind "bool": True/False; "prob": a
# probability per image; "value": a strength. A value of False, None or 0 switches a key off.
_SPECS: Dict[str, Tuple[str, float, float, str]] = {
    "flip_left_right": ("bool", 0, 1, "mirror left-right with probability 1/2"),
    "flip_up_down": ("bool", 0, 1, "mirror top-bottom with probability 1/2"),
    "rot90": ("bool", 0, 1, "rotate by k*90 degrees, k uniform in 0..3 (0 or 2 if not square)"),
    "zoom_scale": ("value", 0, 1, "random resized crop: area fraction uniform in "
                   "[zoom_scale, 1], aspect ratio in [3/4, 4/3], resized back"),
    "center_zoom_scale": ("value", 0, 1, "centred crop of area fraction uniform in "
                          "[center_zoom_scale, 1], same aspect, resized back"),
    "jitter": ("value", 0, 2, "SimCLR colour jitter of this strength s with probability 0.8: "
               "brightness, contrast and saturation factors in [1-0.8s, 1+0.8s], hue shift in "
               "[-0.2s, 0.2s], in random order"),
    "brightness_delta": ("value", 0, 1, "add an offset uniform in [-d, d]"),
    "contrast_delta": ("value", 0, 1, "scale around the channel mean by a factor in [1-d, 1+d]"),
    "saturation_delta": ("value", 0, 1, "scale HSV saturation by a factor in [1-d, 1+d]"),
    "hue_delta": ("value", 0, 0.5, "shift HSV hue by an amount in [-d, d]"),
    "gaussian_blur": ("prob", 0, 1, "Gaussian blur, sigma uniform in [0.1, 2] pixels, kernel "
                      "~10% of the image side"),
    "gaussian_noise": ("prob", 0, 1, "add Gaussian noise, standard deviation uniform in "
                       "[0, 0.1]"),
    "drop_color": ("prob", 0, 1, "replace every channel by the luminance (RGB) or the "
                   "channel mean"),
    "sobel_prob": ("prob", 0, 1, "replace each channel by its Sobel gradient magnitude, "
                   "scaled so the image's maximum is 1"),
    "jpeg_degrade": ("prob", 0, 1, "JPEG-compress and decode at a quality uniform in 10..90"),
    "mask": ("prob", 0, 1, "set a random rectangle (10-50% of each side) to 0"),
    "shear": ("value", 0, 1, "shear both axes by factors uniform in [-s, s] about the centre, "
              "reflecting at the border"),
    "solarize": ("prob", 0, 1, "invert pixels >= 0.5 (x -> 1 - x)"),
    "autocontrast": ("prob", 0, 1, "stretch each channel's min..max to 0..1"),
}
AUGMENT_KEYS: Tuple[str, ...] = tuple(_SPECS)
_EXACT_KEYS = ("flip_left_right", "flip_up_down", "rot90")  # pixel moves only: no clip needed
AUGMENT_DOCS: Dict[str, str] = {k: v[3] for k, v in _SPECS.items()}

# ``augment=True``: the mix of the reference's SimCLR example; the other keys stay off.
DEFAULT_AUGMENT: Dict[str, Union[bool, float]] = {
    "flip_left_right": True,
    "flip_up_down": True,
    "rot90": True,
    "zoom_scale": 0.4,
    "brightness_delta": 0.2,
    "contrast_delta": 0.4,
    "saturation_delta": 0.1,
    "hue_delta": 0.1,
    "gaussian_blur": 0.25,
    "gaussian_noise": 0.2,
    "drop_color": 0.2,
    "sobel_prob": 0.15,
    "mask": 0.25,
}


def _off(value: Any) -> bool:
    return value is None or value is False or (
        isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        and value == 0
    )


def validate_augment(augment: Union[bool, Mapping[str, Any], None]) -> AugmentParams:
    """Check an ``augment`` option and return it with every key present.

    Parameters
    ----------
    augment : bool, dict or None
        False/None: no augmentation. True: :data:`DEFAULT_AUGMENT`. A dict: only the keys given
        are active; the others are off.

    Returns
    -------
    dict
        Every key of :data:`AUGMENT_KEYS`: booleans for the flips and ``rot90``, floats
        (0.0 = off) for the others.

    Raises
    ------
    ValueError
        For an unknown key (the message lists the valid ones) or a value out of its range.
    """
    if augment is None or augment is False:
        given: Mapping[str, Any] = {}
    elif augment is True:
        given = DEFAULT_AUGMENT
    elif isinstance(augment, Mapping):
        given = augment
    else:
        raise ValueError(
            f"augment must be False, True or a dict of augmentation parameters; got {augment!r}"
        )
    unknown = sorted(str(k) for k in given if k not in _SPECS)
    if unknown:
        raise ValueError(
            f"unknown augmentation key(s) {unknown}; valid keys are: {', '.join(AUGMENT_KEYS)}"
        )
    out: AugmentParams = {}
    for key, (kind, lo, hi, _) in _SPECS.items():
        value = given.get(key)
        if kind == "bool":
            if not (value is None or isinstance(value, (bool, np.bool_))):
                raise ValueError(f"augment[{key!r}] must be True or False; got {value!r}")
            out[key] = bool(value)
            continue
        if _off(value):
            out[key] = 0.0
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            what = "a probability" if kind == "prob" else "a number"
            raise ValueError(
                f"augment[{key!r}] must be {what} in [{lo}, {hi}] (0, False or None = off); "
                f"got {value!r}"
            )
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"augment[{key!r}] must be in [{lo}, {hi}]; got {value!r}")
        out[key] = float(value)
    return out


def is_active(params: AugmentParams) -> bool:
    """True when at least one key of validated ``params`` is switched on."""
    return any(bool(v) for v in params.values())


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
    if any(v for k, v in p.items() if k not in _EXACT_KEYS):
        x = ops.clip01(x)  # interpolation and noise may step an ulp (or more) outside [0, 1]
    return tf.ensure_shape(x, [None, h, w, c])


def augment_image(image: Any, params: Union[bool, Mapping[str, Any], None]) -> tf.Tensor:
    """Augment one image ``(H, W, C)``; see :func:`augment_batch` for every detail."""
    x = tf.convert_to_tensor(image)
    if x.shape.rank != 3:
        raise ValueError(f"augment_image needs one image (H, W, C); got shape {x.shape}")
    return augment_batch(x[None], params)[0]
