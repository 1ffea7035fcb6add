"""``patchwork_widget.loaders.dataset``: the reference's name for the input pipeline (I2).

A thin alias of :mod:`patchwork_widget.images.pipeline`; importing it imports TensorFlow.
"""

from patchwork_widget.images.pipeline import AUTOTUNE, dataset, decoder_kinds, image_loader

__all__ = ["AUTOTUNE", "dataset", "decoder_kinds", "image_loader"]
