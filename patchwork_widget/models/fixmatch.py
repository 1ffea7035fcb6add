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

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Tuple, Union

import tensorflow as tf

from patchwork_widget.images.augment import validate_augment
from patchwork_widget.models._fields import check_fields

AugmentOption = Union[bool, Dict[str, Any]]

WEAK_AUGMENT: Dict[str, Any] = {"flip_left_right": True, "flip_up_down": True, "rot90": True}


@dataclass(frozen=True)
class FixMatchOptions:
    """Semi-supervised options (the Model tab).

    Attributes
    ----------
    lam : float
        Weight of the unlabelled loss (``lambda``); 0 disables FixMatch.
    tau : float
        Confidence threshold in (0.5, 1].
    mu : int
        Unlabelled batch size = ``mu * batch_size``.
    weak_aug, strong_aug : bool or dict
        Augmentations (:func:`~patchwork_widget.images.augment.validate_augment`) of the two
        views when training on images. ``strong_aug=True`` means the documented defaults.
    feature_dropout, feature_noise : float
        The strong view on pre-extracted features (see module docstring).
    """

    lam: float = 0.0
    tau: float = 0.95
    mu: int = 4
    weak_aug: AugmentOption = field(default_factory=lambda: dict(WEAK_AUGMENT))
    strong_aug: AugmentOption = True
    feature_dropout: float = 0.3
    feature_noise: float = 0.1

    def __post_init__(self) -> None:
        def number(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
            ok = ok and (lo < v if lo_open else lo <= v) and v <= hi
            if not ok:
                interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
                raise ValueError(f"fixmatch {name} must be a number in {interval}; got {v!r}")

        number("lam", 0.0, float("inf"))
        number("tau", 0.5, 1.0, lo_open=True)
        number("feature_dropout", 0.0, 0.95)
        number("feature_noise", 0.0, 10.0)
        if isinstance(self.mu, bool) or not isinstance(self.mu, numbers.Integral) or self.mu < 1:
            raise ValueError(f"fixmatch mu must be an int >= 1; got {self.mu!r}")
        validate_augment(self.weak_aug)
        validate_augment(self.strong_aug)

    @property
    def enabled(self) -> bool:
        return self.lam > 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FixMatchOptions":
        d = dict(d)
        if "lambda" in d:  # the reference's name
            d["lam"] = d.pop("lambda")
        check_fields(cls, d, "fixmatch", hint=" (or 'lambda' for lam)")
        return cls(**d)


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
        Element-wise loss ``(target, pred) -> (N, C)``, e.g. ``LossOptions(...).elements()``.

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
