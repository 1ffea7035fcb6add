"""The augmentation vocabulary (feature I3) as an option: its keys, ranges and defaults, and
the check of ``augment=False | True | dict``. TF-free, so options can be checked before
TensorFlow loads; :mod:`patchwork_widget.images.augment` applies them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Mapping, Tuple, Union

import numpy as np

__all__ = ["AUGMENT_DOCS", "AUGMENT_KEYS", "DEFAULT_AUGMENT", "EXACT_KEYS", "AugmentParams",
           "is_active", "validate_augment"]

AugmentParams = Dict[str, Union[bool, float]]

# key -> (kind, lower bound, upper bound, what it does). kind "bool": True/False; "prob": a
# probability per image; "value": a strength. A value of False, None or 0 switches a key off.
SPECS: Dict[str, Tuple[str, float, float, str]] = {
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
AUGMENT_KEYS: Tuple[str, ...] = tuple(SPECS)
EXACT_KEYS = ("flip_left_right", "flip_up_down", "rot90")  # pixel moves only: no clip needed
AUGMENT_DOCS: Dict[str, str] = {k: v[3] for k, v in SPECS.items()}

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
    unknown = sorted(str(k) for k in given if k not in SPECS)
    if unknown:
        raise ValueError(
            f"unknown augmentation key(s) {unknown}; valid keys are: {', '.join(AUGMENT_KEYS)}"
        )
    out: AugmentParams = {}
    for key, (kind, lo, hi, _) in SPECS.items():
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
