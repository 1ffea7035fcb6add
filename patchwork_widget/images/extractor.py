"""A feature extractor together with what a feature cache must know about it: an identity
that changes whenever its features would, the image size and the channels it reads (I5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Tuple

import numpy as np

from patchwork_widget.options.checks import check_int, check_shape, shown


@dataclass(frozen=True, eq=False)
class Extractor:
    """A feature extractor with what the cache needs to know about it.

    Parameters
    ----------
    model : keras.Model or callable
        Maps a float32 batch ``(n, h, w, num_channels)`` in [0, 1] to features ``(n, ...)``.
    identity : str
        Changes whenever the features would (weights, preprocessing); the cache's key.
    image_size : (int, int)
        Height and width images are resized to.
    num_channels : int
        Channels read per image.
    description : str
        A short name for messages.
    """

    model: Callable[[np.ndarray], Any]
    identity: str
    image_size: Tuple[int, int]
    num_channels: int = 3
    description: str = ""

    def __post_init__(self) -> None:
        if not callable(self.model):
            raise TypeError(f"Extractor model must be a Keras model or a callable; "
                            f"got {shown(self.model)}")
        if not isinstance(self.identity, str) or not self.identity:
            raise ValueError(f"Extractor identity must be a non-empty string; "
                             f"got {shown(self.identity)}")
        object.__setattr__(self, "image_size", check_shape("image_size", self.image_size))
        check_int("num_channels", self.num_channels, 1)
