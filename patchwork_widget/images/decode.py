"""Decoding image files inside a ``tf.data`` graph (feature I2), behind the checks of
:mod:`patchwork_widget.images.guard`.

- a PNG or JPEG file is first checked by :func:`~patchwork_widget.images.sniff.fast_path_ok`
  (in ``tf.numpy_function``, reading only its head and tail): a regular file within one
  :class:`~patchwork_widget.images.guard.ReadLimits`, 8-bit, complete, and of the format its
  name says. Only then do TensorFlow's own kernels (``tf.io.decode_png`` / ``decode_jpeg``)
  read and decode it, in parallel and without the Python GIL;
- everything else (16-bit PNG, BMP, GIF, TIFF, ``.npy``, any PNG/JPEG that fails a check)
  goes through :func:`patchwork_widget.images.read.read_image`, so every format of feature I1
  works, a FIFO, a link to ``/dev/zero`` or a decompression bomb is refused before it is read,
  and every error names the path and the cause.

Channel rules, ``norm`` and clipping are those of ``read_image``; resizing uses
``tf.image.resize`` (bilinear, antialiased), which differs from Pillow's by a small fraction of a
grey level when an image is not already at ``imshape``. Memory stays near the decoded 8-bit
image: a JPEG much larger than ``imshape`` is decoded at 1/2, 1/4 or 1/8 of its size (the
scale ``read_image`` decodes it at), and the 8-bit pixels are resized before the division by
``norm``, so no float32 copy is made at the decoded size (docs/images.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from patchwork_widget.images.guard import (
    BadFiles,
    ImageReadError,
    ReadLimits,
    check_limits,
)
from patchwork_widget.images.read import REDUCING_GAP, check_options, dtype_norm, read_image
from patchwork_widget.images.sniff import fast_path_ok
from patchwork_widget.images.storage import extension, is_url

# Decoder id per extension: 0 PNG (TF, unless 16-bit), 1 JPEG (TF), 2 read_image.
_PNG, _JPEG, _PY = 0, 1, 2
_TF_KINDS = {".png": _PNG, ".jpg": _JPEG, ".jpeg": _JPEG}
_FORMATS = {_PNG: "PNG", _JPEG: "JPEG"}

def decoder_kinds(paths: Sequence[str]) -> np.ndarray:
    """Which decoder each path uses: 0 TF PNG, 1 TF JPEG, 2 ``read_image`` (int32).

    URLs (``s3://``, ``http(s)://``, ``file://``, ...) go to ``read_image``, which reads them
    through :mod:`~patchwork_widget.images.storage` (``tf.io`` cannot read S3 or HTTP)."""
    return np.array(
        [_PY if is_url(p) or p.startswith("file://")
         else _TF_KINDS.get(extension(p), _PY) for p in paths], dtype=np.int32
    )


def kind_sniffer(limits: ReadLimits | None = None) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """A graph function ``(paths, kinds) -> kinds`` over a chunk of files (1-D tensors): a
    PNG or JPEG that fails :func:`~patchwork_widget.images.sniff.fast_path_ok` becomes kind 2
    (``read_image``, which refuses it with the cause or reads it). One Python call per chunk
    instead of one per file: per file, the call and its hand-over of the GIL cost more CPU
    than the check itself (about 270 against 30 microseconds on 2 cores).
    """
    limits = check_limits(limits)

    def fn(paths: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        return np.array([
            k if k != _PY and fast_path_ok(p.decode(), _FORMATS[int(k)], limits) else _PY
            for p, k in zip(paths, kinds)
        ], dtype=np.int32)

    @tf.autograph.experimental.do_not_convert
    def sniff(paths: tf.Tensor, kinds: tf.Tensor) -> tf.Tensor:
        out = tf.numpy_function(fn, [paths, kinds], tf.int32, stateful=False)
        return tf.ensure_shape(out, kinds.shape)

    return sniff


def _select_channels(img: tf.Tensor, num_channels: int, single_channel: bool,
                     path: tf.Tensor) -> tf.Tensor:
    """``read_image``'s channel choice on a decoded (H, W, C) tensor with C in 1..4: the
    channels kept (1 or ``num_channels``), before any repetition (:func:`_repeat_channels`)."""
    if single_channel:
        return img[:, :, :1]
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
        return tf.identity(img)


def _repeat_channels(img: tf.Tensor, num_channels: int) -> tf.Tensor:
    """A 1-channel (h, w, 1) tensor repeated to ``num_channels`` (others unchanged)."""
    if num_channels == 1:
        return img
    return tf.cond(tf.equal(tf.shape(img)[2], 1),
                   lambda: tf.tile(img, [1, 1, num_channels]), lambda: img)


_JPEG_RATIOS = (1, 2, 4, 8)  # the reduced sizes libjpeg decodes at (tf.io.decode_jpeg ratio)


def _jpeg_ratio(shape: tf.Tensor, imshape: tuple[int, int]) -> tf.Tensor:
    """Index in :data:`_JPEG_RATIOS` of the largest ratio that keeps a JPEG of ``shape``
    (H, W, ...) at least :data:`~.read.REDUCING_GAP` times ``imshape`` on each side: the
    rule of ``read_image`` (Pillow's ``draft``), so both decode at the same size."""
    factor = tf.minimum(shape[0] // (REDUCING_GAP * imshape[0]),
                        shape[1] // (REDUCING_GAP * imshape[1]))
    return tf.reduce_sum(tf.cast(factor >= tf.constant(_JPEG_RATIOS[1:], factor.dtype),
                                 tf.int32))


def checked_image_loader(
    imshape: tuple[int, int],
    num_channels: int = 3,
    norm: float | None = None,
    single_channel: bool = False,
    kinds: Sequence[int] = (_PNG, _JPEG, _PY),
    limits: ReadLimits | None = None,
    bad_files: BadFiles | None = None,
    sniffed: bool = False,
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A graph function ``(path, kind) -> (image, ok)``: float32 (h, w, num_channels) in
    [0, 1] and a bool.

    ``kind`` comes from :func:`decoder_kinds`; ``kinds`` lists the kinds that can occur, so
    branches for absent kinds are left out of the graph (every op costs microseconds per image).
    Options are those of ``read_image``; ``imshape`` is required (batches need one size).
    Every file passes the checks of :mod:`~patchwork_widget.images.guard` within ``limits``.
    With ``bad_files``, a file that cannot be read is recorded there and gives ``ok`` False
    and a zero image; without, it raises an error naming the path and the cause.
    ``sniffed=True``: the kinds come from :func:`kind_sniffer` (run just before, per chunk),
    so a PNG/JPEG kind goes straight to TensorFlow's decoder and kind 2 to ``read_image``.
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

    def read_py(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        def fn(p: bytes) -> tuple[np.ndarray, np.ndarray]:
            try:
                img = read_image(p.decode(), opts.imshape, opts.num_channels, opts.norm,
                                 opts.single_channel, limits)
            except ImageReadError as error:
                failed(error)
                return np.zeros(shape, np.float32), np.array(False)
            return img, np.array(True)

        img, ok = tf.numpy_function(fn, [path], (tf.float32, tf.bool), stateful=False)
        return tf.ensure_shape(img, shape), tf.ensure_shape(ok, ())

    def fast(path: tf.Tensor, kind: tf.Tensor) -> tf.Tensor:
        """Whether TensorFlow's decoder may take the file (see :func:`fast_path_ok`)."""
        def fn(p: bytes, k: np.int32) -> np.ndarray:
            return np.array(k != _PY and fast_path_ok(p.decode(), _FORMATS[int(k)], limits))

        return tf.ensure_shape(tf.numpy_function(fn, [path, kind], tf.bool, stateful=False), ())

    def png() -> Callable[[tf.Tensor], tf.Tensor]:
        return lambda c: tf.io.decode_png(c, channels=want, dtype=tf.uint8)

    def jpeg() -> Callable[[tf.Tensor], tf.Tensor]:
        def decode(contents: tf.Tensor, ratio: int) -> tf.Tensor:
            return tf.io.decode_jpeg(contents, channels=want, ratio=ratio,
                                     dct_method="INTEGER_ACCURATE")

        def reduced(contents: tf.Tensor) -> tf.Tensor:
            # decoded at 1/2, 1/4 or 1/8 of its size when it stays >= 2x imshape
            index = _jpeg_ratio(tf.io.extract_jpeg_shape(contents), (h, w))
            return tf.switch_case(index, [functools.partial(decode, contents, r)
                                          for r in _JPEG_RATIOS])

        return reduced

    def decode_tf(contents: tf.Tensor, kind: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
        if _JPEG not in present:
            img = png()(contents)
        elif _PNG not in present:
            img = jpeg()(contents)
        else:
            img = tf.cond(tf.equal(kind, _PNG), lambda: png()(contents),
                          lambda: jpeg()(contents))
        if not rgb:
            img = _select_channels(img, opts.num_channels, opts.single_channel, path)
        same = tf.reduce_all(tf.equal(tf.shape(img)[:2], [h, w]))
        img = tf.cond(same, lambda: to_float(img), lambda: resized(img))
        return img if rgb else _repeat_channels(img, opts.num_channels)

    def to_float(img: tf.Tensor) -> tf.Tensor:
        img = tf.cast(img, tf.float32) / tf_norm
        return tf.minimum(img, 1.0) if tf_norm < 255 else img

    def resized(img: tf.Tensor) -> tf.Tensor:
        """Resized to (h, w) straight from the 8-bit pixels, then divided by the norm: the
        resize writes float32 at (h, w) only, so no float copy is made at the decoded size
        (resizing is linear: the same as dividing first). A norm below 255 clips before
        resizing, as ``read_image`` does, so that case converts at the decoded size."""
        if tf_norm < 255:
            img = to_float(img)
        return tf.clip_by_value(tf.image.resize(img, (h, w), antialias=True)
                                / (1.0 if tf_norm < 255 else tf_norm), 0.0, 1.0)

    @tf.autograph.experimental.do_not_convert
    def load(path: tf.Tensor, kind: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if present == {_PY}:
            return read_py(path)
        img, ok = tf.cond(
            tf.not_equal(kind, _PY) if sniffed else fast(path, kind),
            lambda: (decode_tf(tf.io.read_file(path), kind, path), tf.constant(True)),
            lambda: read_py(path),
        )
        return tf.ensure_shape(img, shape), ok

    return load


def image_loader(
    imshape: tuple[int, int],
    num_channels: int = 3,
    norm: float | None = None,
    single_channel: bool = False,
    kinds: Sequence[int] = (_PNG, _JPEG, _PY),
    limits: ReadLimits | None = None,
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
