"""Close every writing store still open when the interpreter exits (so its export file
is current and its journal compacted, FEATURES L4)."""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Protocol

log = logging.getLogger(__name__)


class _Closable(Protocol):
    path: object

    def close(self) -> None: ...


_open: weakref.WeakSet[_Closable] = weakref.WeakSet()


def track(store: _Closable) -> None:
    """Close ``store`` at exit unless it was closed before."""
    _open.add(store)


def forget(store: _Closable) -> None:
    """``store`` is closed (or no longer writes): nothing to do at exit."""
    _open.discard(store)


@atexit.register
def close_all() -> None:
    """Close every tracked store; one that fails does not keep the others open."""
    for store in list(_open):
        try:
            store.close()
        except Exception:  # logged; the next store must still close
            log.exception("could not close %s at exit", store.path)
