"""What every image reader checks before it decodes (FEATURES I1; issue 10 item 3).

- Only regular files are opened for reading: a FIFO is refused from its ``stat`` (never
  opened, so nothing hangs), a link to ``/dev/zero`` or another device likewise, and the
  open file is checked again (a file swapped in between is refused too).
- One :class:`ReadLimits` bounds the file size and the decoded image (pixels and bytes), read
  from the file's header before anything is decoded, so a 400 KB "decompression bomb" costs
  nothing.
- :class:`ByteBudget` shares one total of decoded bytes among parallel readers.
- :class:`BadFiles` collects ``(path, cause)`` of files skipped by loops over many files.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import numbers
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

logger = logging.getLogger(__name__)


class ImageReadError(ValueError):
    """An image file could not be read; ``path`` and ``cause`` say which and why."""

    def __init__(self, path: str | os.PathLike, cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"cannot read image {self.path!r}: {cause}")

    def __reduce__(self):  # keep it picklable (process pools) despite the two-argument init
        return (type(self), (self.path, self.cause))


@dataclass(frozen=True)
class ReadLimits:
    """The most an image reader will take on.

    Parameters
    ----------
    max_pixels : int
        Height x width of the image (default 100 megapixels).
    max_bytes : int
        Size of the file, and of the decoded array in the file's own dtype (default 512 MiB).
    """

    max_pixels: int = 100_000_000
    max_bytes: int = 512 * 2**20

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")

    def check_image(self, path: str, shape: tuple[int, ...], itemsize: int) -> None:
        """Refuse an image of ``shape`` (H, W[, C...]) and ``itemsize`` bytes per sample."""
        if len(shape) < 2:
            raise ImageReadError(path, f"image has shape {shape}; expected (H, W) or (H, W, C)")
        pixels = int(shape[0]) * int(shape[1])
        if pixels > self.max_pixels:
            raise ImageReadError(
                path,
                f"image is {shape[1]}x{shape[0]} = {pixels:,} pixels, over the limit of "
                f"{self.max_pixels:,} (ReadLimits.max_pixels)",
            )
        size = math.prod(int(s) for s in shape) * itemsize
        if size > self.max_bytes:
            raise ImageReadError(
                path,
                f"image of shape {tuple(shape)} decodes to {size:,} bytes, over the limit of "
                f"{self.max_bytes:,} (ReadLimits.max_bytes)",
            )


DEFAULT_LIMITS = ReadLimits()


def pillow_bomb_error(
    path: str, error: Image.DecompressionBombError, limits: ReadLimits
) -> ImageReadError:
    """The error for an image Pillow itself refuses as too large (over twice
    ``PIL.Image.MAX_IMAGE_PIXELS``, before its size reaches :meth:`ReadLimits.check_image`)."""
    pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if limits.max_pixels < pillow_limit:
        return ImageReadError(
            path,
            f"image is over the limit of {limits.max_pixels:,} pixels "
            f"(ReadLimits.max_pixels; Pillow says: {error})",
        )
    return ImageReadError(
        path, f"image is over Pillow's limit (raise PIL.Image.MAX_IMAGE_PIXELS): {error}"
    )


def check_limits(limits: ReadLimits | None) -> ReadLimits:
    """``limits`` as given, :data:`DEFAULT_LIMITS` for None; anything else is an error."""
    if limits is None:
        return DEFAULT_LIMITS
    if not isinstance(limits, ReadLimits):
        raise ValueError(f"limits must be a ReadLimits or None; got {limits!r}")
    return limits


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _check_stat(name: str, st: os.stat_result, limits: ReadLimits) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(name, f"not a regular file: it is {_kind(st.st_mode)}")
    if st.st_size == 0:
        raise ImageReadError(name, "file is empty (0 bytes)")
    if st.st_size > limits.max_bytes:
        raise ImageReadError(
            name,
            f"file is {st.st_size:,} bytes, over the limit of {limits.max_bytes:,} "
            "(ReadLimits.max_bytes)",
        )


def open_local_file(path: str, limits: ReadLimits, name: str | None = None) -> BinaryIO:
    """Open the local file ``path`` for reading if it is a regular, non-empty file within
    the limits; errors name ``name`` (default ``path``: a remote object's URL when ``path``
    is its cached copy).

    Symbolic links are followed (to regular files only). Never blocks: a FIFO or device is
    refused from its ``stat`` before any open, and the open itself is non-blocking. Readers
    open files through :func:`~.storage.open_image_file`, which sends URLs to their
    filesystem and local paths here.
    """
    name = path if name is None else name
    try:
        _check_stat(name, os.stat(path), limits)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ImageReadError(name, "file not found") from None
    except OSError as e:
        raise ImageReadError(name, f"cannot access file ({e.strerror or e})") from e
    try:
        _check_stat(name, os.fstat(fd), limits)  # the file opened is the file checked
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


_TRIM_BYTES = 64 * 2**20  # a reader that held this much gives the freed pages back at once


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim") if name else None
    except (OSError, AttributeError):
        return None


def give_back_freed_memory() -> None:
    """Return the C allocator's free pages to the system (glibc's ``malloc_trim``).

    Decoders in several threads allocate from one heap (arena) per thread, and glibc keeps
    a large buffer freed in a thread's arena for later use: without this, three readers
    would each keep a full decoded image long after it was freed. Does nothing elsewhere.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class ByteBudget:
    """One total of decoded image bytes that parallel readers share.

    A reader reserves an image's decoded size (from its header) before decoding and gives
    it back when done; a reservation waits while others hold too much. An image larger
    than the whole budget is still read, alone. A reader that held a large image returns
    the freed memory to the system before the next one starts
    (:func:`give_back_freed_memory`).

    Parameters
    ----------
    total : int
        Bytes that may be held at once (e.g. ``ReadLimits.max_bytes``).
    """

    def __init__(self, total: int) -> None:
        if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 1:
            raise ValueError(f"total must be an int >= 1 (bytes); got {total!r}")
        self.total = int(total)
        self._held = 0
        self._room = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes reserved now."""
        with self._room:
            return self._held

    @contextmanager
    def share(self) -> Iterator[Callable[[int], None]]:
        """A ``reserve(nbytes)`` function for one reader; what it reserved is given back
        when the block ends."""
        mine = 0

        def reserve(nbytes: int) -> None:
            nonlocal mine
            with self._room:
                self._room.wait_for(lambda: self._held == 0 or self._held + nbytes <= self.total)
                self._held += nbytes
                mine += nbytes

        try:
            yield reserve
        finally:
            if mine >= _TRIM_BYTES:
                give_back_freed_memory()
            if mine:
                with self._room:
                    self._held -= mine
                    self._room.notify_all()


class BadFiles:
    """Thread-safe record of the files a loop skipped: ``path -> cause`` (first cause)."""

    def __init__(self) -> None:
        self._causes: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, error: ImageReadError) -> None:
        """Record ``error`` (logged as a warning the first time its path is met)."""
        with self._lock:
            if error.path in self._causes:
                return
            self._causes[error.path] = error.cause
        logger.warning("skipping %s", error)

    def items(self) -> list[tuple[str, str]]:
        """``(path, cause)`` pairs in the order they were met."""
        with self._lock:
            return list(self._causes.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._causes)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._causes
