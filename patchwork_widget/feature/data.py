"""Two augmented views per image, on top of the shared input pipeline (I2) and augmentation (I3).

``patchwork_widget.images.pipeline.dataset`` yields one (optionally augmented) batch per step;
contrastive trainers need two independent augmentations of the same images, so
:func:`pair_dataset` decodes each batch once, un-augmented, and applies
``augment_batch`` twice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from patchwork_widget.images.augment import augment_batch
from patchwork_widget.images.pipeline import AUTOTUNE, dataset

__all__ = ["TrainingData", "file_list", "pair_dataset"]

TrainingData = Sequence[str | os.PathLike[str]] | np.ndarray | tf.data.Dataset


def file_list(data: Any, name: str) -> list | None:
    """``data`` as a list of path strings, or None when it is not a sequence of paths."""
    if isinstance(data, (str, bytes, os.PathLike, tf.data.Dataset, Mapping)):
        return None
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return None
    items = list(data)
    if not items:
        raise ValueError(f"{name} is empty")
    if not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise ValueError(f"{name} must be a list of image paths, an image array or a "
                         f"tf.data.Dataset of images; got a list holding "
                         f"{type(next(p for p in items if not isinstance(p, (str, os.PathLike))))}")
    return [os.fspath(p) for p in items]


def pair_dataset(
    data: TrainingData,
    augment: Mapping[str, Any],
    imshape: tuple[int, int],
    num_channels: int = 3,
    norm: float | None = None,
    single_channel: bool = False,
    batch_size: int = 64,
    num_parallel_calls: int = AUTOTUNE,
    shuffle: bool = True,
    cache: bool | str = False,
) -> tuple[tf.data.Dataset, int | None]:
    """Batches of ``(view1, view2)``, two independent augmentations of the same images.

    Parameters
    ----------
    data : list of paths, image array, or tf.data.Dataset
        Files or ``(N, H, W[, C])`` arrays go through
        :func:`patchwork_widget.images.pipeline.dataset`; a ``tf.data.Dataset`` must yield
        float images at ``imshape`` (clipped to [0, 1] once, before both views), one by one ``(H, W, C)`` or in batches
        ``(n, H, W, C)`` (they are re-batched to ``batch_size``).
    augment : dict
        Validated augmentation parameters (see ``validate_augment``).
    batch_size : int
        Global batch size; the last partial batch is dropped so every step (and every replica)
        sees the same number of images.

    Returns
    -------
    (tf.data.Dataset, int or None)
        The dataset and its number of batches per pass (None when a given dataset's length
        is unknown).
    """
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.shape.rank not in (3, 4):
            raise ValueError("a trainingdata Dataset must yield image tensors (H, W, C) or "
                             f"batches (n, H, W, C); its elements are {spec}")
        ds = data.unbatch() if spec.shape.rank == 4 else data
        ds = ds.map(lambda x: tf.ensure_shape(
            tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 1.0), (*imshape, num_channels)))
        ds = ds.batch(batch_size, drop_remainder=True)
        card = int(ds.cardinality())
        if card == tf.data.INFINITE_CARDINALITY:
            raise ValueError("the trainingdata Dataset is infinite; use .take(n) so an epoch "
                             "has an end")
        steps = None if card == tf.data.UNKNOWN_CARDINALITY else card
    else:
        ds, steps = dataset(data, imshape=imshape, num_channels=num_channels, norm=norm,
                            single_channel=single_channel, batch_size=batch_size,
                            augment=False, shuffle=shuffle, num_parallel_calls=num_parallel_calls,
                            cache=cache, drop_remainder=True)
    if steps == 0:
        n = len(data) if not isinstance(data, tf.data.Dataset) else "too few"
        raise ValueError(f"batch_size={batch_size} is larger than the training set ({n} images); "
                         "lower batch_size or give more images")
    # images are in [0, 1] here (the pipeline's, or clipped above): no clip per view
    ds = ds.map(lambda x: (augment_batch(x, augment, clip=False),
                           augment_batch(x, augment, clip=False)),
                num_parallel_calls=num_parallel_calls)
    return ds.prefetch(AUTOTUNE), steps
