"""The ``tf.data`` input pipeline over image files or in-memory arrays (feature I2).

:func:`dataset` returns ``(tf.data.Dataset, steps)`` the way the reference's loader does, ready
for Keras ``fit`` or a custom loop. Decoding:

- 8-bit PNG and JPEG are decoded by TensorFlow's own kernels (``tf.io.decode_png`` /
  ``decode_jpeg``), in parallel and without the Python GIL;
- everything else (16-bit PNG, found from the PNG header's bit-depth byte; BMP; GIF; TIFF;
  ``.npy``) goes through :func:`patchwork_widget.images.read.read_image` inside
  ``tf.numpy_function``, so every format of feature I1 works.

Channel rules, ``norm`` and clipping are those of ``read_image``; resizing uses
``tf.image.resize`` (bilinear, antialiased), which differs from Pillow's by a small fraction of a
grey level when an image is not already at ``imshape``.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from patchwork_widget.images.augment import augment_batch, is_active, validate_augment
from patchwork_widget.images.read import check_options, dtype_norm, read_image

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

# Decoder id per extension: 0 PNG (TF, unless 16-bit), 1 JPEG (TF), 2 read_image.
_PNG, _JPEG, _PY = 0, 1, 2
_TF_KINDS = {".png": _PNG, ".jpg": _JPEG, ".jpeg": _JPEG}

Files = Union[Sequence[Union[str, "os.PathLike[str]"]], np.ndarray]


def decoder_kinds(paths: Sequence[str]) -> np.ndarray:
    """Which decoder each path uses: 0 TF PNG, 1 TF JPEG, 2 ``read_image`` (int32)."""
    return np.array(
        [_TF_KINDS.get(os.path.splitext(p)[1].lower(), _PY) for p in paths], dtype=np.int32
    )


def _fix_channels(img: tf.Tensor, num_channels: int, single_channel: bool,
                  path: tf.Tensor) -> tf.Tensor:
    """``read_image``'s channel rules on a decoded (H, W, C) tensor with C in 1..4."""
    if single_channel:
        img = img[:, :, :1]
    else:
        # gray+alpha is read as gray, as Pillow's "LA" mode is in read_image
        img = tf.cond(tf.equal(tf.shape(img)[2], 2), lambda: img[:, :, :1], lambda: img)
        img = img[:, :, :num_channels]
        c = tf.shape(img)[2]
        check = tf.debugging.Assert(
            tf.logical_or(tf.equal(c, 1), tf.equal(c, num_channels)),
            ["cannot read image", path, ": it has fewer channels than num_channels =",
             num_channels, "; only 1-channel images are repeated"],
        )
        with tf.control_dependencies([check]):
            img = tf.identity(img)
    if num_channels == 1:
        return img
    return tf.cond(tf.equal(tf.shape(img)[2], 1),
                   lambda: tf.tile(img, [1, 1, num_channels]), lambda: img)


def image_loader(
    imshape: Tuple[int, int],
    num_channels: int = 3,
    norm: Optional[float] = 255,
    single_channel: bool = False,
    kinds: Sequence[int] = (_PNG, _JPEG, _PY),
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """A graph function ``(path, kind) -> float32 (h, w, num_channels)`` in [0, 1].

    ``kind`` comes from :func:`decoder_kinds`; ``kinds`` lists the kinds that can occur, so
    branches for absent kinds are left out of the graph (every op costs microseconds per image).
    Options are those of ``read_image``; ``imshape`` is required (batches need one size).
    """
    opts = check_options(imshape, num_channels, norm, single_channel)
    if opts.imshape is None:
        raise ValueError("imshape is required for the tf.data pipeline: pass (height, width)")
    h, w = opts.imshape
    tf_norm = opts.norm if opts.norm is not None else dtype_norm(np.uint8)
    present = {int(k) for k in kinds}
    # For 3 channels TF's own conversion is read_image's rule (gray and gray+alpha repeated,
    # alpha dropped, palette expanded), so the decoder does it; otherwise decode as stored.
    rgb = opts.num_channels == 3 and not opts.single_channel
    want = 3 if rgb else 0

    def read_py(path: tf.Tensor) -> tf.Tensor:
        def fn(p: bytes) -> np.ndarray:
            return read_image(p.decode(), opts.imshape, opts.num_channels, opts.norm,
                              opts.single_channel)

        return tf.numpy_function(fn, [path], tf.float32, stateful=False)

    def png() -> Callable[[tf.Tensor], tf.Tensor]:
        return lambda c: tf.io.decode_png(c, channels=want, dtype=tf.uint8)

    def jpeg() -> Callable[[tf.Tensor], tf.Tensor]:
        return lambda c: tf.io.decode_jpeg(c, channels=want, dct_method="INTEGER_ACCURATE")

    def decode_tf(contents: tf.Tensor, kind: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
        if _JPEG not in present:
            img = png()(contents)
        elif _PNG not in present:
            img = jpeg()(contents)
        else:
            img = tf.cond(tf.equal(kind, _PNG), lambda: png()(contents),
                          lambda: jpeg()(contents))
        if not rgb:
            img = _fix_channels(img, opts.num_channels, opts.single_channel, path)
        img = tf.cast(img, tf.float32) / tf_norm
        if tf_norm < 255:
            img = tf.minimum(img, 1.0)
        same = tf.reduce_all(tf.equal(tf.shape(img)[:2], [h, w]))
        return tf.cond(
            same, lambda: img,
            lambda: tf.clip_by_value(tf.image.resize(img, (h, w), antialias=True), 0.0, 1.0),
        )

    def by_tf(path: tf.Tensor, kind: tf.Tensor) -> tf.Tensor:
        contents = tf.io.read_file(path)
        if _PNG not in present:
            return decode_tf(contents, kind, path)
        # byte 24 of a PNG is the IHDR bit depth: 16-bit files keep their values via read_image
        sixteen = tf.equal(tf.strings.substr(contents, 24, 1), b"\x10")
        if _JPEG in present:
            sixteen = tf.logical_and(tf.equal(kind, _PNG), sixteen)
        return tf.cond(sixteen, lambda: read_py(path), lambda: decode_tf(contents, kind, path))

    @tf.autograph.experimental.do_not_convert
    def load(path: tf.Tensor, kind: tf.Tensor) -> tf.Tensor:
        if present == {_PY}:
            img = read_py(path)
        elif _PY not in present:
            img = by_tf(path, kind)
        else:
            img = tf.cond(tf.equal(kind, _PY), lambda: read_py(path), lambda: by_tf(path, kind))
        return tf.ensure_shape(img, (h, w, opts.num_channels))

    return load


def array_loader(
    images: np.ndarray,
    imshape: Tuple[int, int],
    num_channels: int = 3,
    norm: Optional[float] = 255,
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


def dataset(
    files: Files,
    ys: Optional[np.ndarray] = None,
    imshape: Tuple[int, int] = (256, 256),
    num_channels: int = 3,
    norm: Optional[float] = 255,
    batch_size: int = 64,
    augment: Union[bool, Mapping[str, Any], None] = False,
    shuffle: bool = True,
    num_parallel_calls: int = AUTOTUNE,
    single_channel: bool = False,
    cache: Union[bool, str] = False,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
    repeat: bool = False,
    skip_errors: bool = False,
) -> Tuple[tf.data.Dataset, int]:
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
        Drop images that fail to decode (``Dataset.ignore_errors``) instead of raising; the
        pass then has fewer batches than ``steps`` says.

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
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
    if not (isinstance(shuffle_buffer, (int, np.integer)) and shuffle_buffer >= 1):
        raise ValueError(f"shuffle_buffer must be an int >= 1; got {shuffle_buffer!r}")
    if not isinstance(cache, (bool, str)):
        raise ValueError(f"cache must be True, False or a file prefix (str); got {cache!r}")

    in_memory = (isinstance(files, np.ndarray) and files.ndim in (3, 4)
                 and files.dtype.kind in "biuf")
    if in_memory:
        n = len(files)
        load_array = array_loader(files, imshape, num_channels, norm, single_channel)
        items: Tuple[Any, ...] = (files,)
    else:
        paths = [os.fspath(p) for p in files]
        n = len(paths)
        kinds = decoder_kinds(paths)
        load_file = image_loader(imshape, num_channels, norm, single_channel, np.unique(kinds))
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
        x = load_array(t[0]) if in_memory else load_file(t[0], t[1])
        return (x, t[-1]) if ys is not None else x

    ds = ds.map(load, num_parallel_calls=num_parallel_calls, deterministic=not shuffle)
    if skip_errors:
        ds = ds.ignore_errors(log_warning=True)
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
