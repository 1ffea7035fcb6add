"""DetCon's segments (feature F7): Felzenszwalb segmentation or a grid, sampled per image, and
augmented together with the image so each mask stays on the pixels it covers.

:func:`sample_segments` works on one NumPy image; :func:`augment_with_masks` applies one
geometric draw to images and masks alike; :func:`detcon_dataset` runs both inside ``tf.data``
(the segmentation in parallel ``numpy_function`` calls, ahead of the train step).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from skimage.segmentation import felzenszwalb

from patchwork_widget.feature.data import TrainingData
from patchwork_widget.images.augment import augment_batch, validate_augment
from patchwork_widget.images.pipeline import AUTOTUNE, dataset

__all__ = ["GEOMETRIC_KEYS", "MIN_FRACTION", "augment_with_masks", "detcon_dataset",
           "sample_segments", "segment_present", "segment_labels"]

# Keys that move pixels: applied to the image and its masks with the same draw.
GEOMETRIC_KEYS = ("zoom_scale", "center_zoom_scale", "shear", "flip_left_right",
                  "flip_up_down", "rot90")
# A segment covering less than this share of a view counts as cropped away.
MIN_FRACTION = 1e-3


def segment_labels(image: np.ndarray, scale: float, num_samples: int) -> np.ndarray:
    """An ``(H, W)`` int map of segments: Felzenszwalb's graph segmentation at ``scale``
    (also its minimum segment size, in pixels) for ``scale > 0``; for ``scale == 0`` a grid of
    ``ceil(sqrt(num_samples))`` squared cells."""
    h, w = image.shape[:2]
    if scale == 0:
        g = math.ceil(math.sqrt(num_samples))
        rows = np.minimum(np.arange(h) * g // h, g - 1)
        cols = np.minimum(np.arange(w) * g // w, g - 1)
        return rows[:, None] * g + cols[None, :]
    channel_axis = -1 if image.ndim == 3 and image.shape[-1] > 1 else None
    img = image if channel_axis is not None else image.reshape(h, w)
    return felzenszwalb(img, scale=scale, min_size=max(int(scale), 1),
                        channel_axis=channel_axis)


def sample_segments(image: np.ndarray, mean_scale: float, num_samples: int,
                    rng: np.random.Generator) -> Tuple[np.ndarray, bool]:
    """Segment ``image`` ``(H, W, C)`` and draw ``num_samples`` segments, each with
    probability proportional to its area (a bias to large segments), without replacement when
    there are enough segments and with replacement otherwise.

    The scale is drawn uniformly in ``[mean_scale / 2, 1.5 * mean_scale]``; ``mean_scale=0``
    gives a grid.

    Returns
    -------
    (masks, replaced)
        ``(H, W, num_samples)`` float32 one-hot masks, and whether sampling had to be with
        replacement.
    """
    scale = float(rng.uniform(0.5 * mean_scale, 1.5 * mean_scale)) if mean_scale else 0.0
    seg = segment_labels(image, scale, num_samples)
    ids, counts = np.unique(seg, return_counts=True)
    replaced = len(ids) < num_samples
    chosen = rng.choice(ids, size=num_samples, replace=replaced, p=counts / counts.sum())
    return (seg[:, :, None] == chosen[None, None, :]).astype(np.float32), replaced


def segment_present(masks: tf.Tensor) -> tf.Tensor:
    """``(N, S)`` bool: whether each of the ``S`` masks of ``(N, H, W, S)`` still covers at
    least :data:`MIN_FRACTION` of its view."""
    return tf.reduce_mean(masks, axis=[1, 2]) >= MIN_FRACTION


def augment_with_masks(images: tf.Tensor, masks: tf.Tensor,
                       params: Mapping[str, Any]) -> Tuple[tf.Tensor, tf.Tensor]:
    """Augment ``images`` ``(N, H, W, C)`` and move ``masks`` ``(N, H, W, S)`` with them.

    The geometric keys (:data:`GEOMETRIC_KEYS`) run once on the images and masks stacked on
    the channel axis, so both see the same crop, shear, flips and turn; the other keys then run
    on the images alone. The masks come back interpolated (soft at the edges of a zoom)."""
    p = validate_augment(params)
    c = images.shape[-1]
    geometric = {k: v for k, v in p.items() if k in GEOMETRIC_KEYS}
    both = augment_batch(tf.concat([images, masks], axis=-1), geometric, clip=False)
    rest = {k: v for k, v in p.items() if k not in GEOMETRIC_KEYS}
    return augment_batch(both[..., :c], rest, clip=False), both[..., c:]


def detcon_dataset(
    data: TrainingData,
    augment: Mapping[str, Any],
    mean_scale: float,
    num_samples: int,
    imshape: Tuple[int, int],
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    batch_size: int = 64,
    num_parallel_calls: int = AUTOTUNE,
    shuffle: bool = True,
    cache: Any = False,
    with_stats: bool = False,
) -> Tuple[tf.data.Dataset, int]:
    """Batches ``((view1, masks1), (view2, masks2))`` of DetCon's input, and their number.

    Each image is segmented once (:func:`sample_segments`, seeded from TensorFlow's random
    state, so ``keras.utils.set_random_seed`` repeats it) and augmented twice with its masks.
    With ``with_stats`` each element also holds ``replaced`` ``(B,)``: which images had to
    sample their segments with replacement.
    """
    if isinstance(data, tf.data.Dataset):
        raise ValueError("DetCon needs trainingdata as image paths or an image array")
    ds, steps = dataset(data, imshape=imshape, num_channels=num_channels, norm=norm,
                        single_channel=single_channel, batch_size=batch_size, augment=False,
                        shuffle=shuffle, num_parallel_calls=num_parallel_calls, cache=cache,
                        drop_remainder=True)
    if steps == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the training set "
                         f"({len(data)} images); lower batch_size or give more images")
    h, w = imshape

    def segment_batch(images: np.ndarray, seed: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed))
        out = [sample_segments(img, mean_scale, num_samples, rng) for img in images]
        return (np.stack([m for m, _ in out]), np.array([r for _, r in out], dtype=bool))

    @tf.autograph.experimental.do_not_convert
    def segment(images: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        seed = tf.random.uniform([], maxval=2**62, dtype=tf.int64)
        masks, replaced = tf.numpy_function(segment_batch, [images, seed],
                                            [tf.float32, tf.bool], stateful=True)
        masks = tf.ensure_shape(masks, [None, h, w, num_samples])
        return images, masks, tf.ensure_shape(replaced, [None])

    @tf.autograph.experimental.do_not_convert
    def views(images: tf.Tensor, masks: tf.Tensor, replaced: tf.Tensor) -> Tuple[Any, ...]:
        pairs = (augment_with_masks(images, masks, augment),
                 augment_with_masks(images, masks, augment))
        return pairs + (replaced,) if with_stats else pairs

    ds = ds.map(segment, num_parallel_calls=num_parallel_calls)
    ds = ds.map(views, num_parallel_calls=num_parallel_calls)
    return ds.prefetch(AUTOTUNE), steps
