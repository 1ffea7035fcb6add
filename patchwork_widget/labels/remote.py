"""What a store tells its :meth:`LabelStore.on_remote_change` callbacks, and when."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .records import CLASS_EDITS, Change

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteChange:
    """Changes by other stores of a team journal, now applied to the table.

    Attributes
    ----------
    actions
        How many actions (store calls) were applied.
    upto
        The id of the newest of them.
    annotators
        Who made them, sorted.
    class_edits
        Whether any was a class edit (the classes may have changed).
    """

    actions: int
    upto: int
    annotators: tuple[str, ...]
    class_edits: bool


def remote_change(changes: list[Change]) -> RemoteChange:
    """The :class:`RemoteChange` of applied actions (not none)."""
    return RemoteChange(
        actions=len(changes),
        upto=changes[-1].id,
        annotators=tuple(sorted({change.user for change in changes})),
        class_edits=any(change.kind in CLASS_EDITS for change in changes),
    )


class RemoteNews:
    """The callbacks of one store and the changes they have not heard of yet.

    The store calls :meth:`add` holding its lock and :meth:`deliver` after releasing it,
    so a callback never runs under the store's lock.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._callbacks: list[Callable[[RemoteChange], None]] = []
        self._unheard: list[RemoteChange] = []

    def subscribe(self, callback: Callable[[RemoteChange], None]) -> None:
        """Call ``callback`` for every later change."""
        if not callable(callback):
            raise ValueError(f"callback must be callable; got {callback!r}")
        with self._mutex:
            self._callbacks.append(callback)

    def add(self, changes: list[Change]) -> None:
        """Note applied changes (not none) for the next :meth:`deliver`."""
        with self._mutex:
            self._unheard.append(remote_change(changes))

    def deliver(self) -> None:
        """Call the callbacks for each change noted since the last delivery."""
        with self._mutex:
            unheard, self._unheard = self._unheard, []
            callbacks = list(self._callbacks)
        for change in unheard:
            for callback in callbacks:
                try:
                    callback(change)
                except Exception:  # the store stays usable; the callback's owner sees the log
                    log.exception("on_remote_change callback %r failed", callback)
