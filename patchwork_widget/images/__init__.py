"""Images: reading files into arrays (I1). No TensorFlow import here."""

from patchwork_widget.images.batch import BatchResult, read_images
from patchwork_widget.images.read import (
    SUPPORTED_EXTENSIONS,
    ImageReadError,
    read_array,
    read_image,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "BatchResult",
    "ImageReadError",
    "read_array",
    "read_image",
    "read_images",
]
