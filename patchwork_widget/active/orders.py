"""Sampling orders: pure functions that rank candidate rows (FEATURES A2).

Every order has one signature::

    order(candidates, *, rng, **arrays) -> np.ndarray

``candidates`` is a boolean mask over all N rows; the result holds candidate row positions,
best first. Model-based orders take the arrays they need (e.g. ``probs``) as keywords and
raise ``ValueError`` naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Order = Callable[..., np.ndarray]


def random_order(candidates: np.ndarray, *, rng: np.random.Generator, **_: Any) -> np.ndarray:
    """Candidates in uniformly random order."""
    index = np.flatnonzero(candidates)
    return rng.permutation(index)


ORDERS: dict[str, Order] = {"random": random_order}


def rank(
    order: str,
    candidates: np.ndarray,
    count: int,
    *,
    rng: np.random.Generator,
    **arrays: Any,
) -> np.ndarray:
    """The first ``count`` candidates under the named order."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; available: {', '.join(ORDERS)}")
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    return ORDERS[order](np.asarray(candidates, dtype=bool), rng=rng, **arrays)[:count]
