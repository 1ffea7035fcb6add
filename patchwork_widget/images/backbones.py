"""Pretrained backbones as frozen feature extractors, by name or from a file (feature I5).

:func:`resolve_extractor` turns what a user passes as ``feature_extractor`` (a name of
:data:`~patchwork_widget.options.backbones.BACKBONES`, a :class:`~.options.backbones.Backbone`,
or the path of a saved ``.keras`` model) into an :class:`~.images.feature_cache.Extractor`: a
frozen Keras model taking RGB batches in [0, 1], the image size it reads, and the identity the
project's feature cache is keyed on. ImageNet weights come through Keras' own download cache
(``~/.keras/models``, or ``$KERAS_HOME/models``) at first use; an offline first use raises
:class:`WeightsUnavailableError` saying which file to fetch and where to put it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Optional, Tuple

from patchwork_widget.images.extractor import Extractor
from patchwork_widget.options.backbones import Backbone, parse_backbone
from patchwork_widget.options.checks import check_shape, shown

logger = logging.getLogger(__name__)

__all__ = ["WeightsUnavailableError", "build_backbone", "resolve_extractor"]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are not in Keras' cache and could not be downloaded."""


def _keras_cache() -> Path:
    from keras.src.backend import config  # Keras keeps its home folder only here

    return Path(os.path.expanduser(config.keras_home())) / "models"


def build_backbone(backbone: Backbone) -> Any:
    """The frozen Keras model of ``backbone``: ``(n, h, w, 3)`` in [0, 1] to
    ``(n, feature_size)`` (the backbone's own preprocessing, then global average pooling).

    Raises
    ------
    WeightsUnavailableError
        When ImageNet weights are not cached and cannot be downloaded.
    """
    import keras

    info = backbone.info
    h, w = backbone.size
    constructor = getattr(keras.applications, info.application)
    try:
        base = constructor(include_top=False, weights=backbone.weights,
                           input_shape=(h, w, 3), pooling="avg")
    except Exception as e:  # Keras' get_file raises a bare Exception when a download fails
        match = re.search(r"URL fetch failure on (\S+?):", str(e))
        if match is None:
            raise
        url = match.group(1)
        target = _keras_cache() / os.path.basename(url)
        raise WeightsUnavailableError(
            f"the ImageNet weights of {backbone.name} are not in Keras' cache and could not be "
            f"downloaded ({e}). On a machine with internet access, download {url} and copy it "
            f"to {target} (Keras' cache folder; set KERAS_HOME to use another), or pass "
            f"Backbone({backbone.name!r}, weights=None) for random weights") from e
    base.trainable = False
    inputs = keras.Input((h, w, 3), name="image")
    x = inputs * 255.0  # the applications take [0, 255]
    if info.preprocessing == "caffe":
        x = keras.applications.resnet50.preprocess_input(x)
    model = keras.Model(inputs, base(x, training=False), name=f"{backbone.name}_features")
    model.trainable = False
    return model


def _weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for w in model.weights:
        h.update(w.path.encode() + b"\0")
        h.update(memoryview(w.numpy()).cast("B"))
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_extractor(value: Any, name: str = "feature_extractor",
                      image_size: Optional[Tuple[int, int]] = None) -> Extractor:
    """What ``value`` names, as an :class:`~patchwork_widget.images.feature_cache.Extractor`.

    Parameters
    ----------
    value : str, Backbone, path or Extractor
        A backbone name (``"mobilenet_v3_small"``, ...), a :class:`Backbone` (to choose
        ``weights`` or ``image_size``), the path of a ``.keras`` model mapping ``[0, 1]`` RGB
        images to features (its input size is the image size), or an ``Extractor`` (returned
        as is).
    name : str
        The argument's name, for messages.
    image_size : (int, int), optional
        The size to read images at, for a ``.keras`` model that takes images of any size
        (required then) or a backbone name (default its input size).

    Returns
    -------
    Extractor
        The model, its image size and its identity: the backbone's name, image size and a
        digest of its weights, or the ``.keras`` file's digest.

    Raises
    ------
    ValueError
        For an unknown name (the known ones are listed) or a file that is not a ``.keras``
        model with a fixed input size.
    WeightsUnavailableError
        When ImageNet weights cannot be downloaded.
    """
    if isinstance(value, Extractor):
        return value
    backbone = parse_backbone(value, name)
    if backbone is not None and image_size is not None and not isinstance(value, Backbone):
        backbone = Backbone(backbone.name, backbone.weights, image_size)
    if backbone is not None:
        model = build_backbone(backbone)
        h, w = backbone.size
        identity = (f"backbone:{backbone.name};weights={backbone.weights};size={h}x{w};"
                    f"sha256={_weights_digest(model)}")
        return Extractor(model, identity, backbone.size, description=backbone.name)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a backbone name, a Backbone, the path of a .keras "
                        f"model or an Extractor; got {shown(value)}")
    path = Path(value)
    if path.suffix != ".keras" or not path.is_file():
        raise ValueError(f"{name} {os.fspath(value)!r} is not a .keras model file; pass a "
                         "saved Keras model (model.save('extractor.keras')) or a backbone name")
    import keras

    model = keras.saving.load_model(os.fspath(path), compile=False)
    shape = tuple(model.inputs[0].shape[1:3])
    if image_size is not None:
        shape = check_shape("image_size", image_size)
    elif None in shape:
        raise ValueError(f"{name} {os.fspath(value)!r} takes images of any size: give the "
                         "image size to read (image_size, --imshape H W)")
    model.trainable = False
    return Extractor(model, f"keras-file:sha256={_file_digest(path)}",
                     (int(shape[0]), int(shape[1])), description=path.name)
