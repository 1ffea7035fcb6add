"""Display thumbnails: decode once, encode at display size, keep the bytes in an LRU cache (I6).

The widget sends these bytes to the browser as binary message buffers. 8-bit images are shown
as stored; 16-bit, float and multispectral images get a per-band percentile stretch, and
``bands`` picks which one or three bands to show.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from patchwork_widget.images.guard import ImageReadError, ReadLimits, check_limits
from patchwork_widget.images.read import read_array

FORMATS = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True)
class DisplayOptions:
    """How images are shown.

    Parameters
    ----------
    size : (int, int)
        Largest (height, width) of a thumbnail; the aspect ratio is kept.
    bands : tuple of int, optional
        One band (shown gray) or three (shown as RGB), zero-based. Default: the first three
        bands, or the only one.
    stretch : (float, float), optional
        Lower and upper percentiles mapped to black and white per band. Default: none for
        8-bit images, (2, 98) for everything else.
    fmt : str
        Encoding: ``"jpeg"``, ``"png"`` or ``"webp"``.
    quality : int
        JPEG/WebP quality, 1-100.
    """

    size: tuple[int, int] = (256, 256)
    bands: tuple[int, ...] | None = None
    stretch: tuple[float, float] | None = None
    fmt: str = "jpeg"
    quality: int = 90

    def __post_init__(self) -> None:
        if len(self.size) != 2 or not all(isinstance(s, int) and s > 0 for s in self.size):
            raise ValueError(f"size must be two positive ints (height, width), got {self.size!r}")
        if self.bands is not None and len(self.bands) not in (1, 3):
            raise ValueError(f"bands must name one or three bands, got {self.bands!r}")
        if self.stretch is not None and not 0 <= self.stretch[0] < self.stretch[1] <= 100:
            raise ValueError(f"stretch must be percentiles 0 <= low < high <= 100, got {self.stretch!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {self.fmt!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality!r}")

    @property
    def mime(self) -> str:
        return FORMATS[self.fmt]


DEFAULT_STRETCH = (2.0, 98.0)  # percentiles of images that are not 8-bit, unless told


class BandsError(ValueError):
    """The display options ask for a band the image does not have (that image cannot be
    shown with them; others can)."""


def _default_bands(nbands: int) -> tuple[int, ...]:
    """The first three bands, or the first one of a one- or two-band image."""
    return (0,) if nbands == 2 else tuple(range(min(nbands, 3)))


def display_array(raw: np.ndarray, options: DisplayOptions) -> np.ndarray:
    """An (H, W, C) array as stored -> uint8 (H, W) or (H, W, 3) ready to encode."""
    nbands = raw.shape[2]
    bands = options.bands if options.bands is not None else _default_bands(nbands)
    if max(bands) >= nbands:
        raise BandsError(f"bands {bands} asked of an image with {nbands} band(s)")
    img = raw[:, :, list(bands)]
    stretch = options.stretch
    if stretch is None and raw.dtype != np.uint8:
        stretch = DEFAULT_STRETCH
    if stretch is None:
        out = img
    else:
        data = img.astype(np.float32)
        low, high = np.nanpercentile(data, stretch, axis=(0, 1))
        span = np.where(high > low, high - low, 1.0)
        out = np.clip((data - low) / span, 0.0, 1.0)
        out = np.nan_to_num(out * 255.0 + 0.5).astype(np.uint8)
    return out[:, :, 0] if out.shape[2] == 1 else out


def encode_thumbnail(
    path: str, options: DisplayOptions, limits: ReadLimits | None = None
) -> bytes:
    """Read ``path`` (within ``limits``) and encode it at display size.

    Raises ``ImageReadError`` naming the path and the cause, :class:`BandsError` when
    ``options.bands`` names a band this image does not have.
    """
    image = Image.fromarray(display_array(read_array(path, limits), options))
    height, width = options.size
    if image.height > height or image.width > width:
        image.thumbnail((width, height), Image.BILINEAR)
    elif image.height < height and image.width < width:
        scale = min(height / image.height, width / image.width)
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.NEAREST)  # small patches: keep pixels crisp
    buffer = io.BytesIO()
    image.save(buffer, format=options.fmt.upper(), quality=options.quality)
    return buffer.getvalue()


FULL_MAX_SIDE = 2048  # longest side of a full-resolution view sent to the browser
FULL_PNG_PIXELS = 1024 * 1024  # up to this many pixels a full view is lossless PNG, above JPEG


@dataclass(frozen=True)
class FullImage:
    """One image rendered for the full-resolution view.

    ``data`` is encoded as ``mime``, ``width`` x ``height`` pixels: the file's own size
    (``source_width`` x ``source_height``), or less when its long side was capped to
    ``max_side`` (``scaled``). ``bands`` is the file's band count; ``shown_bands`` and
    ``stretch`` what was shown (``stretch`` None: the values as stored)."""

    data: bytes
    mime: str
    width: int
    height: int
    source_width: int
    source_height: int
    bands: int
    dtype: str
    shown_bands: tuple[int, ...]
    stretch: tuple[float, float] | None

    @property
    def scaled(self) -> bool:
        return (self.width, self.height) != (self.source_width, self.source_height)


def encode_full(
    path: str,
    options: DisplayOptions,
    max_side: int = FULL_MAX_SIDE,
    limits: ReadLimits | None = None,
) -> FullImage:
    """Read ``path`` and encode it at its own resolution through ``options``' bands and
    stretch (its size and format are not used), the long side capped to ``max_side``.

    Lossless PNG up to :data:`FULL_PNG_PIXELS` pixels, JPEG at ``options.quality`` above.
    Raises ``ImageReadError`` naming the path and the cause, ``ValueError`` for bands the
    image does not have.
    """
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16:
        raise ValueError(f"max_side must be an int >= 16, got {max_side!r}")
    raw = read_array(path, limits)
    shown = options.bands if options.bands is not None else _default_bands(raw.shape[2])
    stretch = options.stretch
    if stretch is None and raw.dtype != np.uint8:
        stretch = DEFAULT_STRETCH
    image = Image.fromarray(display_array(raw, options))
    source_width, source_height = image.width, image.height
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    fmt = "png" if image.width * image.height <= FULL_PNG_PIXELS else "jpeg"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), quality=options.quality)
    return FullImage(buffer.getvalue(), FORMATS[fmt], image.width, image.height, source_width,
                     source_height, int(raw.shape[2]), str(raw.dtype), tuple(shown), stretch)


class ThumbnailCache:
    """Thread-safe LRU cache of encoded thumbnails, keyed by file path or URL.

    ``limits`` bounds the files read (see :func:`~patchwork_widget.images.read.read_array`);
    ``workers`` threads read the missing images of :meth:`get_many` together.
    """

    def __init__(
        self,
        options: DisplayOptions | None = None,
        maxsize: int = 2048,
        limits: ReadLimits | None = None,
        workers: int = 8,
    ) -> None:
        self.options = options or DisplayOptions()
        self.maxsize = maxsize
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1; got {workers!r}")
        self.workers = workers
        self.limits = check_limits(limits)
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> bytes:
        """Encoded bytes for ``path`` (``self.options.mime``); raises ``ImageReadError``."""
        with self._lock:
            data = self._items.get(path)
            if data is not None:
                self._items.move_to_end(path)
                return data
        data = encode_thumbnail(path, self.options, self.limits)
        with self._lock:
            self._items[path] = data
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return data

    def get_many(self, paths: Sequence[str]) -> list[bytes | ImageReadError | BandsError]:
        """Encoded bytes for each of ``paths``, or the error that path raised, in order.

        The paths not in the cache are read together, ``workers`` at a time: remote objects
        download concurrently (a page of thumbnails arrives together) and Pillow decodes
        and encodes outside the GIL."""
        out: list[bytes | ImageReadError | BandsError | None] = []
        with self._lock:
            for path in paths:
                data = self._items.get(path)
                if data is not None:
                    self._items.move_to_end(path)
                out.append(data)
        missing = list(dict.fromkeys(p for p, d in zip(paths, out) if d is None))

        def attempt(path: str) -> bytes | ImageReadError | BandsError:
            try:
                return self.get(path)
            except (ImageReadError, BandsError) as error:
                return error

        if len(missing) > 1:
            with ThreadPoolExecutor(min(len(missing), self.workers)) as pool:
                done = dict(zip(missing, pool.map(attempt, missing)))
        else:
            done = {p: attempt(p) for p in missing}
        return [done[p] if d is None else d for p, d in zip(paths, out)]

    def __len__(self) -> int:
        return len(self._items)
