"""Hear other annotators' commits on a team journal (LISTEN/NOTIFY, issue 16).

A :class:`Listener` runs one daemon thread with its own connection, listening on
:data:`.pg_schema.CHANNEL`. Notifications are wake-ups, not data: for each batch that
names its project and another session it calls ``on_change`` once, which reads every
action after the last one the store holds (so a burst of commits costs one read, and a
lost notification is made up by the next). After (re)connecting it calls ``on_change``
too, for commits made while it was not listening; if the server goes away it reconnects
every :data:`RETRY_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg

from .errors import JournalUnavailableError
from .pg_schema import CHANNEL, connect, describe

log = logging.getLogger(__name__)

#: Seconds between reconnection attempts, and the longest wait for a stop request.
RETRY_SECONDS = 0.5


class Listener:
    """Call ``on_change`` soon after another session commits to ``project`` at ``url``.

    ``on_change`` runs on the listener thread; an exception it raises is logged and the
    call is repeated after :data:`RETRY_SECONDS`.
    """

    def __init__(
        self, url: str, project: str, session: str, on_change: Callable[[], None]
    ) -> None:
        self._url = url
        self._project = project
        self._session = session
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"journal listener {project}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within :data:`RETRY_SECONDS`); idempotent."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _wanted(self, payload: str) -> bool:
        try:
            note = json.loads(payload)
        except ValueError:
            return False
        return note.get("project") == self._project and note.get("session") != self._session

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listen(conn)
            except (psycopg.OperationalError, JournalUnavailableError) as error:
                log.warning(
                    "listening to %s stopped (%s); reconnecting",
                    describe(self._url), type(error).__name__,
                )
                self._stop.wait(RETRY_SECONDS)

    def _listen(self, conn: psycopg.Connection) -> None:
        due = True  # catch up on commits made before LISTEN took effect
        while not self._stop.is_set():
            if due:
                due = not self._call()
            notes = conn.notifies(timeout=RETRY_SECONDS, stop_after=1)
            due = any([self._wanted(note.payload) for note in notes]) or due

    def _call(self) -> bool:
        """Call ``on_change``; return whether it succeeded."""
        try:
            self._on_change()
        except JournalUnavailableError as error:  # the server is away: said once per try
            log.warning("could not read other annotators' changes (%s); retrying", error)
            return False
        except Exception:  # logged; the thread must live on and retry
            log.exception("applying other annotators' changes failed; retrying")
            return False
        return True
