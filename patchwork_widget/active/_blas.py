"""The BLAS thread pools of the active-learning loops.

The pick-by-pick loops (BADGE, diversity, core-set) run one small matrix product per pick; a
threaded BLAS waiting for a busy core made them up to 10 times slower on a shared machine, so
they run with one BLAS thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _controller() -> ThreadpoolController:
    """The BLAS libraries' thread pools, found once (finding them takes milliseconds)."""
    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager:
    """A context in which BLAS calls use one thread."""
    return _controller().limit(limits=1, user_api="blas")


def with_one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run under :func:`one_blas_thread`."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_blas_thread():
            return fn(*args, **kwargs)

    return wrapped
