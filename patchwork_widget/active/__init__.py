"""Choosing what to label next: subsets, orders, BADGE, propagation, near-duplicates, strategy
comparison.

Everything here is NumPy / SciPy / scikit-learn (plus faiss for large kNN graphs); no
TensorFlow. Heavier modules are imported from their own paths, e.g.
``from patchwork_widget.active.propagate import propagate``.
"""

from patchwork_widget.active.registry import (
    ORDERS,
    OrderChoice,
    available_orders,
    order_options,
    rank,
)
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask, subset_options

__all__ = [
    "ORDERS",
    "OrderChoice",
    "Subset",
    "SubsetKind",
    "available_orders",
    "order_options",
    "rank",
    "subset_mask",
    "subset_options",
]
