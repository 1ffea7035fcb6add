"""Shared argument checks for the active-learning functions (no TensorFlow, no state)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from patchwork_widget.options.checks import is_out_of_core

E = TypeVar("E", bound=enum.Enum)

# How to obtain each array an order or strategy can ask for; used in error messages.
HOW_TO_GET = {
    "probs": "train a model and update predictions first (Train tab, or Session.set_predictions)",
    "embeddings": "train a model with 'update BADGE embeddings' checked first (Train tab)",
    "features": "pass pre-extracted features= or a feature_extractor to the widget or Session",
    "labels": "pass the label table's class columns as an N x C float array (NaN = unlabeled)",
    "propagation": "build the graph and propagate labels first (Propagate tab, or active.propagate)",
    "heldout": "train a linear head on features (the default model; Train tab), or pass "
               "out-of-fold predictions of the labeled rows (models.convex.out_of_fold)",
}


def require(arrays: Mapping[str, Any], name: str, order: str) -> np.ndarray:
    """Fetch ``arrays[name]`` as an array, or raise ``ValueError`` saying how to get it.
    Features read from storage (a memmap or Zarr array) come as they are, never read whole."""
    value = arrays.get(name)
    if value is None:
        raise ValueError(f"order {order!r} needs {name!r}: {HOW_TO_GET[name]}")
    return value if is_out_of_core(value) else np.asarray(value)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from an int seed, an existing generator (used as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def candidate_mask(candidates: np.ndarray | None, n: int) -> np.ndarray:
    """A boolean mask over ``n`` rows from a mask, an index array, or None (every row)."""
    if candidates is None:
        return np.ones(n, dtype=bool)
    candidates = np.asarray(candidates)
    if candidates.dtype == bool:
        if candidates.shape != (n,):
            raise ValueError(f"candidates mask has shape {candidates.shape}; expected ({n},)")
        return candidates
    if not np.issubdtype(candidates.dtype, np.integer):
        raise ValueError(
            f"candidates must be a boolean mask or integer row positions, got {candidates.dtype}"
        )
    if candidates.size and (candidates.min() < 0 or candidates.max() >= n):
        raise ValueError(f"candidate row positions must lie in [0, {n})")
    mask = np.zeros(n, dtype=bool)
    mask[candidates] = True
    return mask


def check_matrix(value: Any, name: str, rows: int | None = None, cols: int | None = None
                 ) -> np.ndarray:
    """``value`` as a 2-D float array, checking its shape against ``rows`` / ``cols``."""
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x columns), got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows; expected {rows}")
    if cols is not None and arr.shape[1] != cols:
        raise ValueError(f"{name} has {arr.shape[1]} columns; expected {cols}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_probs(probs: Any, rows: int | None = None, name: str = "probs") -> np.ndarray:
    """Probabilities as an N x C float64 array in [0, 1] (a 1-D array is one class); NaN
    marks a missing output (an unreadable image): orders leave such rows out."""
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    arr = check_matrix(arr, name, rows)
    if np.nanmin(arr, initial=0.0) < 0 or np.nanmax(arr, initial=0.0) > 1 or np.isinf(arr).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1] (NaN for none)")
    return arr


def check_class(cls: Any, n_classes: int, order: str) -> int:
    """A class column index in ``[0, n_classes)``."""
    if cls is None:
        raise ValueError(f"order {order!r} needs a class: pass cls=<column index>")
    if not isinstance(cls, (int, np.integer)) or isinstance(cls, bool) or not 0 <= cls < n_classes:
        raise ValueError(f"cls must be a class column index in [0, {n_classes}), got {cls!r}")
    return int(cls)


def parse_enum(kind: type[E], value: object, name: str) -> E:
    """``kind(value)``, or ``ValueError`` listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise ValueError(f"unknown {name} {value!r}; allowed: {allowed}") from None
