"""The ``tf.data`` input pipeline over image files or in-memory arrays (feature I2).

:func:`dataset` returns ``(tf.data.Dataset, steps)`` the way the reference's loader does, ready
for Keras ``fit`` or a custom loop. Decoding:

- every file is first checked by :func:`~patchwork_widget.images.guard.sniff_for_tf` (in
  ``tf.numpy_function``): only regular files, within one
  :class:`~patchwork_widget.images.guard.ReadLimits` read from the header, so a FIFO, a link
  to ``/dev/zero`` or a decompression bomb is refused before TensorFlow touches it;
- 8-bit PNG and JPEG are then decoded by TensorFlow's own kernels (``tf.io.decode_png`` /
  ``decode_jpeg``), in parallel and without the Python GIL;
- everything else (16-bit PNG, BMP, GIF, TIFF, ``.npy``, a file whose content is not what its
  name says, a PNG/JPEG without its end marker) goes through
  :func:`patchwork_widget.images.read.read_image`, so every format of feature I1 works and
  every error names the path and the cause.

By default :func:`dataset` records a bad file in a
:class:`~patchwork_widget.images.guard.BadFiles` and skips it (FEATURES I1: a loop never stops
at one bad file).

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
from patchwork_widget.images.guard import (
    ROUTE_PY,
    BadFiles,
    ImageReadError,
    ReadLimits,
    check_limits,
    sniff_for_tf,
)
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


def checked_image_loader(
    imshape: Tuple[int, int],
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    kinds: Sequence[int] = (_PNG, _JPEG, _PY),
    limits: Optional[ReadLimits] = None,
    bad_files: Optional[BadFiles] = None,
) -> Callable[[tf.Tensor, tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]:
    """A graph function ``(path, kind) -> (image, ok)``: float32 (h, w, num_channels) in
    [0, 1] and a bool.

    ``kind`` comes from :func:`decoder_kinds`; ``kinds`` lists the kinds that can occur, so
    branches for absent kinds are left out of the graph (every op costs microseconds per image).
    Options are those of ``read_image``; ``imshape`` is required (batches need one size).
    Every file passes the checks of :mod:`~patchwork_widget.images.guard` within ``limits``.
    With ``bad_files``, a file that cannot be read is recorded there and gives ``ok`` False
    and a zero image; without, it raises an error naming the path and the cause.
    """
    opts = check_options(imshape, num_channels, norm, single_channel)
    if opts.imshape is None:
        raise ValueError("imshape is required for the tf.data pipeline: pass (height, width)")
    limits = check_limits(limits)
    h, w = opts.imshape
    shape = (h, w, opts.num_channels)
    tf_norm = opts.norm if opts.norm is not None else dtype_norm(np.uint8)
    present = {int(k) for k in kinds}
    # For 3 channels TF's own conversion is read_image's rule (gray and gray+alpha repeated,
    # alpha dropped, palette expanded), so the decoder does it; otherwise decode as stored.
    rgb = opts.num_channels == 3 and not opts.single_channel
    want = 3 if rgb else 0

    def failed(error: ImageReadError):
        if bad_files is None:
            raise error
        bad_files.add(error)

    def read_py(path: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        def fn(p: bytes) -> Tuple[np.ndarray, np.ndarray]:
            try:
                img = read_image(p.decode(), opts.imshape, opts.num_channels, opts.norm,
                                 opts.single_channel, limits)
            except ImageReadError as error:
                failed(error)
                return np.zeros(shape, np.float32), np.array(False)
            return img, np.array(True)

        img, ok = tf.numpy_function(fn, [path], (tf.float32, tf.bool), stateful=False)
        return tf.ensure_shape(img, shape), tf.ensure_shape(ok, ())

    def sniff(path: tf.Tensor, kind: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Checked bytes of a PNG/JPEG and where they go: 0 TF, 1 read_image, 2 bad."""
        def fn(p: bytes, k: np.int32) -> Tuple[bytes, np.int32]:
            if k == _PY:
                return b"", np.int32(ROUTE_PY)
            try:
                contents, route = sniff_for_tf(p.decode(), "PNG" if k == _PNG else "JPEG", limits)
            except ImageReadError as error:
                failed(error)
                return b"", np.int32(len(branches) - 1)
            return contents, np.int32(route)

        contents, route = tf.numpy_function(fn, [path, kind], (tf.string, tf.int32),
                                            stateful=False)
        return tf.ensure_shape(contents, ()), tf.ensure_shape(route, ())

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

    # the routes of guard.sniff_for_tf: ROUTE_TF, ROUTE_PY, then a bad file
    branches = [
        lambda contents, kind, path: (decode_tf(contents, kind, path), tf.constant(True)),
        lambda contents, kind, path: read_py(path),
        lambda contents, kind, path: (tf.zeros(shape), tf.constant(False)),
    ]

    @tf.autograph.experimental.do_not_convert
    def load(path: tf.Tensor, kind: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        if present == {_PY}:
            return read_py(path)
        contents, route = sniff(path, kind)
        img, ok = tf.switch_case(
            route, [lambda b=b: b(contents, kind, path) for b in branches]
        )
        return tf.ensure_shape(img, shape), ok

    return load


def image_loader(
    imshape: Tuple[int, int],
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    kinds: Sequence[int] = (_PNG, _JPEG, _PY),
    limits: Optional[ReadLimits] = None,
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """A graph function ``(path, kind) -> float32 (h, w, num_channels)`` in [0, 1].

    :func:`checked_image_loader` without skipping: a file that cannot be read raises an
    error naming the path and the cause.
    """
    checked = checked_image_loader(imshape, num_channels, norm, single_channel, kinds, limits)

    @tf.autograph.experimental.do_not_convert
    def load(path: tf.Tensor, kind: tf.Tensor) -> tf.Tensor:
        return checked(path, kind)[0]

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


@tf.autograph.experimental.do_not_convert
def _is_ok(x: tf.Tensor, ok: tf.Tensor, *y: tf.Tensor) -> tf.Tensor:
    return ok


@tf.autograph.experimental.do_not_convert
def _drop_ok(x: tf.Tensor, ok: tf.Tensor, *y: tf.Tensor) -> Any:
    return (x, *y) if y else x


def dataset(
    files: Files,
    ys: Optional[np.ndarray] = None,
    imshape: Tuple[int, int] = (256, 256),
    num_channels: int = 3,
    norm: Optional[float] = None,
    batch_size: int = 64,
    augment: Union[bool, Mapping[str, Any], None] = False,
    shuffle: bool = True,
    num_parallel_calls: int = AUTOTUNE,
    single_channel: bool = False,
    cache: Union[bool, str] = False,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
    repeat: bool = False,
    skip_errors: bool = True,
    bad_files: Optional[BadFiles] = None,
    limits: Optional[ReadLimits] = None,
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
        if skip_errors and bad_files is None:
            bad_files = BadFiles()
        load_file = checked_image_loader(
            imshape, num_channels, norm, single_channel, np.unique(kinds), limits,
            bad_files if skip_errors else None,
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
