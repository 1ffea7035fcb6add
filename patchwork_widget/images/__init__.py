"""Images: reading files (local paths or fsspec URLs) into arrays (I1). No TensorFlow import
here."""

from patchwork_widget.images.batch import BatchResult, read_images
from patchwork_widget.images.guard import DEFAULT_LIMITS, BadFiles, ImageReadError, ReadLimits
from patchwork_widget.images.read import (
    SUPPORTED_EXTENSIONS,
    read_array,
    read_image,
)
from patchwork_widget.images.storage import Storage, configure_storage

__all__ = [
    "DEFAULT_LIMITS",
    "SUPPORTED_EXTENSIONS",
    "BadFiles",
    "BatchResult",
    "ImageReadError",
    "ReadLimits",
    "Storage",
    "configure_storage",
    "read_array",
    "read_image",
    "read_images",
]
