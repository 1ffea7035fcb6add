"""The pretrained feature extractors known by name (TF-free): one registry, with each
backbone's feature size and input size, and the choice of one (feature I5).

:func:`patchwork_widget.images.backbones.build_backbone` builds them (Keras); this module only
describes them, so names can be checked, listed and documented without importing TensorFlow.
Every backbone takes RGB images scaled to [0, 1] (what the project's image reader gives), does
its own preprocessing inside the model and ends in global average pooling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from patchwork_widget.options.checks import check_shape, shown

__all__ = ["BACKBONES", "Backbone", "BackboneInfo", "WEIGHTS", "backbone_names",
           "is_backbone_name", "parse_backbone"]

WEIGHTS = ("imagenet", None)
"""The allowed ``weights``: ImageNet (downloaded once into Keras' cache) or random (tests)."""


@dataclass(frozen=True)
class BackboneInfo:
    """One named backbone.

    Attributes
    ----------
    application : str
        The ``keras.applications`` constructor.
    feature_size : int
        Length of the pooled feature vector.
    input_size : int
        The side of the images it was trained on (the default extraction size).
    min_input_size : int
        The smallest side Keras builds it at (random weights).
    preprocessing : str
        ``"in_model"`` when the Keras application rescales and normalises its [0, 255] input
        itself, ``"caffe"`` when ``keras.applications.resnet50.preprocess_input`` is added
        (RGB to BGR, ImageNet mean subtracted).
    reference : str
        The paper.
    """

    application: str
    feature_size: int
    input_size: int
    min_input_size: int
    preprocessing: str
    reference: str


_MOBILENET_V3 = "Howard et al. 2019, Searching for MobileNetV3"
_EFFICIENTNET = "Tan and Le 2019, EfficientNet: rethinking model scaling for CNNs"

BACKBONES: Dict[str, BackboneInfo] = {
    "mobilenet_v3_small": BackboneInfo("MobileNetV3Small", 576, 224, 32, "in_model",
                                       _MOBILENET_V3),
    "mobilenet_v3_large": BackboneInfo("MobileNetV3Large", 960, 224, 32, "in_model",
                                       _MOBILENET_V3),
    "efficientnet_b0": BackboneInfo("EfficientNetB0", 1280, 224, 32, "in_model", _EFFICIENTNET),
    "efficientnet_b1": BackboneInfo("EfficientNetB1", 1280, 240, 32, "in_model", _EFFICIENTNET),
    "efficientnet_b2": BackboneInfo("EfficientNetB2", 1408, 260, 32, "in_model", _EFFICIENTNET),
    "efficientnet_b3": BackboneInfo("EfficientNetB3", 1536, 300, 32, "in_model", _EFFICIENTNET),
    "resnet50": BackboneInfo("ResNet50", 2048, 224, 32, "caffe",
                             "He et al. 2016, Deep residual learning for image recognition"),
    "convnext_tiny": BackboneInfo("ConvNeXtTiny", 768, 224, 32, "in_model",
                                  "Liu et al. 2022, A ConvNet for the 2020s"),
}


def backbone_names() -> list[str]:
    """The known names, in registry order."""
    return list(BACKBONES)


def _normalised(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_backbone_name(value: Any) -> bool:
    """True for a string naming a registered backbone (case and ``-``/``_`` ignored)."""
    return isinstance(value, str) and _normalised(value) in BACKBONES


@dataclass(frozen=True)
class Backbone:
    """A named pretrained backbone, as a feature extractor choice.

    Parameters
    ----------
    name : str
        One of :data:`BACKBONES` (``"mobilenet_v3_small"``, ``"efficientnet_b0"``, ...).
    weights : {"imagenet", None}
        ImageNet weights (downloaded through Keras' own cache at first use) or random weights
        (no download: for tests and pipeline checks).
    image_size : (int, int), optional
        Height and width images are resized to before extraction; default the backbone's own
        ``input_size``. At least ``min_input_size`` on each side.
    """

    name: str
    weights: Optional[str] = "imagenet"
    image_size: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not is_backbone_name(self.name):
            raise ValueError(f"Backbone name must be one of {', '.join(BACKBONES)}; "
                             f"got {shown(self.name)}")
        object.__setattr__(self, "name", _normalised(self.name))
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be 'imagenet' or None (random weights); "
                             f"got {shown(self.weights)}")
        if self.image_size is not None:
            size = check_shape("image_size", self.image_size)
            low = self.info.min_input_size
            if min(size) < low:
                raise ValueError(f"image_size of {self.name} must be at least {low} on each "
                                 f"side; got {size}")
            object.__setattr__(self, "image_size", size)

    @property
    def info(self) -> BackboneInfo:
        return BACKBONES[self.name]

    @property
    def size(self) -> Tuple[int, int]:
        """The extraction image size: ``image_size`` or the backbone's ``input_size``."""
        side = self.info.input_size
        return self.image_size if self.image_size is not None else (side, side)


def parse_backbone(value: Any, name: str = "feature_extractor") -> Optional[Backbone]:
    """``value`` as a :class:`Backbone` when it is one or names one; None for a path or a
    model. A string that is neither a known name nor an existing file or folder is refused,
    listing the known names."""
    if isinstance(value, Backbone):
        return value
    if is_backbone_name(value):
        return Backbone(value)
    if isinstance(value, (str, os.PathLike)) and not os.path.exists(value):
        raise ValueError(
            f"{name} {os.fspath(value)!r} is neither a known backbone nor an existing file: "
            f"use one of {', '.join(BACKBONES)}, a saved Keras model (.keras) or a model object")
    return None
