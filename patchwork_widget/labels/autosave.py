"""Keep a store's export file current in the background (FEATURES L4, W: "no Save needed").

:class:`Autosave` runs one daemon thread per store. The store calls :meth:`Autosave.changed`
after each acknowledged change (it only notes the time, so it never blocks an annotate
call); the thread calls the store's export function once the changes have been quiet for
``delay`` seconds, or at the latest ``max_wait`` seconds after the first change not yet
exported, so a steady stream of clicks still reaches the file. After each export the thread
rests :data:`BACKOFF` times as long as that export took, so that exports of a big table
take at most a quarter of the time, however busy the machine. A failed export is retried
after ``max_wait`` seconds. :class:`ExportState` is what the view shows.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

#: States of :class:`ExportState`.
EXPORTED, PENDING, FAILED = "exported", "pending", "failed"

#: An export starts at the latest this many seconds after the first unexported change
#: (or after the rest that follows the previous export, if that ends later).
MAX_WAIT = 5.0

#: After an export of ``d`` seconds, the next one starts no sooner than ``BACKOFF * d``
#: seconds after it ended.
BACKOFF = 3.0


@dataclass(frozen=True)
class ExportState:
    """Whether the export file holds the store's current table.

    Attributes
    ----------
    state
        ``"exported"`` (the file holds every acknowledged change), ``"pending"`` (changes
        are durable in the journal but not yet in the file) or ``"failed"`` (the last
        export raised; ``error`` says why; it is retried).
    path
        The export file.
    exported_at
        UTC epoch seconds when the file last received the store's table (None: never,
        in this session, and the file was not known to be current at open).
    changed_at
        UTC epoch seconds of the oldest acknowledged change not in the file (None when
        ``state`` is ``"exported"``).
    error
        The last export error, as text (None unless ``state`` is ``"failed"``).
    """

    state: str
    path: str
    exported_at: float | None
    changed_at: float | None
    error: str | None

    def as_dict(self) -> dict:
        """The state as a JSON-ready dict (for the widget)."""
        return asdict(self)


def check_delay(delay: float | None) -> float | None:
    """Validate the ``autosave`` argument: None (off) or seconds, finite and >= 0."""
    if delay is None:
        return None
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        if math.isfinite(delay) and delay >= 0:
            return float(delay)
    raise ValueError(
        f"autosave must be None (export only on export()/close()) or a number of seconds "
        f">= 0; got {delay!r}"
    )


class Autosave:
    """A debounced background caller of ``export``.

    Parameters
    ----------
    export
        Writes the export file; returns True on success. Called on the autosave thread.
    delay
        Quiet seconds after the last change before exporting.
    name
        For the thread's name (shown by debuggers and logs).
    max_wait
        Longest wait after the first unexported change (at least ``delay``; default
        :data:`MAX_WAIT`).
    """

    def __init__(
        self,
        export: Callable[[], bool],
        delay: float,
        name: str,
        max_wait: float | None = None,
    ) -> None:
        self._export = export
        self._delay = delay
        self._max_wait = max(MAX_WAIT if max_wait is None else max_wait, delay)
        self._backoff = BACKOFF
        self._cond = threading.Condition()
        self._first: float | None = None  # monotonic time of the first unexported change
        self._last = 0.0  # monotonic time of the last change
        self._rest_until = 0.0  # monotonic time before which no export starts (BACKOFF)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"autosave {name}", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        """Note an acknowledged change: an export follows within ``max_wait`` seconds."""
        now = time.monotonic()
        with self._cond:
            self._last = now
            if self._first is None:
                self._first = now
            self._cond.notify()

    def stop(self) -> None:
        """Stop the thread; an export in progress finishes first. Idempotent."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _due(self) -> float:
        quiet_or_late = min(self._last + self._delay, self._first + self._max_wait)
        return max(quiet_or_late, self._rest_until)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    self._first is None or time.monotonic() < self._due()
                ):
                    timeout = None if self._first is None else self._due() - time.monotonic()
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                self._first = None
            start = time.monotonic()
            try:
                ok = self._export()
            except Exception:  # the store records the cause; the thread must live on
                log.exception("background export failed")
                ok = False
            end = time.monotonic()
            with self._cond:
                self._rest_until = end + self._backoff * (end - start)
            if not ok:
                with self._cond:  # retry later, not in a tight loop
                    retry = time.monotonic() + self._max_wait - self._delay
                    self._last = max(self._last, retry)
                    if self._first is None:
                        self._first = time.monotonic()
