"""Run records of the feature trainers (feature F3).

``config.yaml`` with every hyperparameter, TensorBoard HPARAMS, projector embeddings with
sprites, first-layer kernel images, nearest-neighbour query figures, and optional MLflow
tracking. Images are built with NumPy and Pillow (no plotting library needed).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from patchwork_widget.models.io import CONFIG_FILE, write_config

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "HPARAM_METRICS",
    "import_mlflow",
    "kernel_image",
    "query_figure",
    "save_projections",
    "scalar_hparams",
    "write_config",
    "write_hparams",
]

# Metrics the HPARAMS dashboard correlates with the hyperparameters.
HPARAM_METRICS = ("linear_classification_accuracy", "rotation_classification_accuracy",
                  "alignment", "uniformity", "test_loss")


def scalar_hparams(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Flatten ``config`` to ``{name: bool | int | float | str}`` for HPARAMS and MLflow.

    Nested mappings become ``outer.inner``; sequences become strings; None is left out.
    """
    out: Dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in scalar_hparams(value).items()})
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, np.generic):
            out[key] = value.item()
        elif isinstance(value, (list, tuple)):
            out[key] = str(list(value))
    return out


def write_hparams(writer: tf.summary.SummaryWriter, config: Mapping[str, Any],
                  trial_id: str) -> bool:
    """Record the hyperparameters for TensorBoard's HPARAMS dashboard.

    Needs the ``tensorboard`` package; without it a warning is logged and False returned.
    """
    try:
        from tensorboard.plugins.hparams import api as hp
    except ImportError:
        logger.warning("tensorboard is not installed, so no HPARAMS record was written; "
                       "`pip install tensorboard` to get one")
        return False
    values = scalar_hparams(config)
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in values],
                          metrics=[hp.Metric(m) for m in HPARAM_METRICS])
        hp.hparams(values, trial_id=trial_id)
    writer.flush()
    return True


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] to uint8 RGB (first channel repeated, or first three)."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    if images.shape[-1] == 1 or images.shape[-1] == 2:
        images = np.repeat(images[..., :1], 3, axis=-1)
    return np.round(images[..., :3] * 255).astype(np.uint8)


def save_projections(
    logdir: str, embeddings: np.ndarray, images: Optional[np.ndarray] = None,
    metadata: Optional[Sequence[Any]] = None, sprite_size: int = 32,
    name: str = "embedding",
) -> str:
    """Write embeddings for TensorBoard's projector into ``logdir``.

    Writes the ``(N, d)`` embeddings to ``tensors.tsv``, ``metadata.tsv`` (one label a
    line), ``sprite.png`` (thumbnails of ``images`` in a square grid, at most 8192 pixels a
    side as the projector requires) and ``projector_config.pbtxt`` tying them together.
    Returns the config's path.
    """
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (N, d); got shape {embeddings.shape}")
    n = len(embeddings)
    os.makedirs(logdir, exist_ok=True)
    np.savetxt(os.path.join(logdir, "tensors.tsv"), embeddings, delimiter="\t", fmt="%.6g")
    lines = [f'embeddings {{\n  tensor_name: "{name}"\n  tensor_path: "tensors.tsv"']
    if metadata is not None:
        if len(metadata) != n:
            raise ValueError(f"metadata has {len(metadata)} entries for {n} embeddings")
        with open(os.path.join(logdir, "metadata.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{str(m).replace(chr(9), ' ').replace(chr(10), ' ')}\n"
                         for m in metadata)
        lines.append('  metadata_path: "metadata.tsv"')
    if images is not None:
        if len(images) != n:
            raise ValueError(f"images has {len(images)} entries for {n} embeddings")
        side = int(np.ceil(np.sqrt(n)))
        size = max(4, min(int(sprite_size), 8192 // max(side, 1)))
        thumbs = [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
                  for im in _to_uint8(images)]
        grid = np.zeros((side * size, side * size, 3), np.uint8)
        for i, t in enumerate(thumbs):
            r, c = divmod(i, side)
            grid[r * size:(r + 1) * size, c * size:(c + 1) * size] = t
        Image.fromarray(grid).save(os.path.join(logdir, "sprite.png"))
        lines.append(f'  sprite {{\n    image_path: "sprite.png"\n'
                     f'    single_image_dim: {size}\n    single_image_dim: {size}\n  }}')
    path = os.path.join(logdir, "projector_config.pbtxt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n}\n")
    return path


def first_conv_kernel(model: keras.Model) -> np.ndarray:
    """The kernel ``(kh, kw, in, out)`` of the first 2-D convolution in ``model`` (searching
    nested models in order)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return keras.ops.convert_to_numpy(layer.kernel)
        if isinstance(layer, keras.Model):
            try:
                return first_conv_kernel(layer)
            except ValueError:
                continue
    raise ValueError(f"model {model.name!r} has no Conv2D layer")


def kernel_image(model: keras.Model, scale: int = 4) -> np.ndarray:
    """First-layer kernels as one RGB image ``(1, H, W, 3)`` uint8 for ``tf.summary.image``.

    Each kernel is min-max scaled on its own and enlarged ``scale`` times; kernels of 3-channel
    inputs are shown in colour, others as the mean over input channels. Healthy networks show
    a few edge and colour-blob detectors.
    """
    k = first_conv_kernel(model)
    k = k[:, :, :3, :] if k.shape[2] == 3 else k.mean(axis=2, keepdims=True)
    lo = k.min(axis=(0, 1, 2), keepdims=True)
    span = np.maximum(k.max(axis=(0, 1, 2), keepdims=True) - lo, 1e-12)
    k = np.transpose((k - lo) / span, (3, 0, 1, 2))          # (out, kh, kw, c)
    k = np.repeat(np.repeat(k, scale, axis=1), scale, axis=2)
    n, h, w, _ = k.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, 3), np.float32)
    tiles = _to_uint8(k).astype(np.float32) / 255
    for i in range(n):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = tiles[i]
    return _to_uint8(grid[None])


def query_figure(
    features: np.ndarray, images: np.ndarray, labels: Sequence[Any], n_neighbours: int = 5,
    border: int = 2,
) -> np.ndarray:
    """Nearest-neighbour query figure as an RGB image ``(1, H, W, 3)`` uint8.

    One row per class: the first image of that class (framed in blue), then its
    ``n_neighbours`` most cosine-similar other images, framed green when they share the
    query's label and red otherwise. Rows of red frames point at shortcuts the network learned.
    """
    feats = np.asarray(features, np.float64)
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    tiles = _to_uint8(images)
    h, w = tiles.shape[1:3]
    classes = sorted(np.unique(labels).tolist(), key=str)
    k = min(n_neighbours, len(labels) - 1)
    cell_h, cell_w = h + 2 * border, w + 2 * border
    fig = np.full((len(classes) * cell_h, (k + 1) * cell_w, 3), 255, np.uint8)
    colours = {"query": (40, 90, 220), True: (30, 170, 60), False: (220, 40, 40)}
    for r, cls in enumerate(classes):
        q = int(np.flatnonzero(labels == cls)[0])
        sims = feats @ feats[q]
        sims[q] = -np.inf
        picks: List[int] = [q] + np.argsort(-sims)[:k].tolist()
        for c, idx in enumerate(picks):
            key = "query" if c == 0 else bool(labels[idx] == cls)
            y, x = r * cell_h, c * cell_w
            fig[y:y + cell_h, x:x + cell_w] = colours[key]
            fig[y + border:y + border + h, x + border:x + border + w] = tiles[idx]
    return fig[None]


def import_mlflow() -> Any:
    """Import ``mlflow`` or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module("mlflow")
    except ImportError as e:
        raise ImportError(
            "track_with_mlflow() needs the optional package mlflow: `pip install mlflow`"
        ) from e
