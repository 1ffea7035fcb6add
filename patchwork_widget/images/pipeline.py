"""The ``tf.data`` input pipeline over image files or in-memory arrays (feature I2).

:func:`dataset` returns ``(tf.data.Dataset, steps)`` the way the reference's loader does, ready
for Keras ``fit`` or a custom loop. Files are decoded by :mod:`.decode` (checked first by
:mod:`.guard`; 8-bit PNG and JPEG by TensorFlow's kernels, every other format through
``read_image``). By default a bad file is recorded in a
:class:`~patchwork_widget.images.guard.BadFiles` and skipped (FEATURES I1: a loop never stops
at one bad file).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import tensorflow as tf

from patchwork_widget.images.augment import augment_batch, is_active, validate_augment
from patchwork_widget.images.decode import (
    checked_image_loader,
    decoder_kinds,
    image_loader,
    kind_sniffer,
)
from patchwork_widget.images.guard import BadFiles, ReadLimits
from patchwork_widget.images.read import check_options, dtype_norm
from patchwork_widget.options.checks import check_bool, check_int, check_paths

__all__ = ["AUTOTUNE", "array_loader", "checked_image_loader", "dataset", "decoder_kinds",
           "image_loader"]

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

# Files whose fast-path checks run in one Python call (see decode.kind_sniffer)
SNIFF_CHUNK = 64

Files = Union[Sequence[Union[str, "os.PathLike[str]"]], np.ndarray]


def array_loader(
    images: np.ndarray,
    imshape: tuple[int, int],
    num_channels: int = 3,
    norm: float | None = 255,
    single_channel: bool = False,
) -> Callable[[tf.Tensor], tf.Tensor]:
    """Graph function converting one stored array image like ``read_image`` converts files."""
    opts = check_options(imshape, num_channels, norm, single_channel)
    if opts.imshape is None:
        raise ValueError("imshape is required for the tf.data pipeline: pass (height, width)")
    scale = opts.norm if opts.norm is not None else dtype_norm(images.dtype)
    c = images.shape[-1] if images.ndim == 4 else 1
    if opts.single_channel or c > opts.num_channels:
        keep = 1 if opts.single_channel else opts.num_channels
    elif c == 1 or c == opts.num_channels:
        keep = c
    else:
        raise ValueError(
            f"images have {c} channels, fewer than num_channels={opts.num_channels}; only "
            "1-channel images are repeated (pass single_channel=True to repeat the first one)"
        )
    h, w = opts.imshape

    @tf.autograph.experimental.do_not_convert
    def load(x: tf.Tensor) -> tf.Tensor:
        if x.shape.rank == 2:
            x = x[:, :, None]
        x = tf.cast(x[:, :, :keep], tf.float32) / scale
        x = tf.where(tf.math.is_nan(x), 0.0, tf.clip_by_value(x, 0.0, 1.0))
        if tuple(x.shape[:2]) != (h, w):
            x = tf.clip_by_value(tf.image.resize(x, (h, w), antialias=True), 0.0, 1.0)
        if keep < opts.num_channels:
            x = tf.tile(x, [1, 1, opts.num_channels])
        return tf.ensure_shape(x, (h, w, opts.num_channels))

    return load


@tf.autograph.experimental.do_not_convert
def _is_ok(x: tf.Tensor, ok: tf.Tensor, *y: tf.Tensor) -> tf.Tensor:
    return ok


@tf.autograph.experimental.do_not_convert
def _drop_ok(x: tf.Tensor, ok: tf.Tensor, *y: tf.Tensor) -> Any:
    return (x, *y) if y else x


def dataset(
    files: Files,
    ys: np.ndarray | None = None,
    imshape: tuple[int, int] = (256, 256),
    num_channels: int = 3,
    norm: float | None = None,
    batch_size: int = 64,
    augment: bool | Mapping[str, Any] | None = False,
    shuffle: bool = True,
    num_parallel_calls: int = AUTOTUNE,
    single_channel: bool = False,
    cache: bool | str = False,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
    repeat: bool = False,
    skip_errors: bool = True,
    bad_files: BadFiles | None = None,
    limits: ReadLimits | None = None,
) -> tuple[tf.data.Dataset, int]:
    """Build a batched, prefetched ``tf.data`` pipeline over image files or arrays.

    Parameters
    ----------
    files : list of paths, or np.ndarray
        Image files (any format of ``read_image``), or images in memory with shape
        ``(N, H, W)`` or ``(N, H, W, C)`` (integer or float; converted with ``norm`` like files).
    ys : np.ndarray, optional
        Targets, one row per image (e.g. ``(N, C)`` float labels with NaN for missing); the
        dataset then yields ``(images, ys)`` pairs.
    imshape, num_channels, norm, single_channel
        As in :func:`~patchwork_widget.images.read.read_image`; ``imshape`` is required.
    batch_size : int
        Images per batch.
    augment : bool or dict
        Augmentation of :mod:`patchwork_widget.images.augment`, applied per batch after
        decoding (and after the cache, so cached images are re-augmented every epoch).
    shuffle : bool
        Shuffle every pass. Without ``cache`` the file list is fully permuted before decoding;
        with ``cache`` decoded images pass through a buffer of ``shuffle_buffer`` images.
    num_parallel_calls : int
        Parallel decode and augment calls (``tf.data.AUTOTUNE`` by default).
    cache : bool or str
        Cache decoded images in memory (True) or in files with this prefix (str).
    shuffle_buffer : int
        Buffer size for shuffling after a cache.
    drop_remainder : bool
        Drop the last partial batch.
    repeat : bool
        Repeat forever; batches then run across pass boundaries, so every batch is full
        (``steps`` is still the number of batches in one pass).
    skip_errors : bool
        Skip a file that cannot be read (the default) instead of raising: it is recorded in
        ``bad_files`` with its cause and logged once, and the pass has fewer images than
        ``steps`` says. False: the first bad file stops the pass with an error naming it.
    bad_files : BadFiles, optional
        Receives ``(path, cause)`` of every skipped file (one is made when not given).
    limits : ReadLimits, optional
        Largest file and image read (see :func:`~patchwork_widget.images.read.read_array`).

    Returns
    -------
    (tf.data.Dataset, int)
        The dataset and the number of batches in one pass.

    Raises
    ------
    ValueError
        For an invalid option or mismatched lengths.
    """
    params = validate_augment(augment)
    batch_size = check_int("batch_size", batch_size, 1)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, 1)
    check_bool("shuffle", shuffle)
    if not isinstance(cache, (bool, str)):
        raise ValueError(f"cache must be True, False or a file prefix (str); got {cache!r}")

    in_memory = (isinstance(files, np.ndarray) and files.ndim in (3, 4)
                 and files.dtype.kind in "biuf")
    if in_memory:
        n = len(files)
        load_array = array_loader(files, imshape, num_channels, norm, single_channel)
        items: tuple[Any, ...] = (files,)
    else:
        paths = check_paths("files", files)
        n = len(paths)
        kinds = decoder_kinds(paths)
        if skip_errors and bad_files is None:
            bad_files = BadFiles()
        load_file = checked_image_loader(
            imshape, num_channels, norm, single_channel, np.unique(kinds), limits,
            bad_files if skip_errors else None, sniffed=True,
        )
        items = (tf.constant(paths, dtype=tf.string), kinds)
    if ys is not None:
        ys = np.asarray(ys, dtype=np.float32)
        if len(ys) != n:
            raise ValueError(f"ys has {len(ys)} rows but there are {n} images")
        items = items + (ys,)

    ds = tf.data.Dataset.from_tensor_slices(items)
    if shuffle and not cache:
        ds = ds.shuffle(max(n, 1), reshuffle_each_iteration=True)

    def load(*t):
        x, ok = (load_array(t[0]), True) if in_memory else load_file(t[0], t[1])
        return (x, ok, t[-1]) if ys is not None else (x, ok)

    if not in_memory:
        sniff = kind_sniffer(limits)

        def sniff_chunk(*t):
            return (t[0], sniff(t[0], t[1]), *t[2:])

        ds = ds.batch(SNIFF_CHUNK).map(sniff_chunk, num_parallel_calls=num_parallel_calls,
                                       deterministic=not shuffle).unbatch()
    ds = ds.map(load, num_parallel_calls=num_parallel_calls, deterministic=not shuffle)
    if skip_errors and not in_memory:
        ds = ds.filter(_is_ok)
        # TensorFlow's own errors on a file that passed every check (corrupt data inside a
        # complete PNG/JPEG, fewer channels than asked) drop it too, with TF's warning
        ds = ds.ignore_errors(log_warning=True)
    ds = ds.map(_drop_ok)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
        if shuffle:
            ds = ds.shuffle(min(shuffle_buffer, max(n, 1)), reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if is_active(params):
        if ys is not None:
            ds = ds.map(lambda x, y: (augment_batch(x, params, clip=False), y),
                        num_parallel_calls=num_parallel_calls)
        else:
            ds = ds.map(lambda x: augment_batch(x, params, clip=False),
                        num_parallel_calls=num_parallel_calls)
    ds = ds.prefetch(AUTOTUNE)
    steps = n // batch_size if drop_remainder else math.ceil(n / batch_size)
    return ds, steps
