"""Which PNG and JPEG files TensorFlow's own decoders may take (feature I2, issue 10 item 3).

:func:`fast_path_ok` reads only the head and the tail of a file (no decoding, no Pillow) and
says yes only for the plain case: a regular file within the :class:`~.guard.ReadLimits`, whose
content is the format its name says, 8-bit, with 1-4 channels TensorFlow decodes, and complete
(ending with its end marker). Every other file goes to
:func:`~patchwork_widget.images.read.read_image`, which reads it or names the cause.
"""

from __future__ import annotations

import os
import struct

from patchwork_widget.images.guard import ImageReadError, ReadLimits
from patchwork_widget.images.storage import open_image_file

_HEAD = 1 << 16  # headers (with EXIF) beyond this go to read_image
_TAIL = 64
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}  # colour type -> decoded channels (at most)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}


def _png_shape(head: bytes) -> tuple[int, int, int] | None:
    """(height, width, channels) of an 8-bit PNG, else None."""
    if head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR" or len(head) < 26:
        return None
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if depth > 8 or colour not in _PNG_CHANNELS:
        return None
    return height, width, _PNG_CHANNELS[colour]


def _jpeg_shape(head: bytes) -> tuple[int, int, int] | None:
    """(height, width, channels) of a gray or RGB JPEG whose frame header is in ``head``."""
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            i += 2
            continue
        if marker in _JPEG_SOF:
            if i + 10 > len(head):
                return None
            height, width, channels = struct.unpack(">HHB", head[i + 5 : i + 10])
            return (height, width, channels) if channels in (1, 3) else None
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        i += 2 + length
    return None


_END = {"PNG": b"IEND", "JPEG": b"\xff\xd9"}


def fast_path_ok(path: str, fmt: str, limits: ReadLimits) -> bool:
    """Whether TensorFlow's 8-bit decoder may take ``path``, named as ``fmt`` (PNG or JPEG).

    False for anything else (including unreadable files): the caller then uses
    ``read_image``, which reads the file or raises the error naming its cause.
    """
    try:
        with open_image_file(path, limits) as handle:
            head = handle.read(_HEAD)
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - _TAIL))
            tail = handle.read(_TAIL)
    except (ImageReadError, OSError):
        return False
    shape = _png_shape(head) if fmt == "PNG" else _jpeg_shape(head)
    if shape is None or _END[fmt] not in tail:
        return False
    try:
        limits.check_image(path, shape, 1)
    except ImageReadError:
        return False
    return True
