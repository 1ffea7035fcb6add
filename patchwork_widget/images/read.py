"""Read one image file into a float32 array in [0, 1] (feature I1).

Formats: PNG, JPEG, BMP and GIF (first frame) through Pillow; TIFF (first page, any number of
bands, 8/16-bit integer or float) through tifffile; ``.npy`` arrays through NumPy. Nothing here
imports TensorFlow. Every failure is an :class:`ImageReadError` that names the path and the cause.
Files are opened through :mod:`.guard`: regular files only, within one :class:`ReadLimits`
checked from the header before decoding.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Optional, Tuple, Union

import numpy as np
import tifffile
from PIL import Image, ImageFile, UnidentifiedImageError

from patchwork_widget.images.guard import (
    ImageReadError,
    ReadLimits,
    check_limits,
    pillow_bomb_error,
)
from patchwork_widget.images.storage import extension, open_image_file
from patchwork_widget.options.checks import check_path

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

PIL_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TIFF_EXTENSIONS = (".tif", ".tiff")
NPY_EXTENSIONS = (".npy",)
SUPPORTED_EXTENSIONS: Tuple[str, ...] = tuple(
    sorted(PIL_EXTENSIONS + TIFF_EXTENSIONS + NPY_EXTENSIONS)
)

# Pillow modes whose pixels go to NumPy unchanged (8-bit, 16-bit, 32-bit int and float).
_KEEP_MODES = frozenset({"L", "RGB", "RGBA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_warned_load_truncated = False


@dataclass(frozen=True)
class ReadOptions:
    """Validated options shared by :func:`read_image` and the batch reader."""

    imshape: Optional[Tuple[int, int]]
    num_channels: int
    norm: Optional[float]
    single_channel: bool


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_options(
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
) -> ReadOptions:
    """Validate reader options; raise ``ValueError`` saying what is wrong and what is allowed."""
    if imshape is not None:
        try:
            h, w = imshape
        except (TypeError, ValueError):
            h = w = None
        if not (_is_int(h) and _is_int(w) and h > 0 and w > 0):
            raise ValueError(
                f"imshape must be None or two positive ints (height, width); got {imshape!r}"
            )
        imshape = (int(h), int(w))
    if not (_is_int(num_channels) and num_channels >= 1):
        raise ValueError(f"num_channels must be an int >= 1; got {num_channels!r}")
    if norm is not None:
        if isinstance(norm, bool) or not isinstance(norm, numbers.Real):
            raise ValueError(f"norm must be a positive number or None; got {norm!r}")
        if not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"norm must be a positive finite number or None; got {norm!r}")
        norm = float(norm)
    if not isinstance(single_channel, (bool, np.bool_)):
        raise ValueError(f"single_channel must be True or False; got {single_channel!r}")
    return ReadOptions(imshape, int(num_channels), norm, bool(single_channel))


REDUCING_GAP = 2  # a reduced decode stays at least this many times the size asked for


def reduce_factor(shape: Tuple[int, int], size: Tuple[int, int]) -> int:
    """The whole factor by which an image of ``shape`` (H, W) may shrink and stay at least
    :data:`REDUCING_GAP` times ``size`` (h, w) on each side (1: not at all)."""
    return max(1, min(shape[0] // (REDUCING_GAP * size[0]), shape[1] // (REDUCING_GAP * size[1])))


@dataclass(frozen=True)
class Decoding:
    """How one file is decoded.

    Attributes
    ----------
    limits : ReadLimits
        Checked from the header before decoding.
    reduce_to : (int, int) or None
        The (h, w) the caller will resize to: formats that can decode or shrink cheaply
        (JPEG draft, Pillow's ``reduce``) stop at about twice that size. None: full size.
    reserve : callable or None
        Called with the decoded size in bytes before decoding (a shared byte budget of
        parallel readers, :class:`~.guard.ByteBudget`, waits there for room).
    """

    limits: ReadLimits
    reduce_to: Optional[Tuple[int, int]] = None
    reserve: Optional[Callable[[int], None]] = None

    def check_image(self, path: str, shape: Tuple[int, ...], itemsize: int) -> None:
        """The limits' check, then the reservation of the decoded bytes."""
        self.limits.check_image(path, shape, itemsize)
        if self.reserve is not None:
            self.reserve(math.prod(int(n) for n in shape) * itemsize)


# ---------------------------------------------------------------------------------------------
# Format readers: path -> array in the file's own dtype, shape (H, W) or (H, W, C).


def _warn_if_pil_accepts_truncated() -> None:
    global _warned_load_truncated
    if ImageFile.LOAD_TRUNCATED_IMAGES and not _warned_load_truncated:
        _warned_load_truncated = True
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True (set by some other code): Pillow now "
            "decodes truncated PNG/JPEG/BMP/GIF files without error and fills the missing part; "
            "set it back to False to have them reported as unreadable"
        )


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode in _KEEP_MODES:
        return np.asarray(im)
    if im.mode in ("1", "LA", "La"):  # bilevel and gray+alpha read as gray
        return np.asarray(im.convert("L"))
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))  # palette, CMYK, YCbCr, LAB, HSV


# Bytes per sample of the Pillow modes that are not 8-bit.
_PIL_SAMPLE_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


# Modes whose pixels Pillow may average while decoding (Image.reduce): not palettes or bits.
_REDUCE_MODES = frozenset({"L", "RGB", "RGBA", "I", "F"})


def _reduced(im: Image.Image, size: Tuple[int, int]) -> Image.Image:
    """``im`` shrunk by the whole factor that keeps it at least twice ``size`` (h, w) on
    each side (box average, as Pillow's own ``reducing_gap``), or ``im`` itself."""
    factor = reduce_factor((im.height, im.width), size)
    if factor < 2 or im.mode not in _REDUCE_MODES:
        return im
    small = im.reduce(factor)
    im.close()  # frees the full-size pixels now, not whenever the image object is collected
    return small


def _read_pil(path: str, handle: BinaryIO, how: Decoding) -> np.ndarray:
    _warn_if_pil_accepts_truncated()
    try:
        with Image.open(handle) as im:  # opens at the first frame (GIF, multi-page TIFF)
            width, height = im.size  # from the header: checked before decoding
            bands = len(im.getbands()) if im.mode in _KEEP_MODES else 4  # converted below
            how.check_image(path, (height, width, bands), _PIL_SAMPLE_BYTES.get(im.mode, 1))
            if how.reduce_to is not None:  # JPEG: decode at 1/2, 1/4 or 1/8 of the size
                h, w = how.reduce_to
                im.draft(im.mode, (w * REDUCING_GAP, h * REDUCING_GAP))
            im.load()
            if how.reduce_to is not None:
                im = _reduced(im, how.reduce_to)
            return _pil_to_array(im)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not a recognised image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as e:
        raise pillow_bomb_error(path, e, how.limits) from e
    except Exception as e:  # decoders raise many types on bad data: OSError, SyntaxError, ...
        raise ImageReadError(path, f"truncated or corrupt file ({type(e).__name__}: {e})") from e


def _read_tiff(path: str, handle: BinaryIO, how: Decoding) -> np.ndarray:
    try:
        with tifffile.TiffFile(handle, name=os.path.basename(path)) as tif:
            page = tif.pages[0]
            axes = page.axes
            if "Y" not in axes or "X" not in axes:
                raise ImageReadError(path, f"TIFF page has axes {axes!r}; expected Y and X")
            sizes = dict(zip(axes, page.shape))
            other = [n for axis, n in sizes.items() if axis not in "YX"]
            how.check_image(path, (sizes["Y"], sizes["X"], *other), page.dtype.itemsize)
            arr = page.asarray()
            arr = np.moveaxis(arr, (axes.index("Y"), axes.index("X")), (0, 1))
            return arr.reshape(arr.shape[0], arr.shape[1], -1)  # samples/planes -> channels
    except ImageReadError:
        raise
    except tifffile.TiffFileError as e:
        raise ImageReadError(path, f"not a valid TIFF file ({e})") from e
    except Exception as e:  # bad data raises many types: ValueError, zlib.error, MemoryError, ...
        if "imagecodecs" not in str(e):
            raise ImageReadError(
                path, f"truncated or corrupt file ({type(e).__name__}: {e})"
            ) from e
        codec_error = e
    # LZW, JPEG and PackBits need the optional imagecodecs package; Pillow decodes the
    # common 1-4 band 8/16-bit and float cases itself.
    try:
        handle.seek(0)
        return _read_pil(path, handle, how)
    except ImageReadError:
        raise ImageReadError(
            path, f"{codec_error}; install it with `pip install imagecodecs`"
        ) from codec_error


def _read_npy(path: str, handle: BinaryIO, how: Decoding) -> np.ndarray:
    try:
        if handle.read(4) == b"PK\x03\x04":
            raise ImageReadError(path, "file is an .npz archive, not a single .npy array")
        handle.seek(0)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        if len(shape) not in (2, 3):
            raise ImageReadError(path, f"array has shape {shape}; expected (H, W) or (H, W, C)")
        how.check_image(path, shape, dtype.itemsize)  # from the header: before reading
        handle.seek(0)
        return np.load(handle, allow_pickle=False)
    except ImageReadError:
        raise
    except Exception as e:  # bad headers raise ValueError, EOFError, tokenize.TokenError, ...
        raise ImageReadError(
            path, f"not a readable .npy array ({type(e).__name__}: {e})"
        ) from e


Reader = Callable[[str, BinaryIO, "Decoding"], np.ndarray]
_READERS: Dict[str, Reader] = {ext: _read_pil for ext in PIL_EXTENSIONS}
_READERS.update({ext: _read_tiff for ext in TIFF_EXTENSIONS})
_READERS.update({ext: _read_npy for ext in NPY_EXTENSIONS})


def read_array(path: PathLike, limits: Optional[ReadLimits] = None) -> np.ndarray:
    """Read an image file as stored: the file's own dtype, shape (H, W, C).

    Use it where raw values matter (contrast stretch or band choice for 16-bit and
    multispectral thumbnails); :func:`read_image` builds on it.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file with one of :data:`SUPPORTED_EXTENSIONS` (case-insensitive).
    limits : ReadLimits, optional
        Largest file and image accepted (default :data:`~.guard.DEFAULT_LIMITS`: 100
        megapixels, 512 MiB), checked from the file's header before decoding.

    Returns
    -------
    np.ndarray
        Integer, float or bool array of shape (H, W, C), C >= 1. Treat it as read-only:
        for Pillow formats it may share Pillow's buffer.

    Raises
    ------
    ImageReadError
        Unsupported extension; missing, empty, truncated, corrupt or non-image file; not a
        regular file (FIFO, device, folder); over the limits.
    """
    return decode_array(path, Decoding(check_limits(limits)))


def decode_array(path: PathLike, how: Decoding) -> np.ndarray:
    """:func:`read_array` decoding as ``how`` says: possibly at a reduced size (never
    below twice ``how.reduce_to``), after reserving its bytes."""
    p = check_path("path", path)
    ext = extension(p)
    reader = _READERS.get(ext)
    if reader is None:
        raise ImageReadError(
            p,
            f"unsupported extension {ext or '(none)'!r}; supported: "
            + ", ".join(SUPPORTED_EXTENSIONS),
        )
    with open_image_file(p, how.limits) as handle:
        arr = reader(p, handle, how)
    if arr.dtype.kind not in "biuf":
        raise ImageReadError(p, f"pixel dtype {arr.dtype} is not bool, integer or float")
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if 0 in arr.shape:
        raise ImageReadError(p, f"image has an empty dimension: shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------------------------------
# Conversion to float32 in [0, 1].


def dtype_norm(dtype: np.dtype) -> float:
    """The ``norm`` used when ``norm=None``: the integer type's maximum; 1 for float and bool."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


def resize(img: np.ndarray, imshape: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 (H, W, C) array to ``imshape`` = (h, w), any C.

    Each band goes through Pillow in mode "F" (32-bit float), which is 2-10x faster than
    ``skimage.transform.resize`` and antialiases when shrinking.
    """
    h, w = imshape
    out = np.empty((h, w, img.shape[2]), dtype=np.float32)
    for c in range(img.shape[2]):
        band = Image.fromarray(np.ascontiguousarray(img[:, :, c]), mode="F")
        out[:, :, c] = np.asarray(band.resize((w, h), Image.BILINEAR))
    return out


_CHUNK_BYTES = 16 * 2**20  # float32 working set of one block of rows in :func:`_box_reduce`


def _normalised(arr: np.ndarray, norm: float) -> np.ndarray:
    """``arr`` as float32 divided by ``norm``, clipped to [0, 1], NaN as 0 (a new array)."""
    out = arr.astype(np.float32)
    out /= np.float32(norm)
    np.clip(out, 0.0, 1.0, out=out)
    if arr.dtype.kind == "f":
        np.nan_to_num(out, copy=False, nan=0.0)
    return out


def _box_reduce(arr: np.ndarray, factor: int, norm: float) -> np.ndarray:
    """The mean of each ``factor`` x ``factor`` block of :func:`_normalised` ``arr``,
    converted a block of rows at a time, so no full-size float copy is ever made (the
    last rows and columns that do not fill a block are left out: under half a pixel of
    the size asked for)."""
    h, w, c = arr.shape[0] // factor, arr.shape[1] // factor, arr.shape[2]
    out = np.empty((h, w, c), dtype=np.float32)
    step = max(1, _CHUNK_BYTES // (factor * factor * w * c * 4))  # output rows per block
    for top in range(0, h, step):
        rows = min(step, h - top)
        block = _normalised(arr[top * factor:(top + rows) * factor, : w * factor], norm)
        out[top:top + rows] = block.reshape(rows, factor, w, factor, c).mean(axis=(1, 3))
    return out


def to_float(arr: np.ndarray, path: PathLike, opts: ReadOptions) -> np.ndarray:
    """Apply channel selection, ``norm``, clipping, resizing and channel repetition.

    An image much larger than ``opts.imshape`` is first box-reduced by a whole factor
    (down to at least twice the size) while it is converted, then resized bilinearly, so
    the float32 copy is never made at full size.
    """
    c = arr.shape[2]
    if opts.single_channel:
        arr = arr[:, :, :1]
    elif c > opts.num_channels:
        arr = arr[:, :, : opts.num_channels]
    elif 1 < c < opts.num_channels:
        raise ImageReadError(
            path,
            f"image has {c} channels, fewer than num_channels={opts.num_channels}; only "
            "1-channel images are repeated (pass single_channel=True to repeat the first one)",
        )
    norm = opts.norm if opts.norm is not None else dtype_norm(arr.dtype)
    factor = 1 if opts.imshape is None else reduce_factor(arr.shape[:2], opts.imshape)
    out = _box_reduce(arr, factor, norm) if factor > 1 else _normalised(arr, norm)
    if opts.imshape is not None and out.shape[:2] != opts.imshape:
        out = resize(out, opts.imshape)
    if out.shape[2] < opts.num_channels:
        out = np.repeat(out, opts.num_channels, axis=2)
    return out


def read_image(
    path: PathLike,
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    limits: Optional[ReadLimits] = None,
) -> np.ndarray:
    """Read an image file into a float32 array of shape (H, W, num_channels) in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        PNG, JPEG, BMP, GIF (first frame), TIFF (first page) or ``.npy`` file.
    imshape : (int, int), optional
        Resize to (height, width) with bilinear interpolation; None keeps the file's size.
    num_channels : int
        Channels in the result. Extra channels are dropped (RGBA -> RGB); a 1-channel image is
        repeated. An image with 2..num_channels-1 channels is an error.
    norm : float or None
        Divide pixel values by this, then clip to [0, 1]. None (the default) chooses from
        the file's dtype: its maximum for integers (255 for 8-bit, 65535 for 16-bit), 1 for
        float (values kept, clipped) and bool (0/1). NaN becomes 0.
    single_channel : bool
        Use the first channel only and repeat it ``num_channels`` times.
    limits : ReadLimits, optional
        Largest file and image accepted (see :func:`read_array`).

    Returns
    -------
    np.ndarray
        float32, shape (H, W, num_channels), values in [0, 1].

    Raises
    ------
    ImageReadError
        The file cannot be read (see :func:`read_array`) or an option is invalid.
    """
    check_path("path", path)
    try:
        opts = check_options(imshape, num_channels, norm, single_channel)
    except ValueError as e:
        raise ImageReadError(path, str(e)) from None
    return to_float(decode_array(path, Decoding(check_limits(limits), opts.imshape)), path, opts)
