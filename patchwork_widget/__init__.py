"""patchwork_widget: interactive machine learning for image labeling in Jupyter.

The top level re-exports the public API lazily, so ``import patchwork_widget`` stays fast and
imports neither pandas nor TensorFlow until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "prep_label_dataframe": "patchwork_widget.labels",
    "load_labels": "patchwork_widget.labels",
    "label_counts": "patchwork_widget.labels",
    "LabelStore": "patchwork_widget.labels",
    "read_image": "patchwork_widget.images",
    "read_images": "patchwork_widget.images",
    "ImageReadError": "patchwork_widget.images",
    "Subset": "patchwork_widget.active.subsets",
    "SubsetKind": "patchwork_widget.active.subsets",
    "Session": "patchwork_widget.session",
    "PatchworkWidget": "patchwork_widget.widget",
    "GUI": "patchwork_widget.widget",
    "distill": "patchwork_widget.models.distill",
}
# Subpackages reachable as attributes (``pw.feature.SimCLRTrainer``, as in the original's
# examples), imported on first use.
_SUBMODULES = ("feature", "viz", "loaders", "models", "images", "labels", "active", "options",
               "datasets")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"patchwork_widget.{name}")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'patchwork_widget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
