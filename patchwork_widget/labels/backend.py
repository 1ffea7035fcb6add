"""The journal interface a :class:`~.store.LabelStore` is written against (FEATURES L4, B8).

Two backends implement it: :class:`~.journal.Journal` (SQLite beside the export file, one
writer) and :class:`~.pg_journal.PgJournal` (a project on a PostgreSQL server, several
annotators). The store, its exports and its opening know only :class:`JournalBackend`;
``tests/unit/test_labels_backend.py`` checks that both classes have every member with the same
signature, so a change to one backend that the other lacks fails there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol

import pandas as pd

from .records import Change, Event


class JournalBackend(Protocol):
    """Durable, append-only storage of one label table: a snapshot plus the actions after it.

    Attributes
    ----------
    where : str
        The journal in full, for messages (a file path, or server and project).
    name : str
        The journal, short, for messages.
    shared : bool
        Whether several stores write it at once (a team journal).
    user : str
        The annotator recorded on every action written through this object.
    session : str
        Recorded on every action; tells this store's own actions from others'.
    """

    where: str
    name: str
    shared: bool
    user: str
    session: str

    def initialised(self) -> bool:
        """Whether the journal is complete (its creation committed)."""
        ...

    def create(self, df: pd.DataFrame) -> bool:
        """Create the journal with ``df`` as its base snapshot, atomically; return whether
        this call created it (another writer may have been first)."""
        ...

    def load_snapshot(self) -> tuple[pd.DataFrame, int]:
        """The snapshot table and the id of the last action folded into it."""
        ...

    def write_snapshot(self, df: pd.DataFrame, upto_action: int, applied: int) -> bool:
        """Replace the snapshot with ``df``, the table after ``upto_action``, if ``df``
        holds every action (``applied`` of them since the snapshot); return whether it was
        written."""
        ...

    def writing(self, after: int) -> AbstractContextManager[list[Change] | None]:
        """Hold the right to append across a change's validation and :meth:`append`;
        yields the actions other writers committed after ``after`` (None if none)."""
        ...

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` (on another thread) when another writer commits."""
        ...

    def unwatch(self) -> None:
        """Stop :meth:`watch`; idempotent."""
        ...

    def append(
        self,
        kind: str,
        events: Iterable[Event],
        seconds: float | None = None,
        detail: dict | None = None,
        undoes: int | None = None,
    ) -> int:
        """Write one action and its cell events durably (inside :meth:`writing`); return
        the action's id."""
        ...

    def record_export(self, upto_action: int, size: int, mtime_ns: int) -> None:
        """Note that the export file (``size`` bytes, ``mtime_ns``) holds the table after
        ``upto_action``."""
        ...

    def export_record(self) -> dict | None:
        """The last :meth:`record_export` (``upto``, ``size``, ``mtime_ns``, ``time``)."""
        ...

    def first_action_time(self, after: int) -> float | None:
        """The time of the oldest action with id > ``after`` (None if there is none)."""
        ...

    def pending(self, after: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Actions with id > ``after`` and their events, both in order."""
        ...

    def changes_after(self, after: int) -> list[Change]:
        """The actions with id > ``after`` as :class:`~.records.Change` objects, in order."""
        ...

    def action_events(self, action: int) -> list[Event]:
        """The cell events of one action, in order."""
        ...

    def last_action(self) -> int:
        """The id of the newest action, 0 if none."""
        ...

    def details(self, kind: str) -> list[dict]:
        """The details of every action of ``kind``, oldest first."""
        ...

    def undo_stack(self) -> list[int]:
        """This annotator's annotate actions after the last class edit that are not undone,
        oldest first."""
        ...

    def read_history(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """All actions and all events, as stored."""
        ...

    def claim(self, candidates: list[int], n: int, lease: float, overlap: float) -> list[int]:
        """Up to ``n`` of ``candidates`` for this annotator to label now (see
        :meth:`.store.LabelStore.claim`)."""
        ...

    def release(self, rows: list[int]) -> None:
        """Give up this annotator's claims on ``rows``."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...
