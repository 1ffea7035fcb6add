"""Choosing what to label next: subsets and sampling orders (NumPy only, no TensorFlow)."""

from patchwork_widget.active.orders import ORDERS, rank
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask, subset_options

__all__ = ["ORDERS", "Subset", "SubsetKind", "rank", "subset_mask", "subset_options"]
