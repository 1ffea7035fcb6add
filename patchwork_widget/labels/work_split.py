"""Claims on rows of a team journal: which annotator labels what now (the
:class:`WorkSplit` part of :class:`.store.LabelStore`; the server side is :mod:`.pg_claims`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .arguments import check_claim, check_rows
from .journal import Journal
from .table import LiveTable


class WorkSplit:
    """``claim`` and ``release`` (mixed into ``LabelStore``, whose ``__init__`` sets these
    attributes)."""

    _journal: Journal
    _table: LiveTable
    _lock: threading.RLock
    _check_writable: Callable[[], None]  # StoreFiles': refuses a closed or read-only store

    def claim(
        self, candidates: Iterable[int], n: int, lease: float = 300.0, overlap: float = 0.0
    ) -> list[int]:
        """Up to ``n`` of ``candidates`` (row labels, in the order to label them) for this
        annotator to label now, split from the other annotators' (team journal).

        Rows another annotator holds an unexpired claim on are skipped; the rows handed
        out are claimed for ``lease`` seconds (claim again to renew; a dead notebook's
        claims expire, and close releases them). Up to ``overlap * n`` of them may be rows
        exactly one other annotator holds, so that two label them (for agreement). With
        the SQLite journal (one annotator) this is the first ``n`` candidates.

        Raises
        ------
        ValueError
            For an unknown row, a repeated row, or ``n``, ``lease``, ``overlap`` out of range.
        """
        n, lease, overlap = check_claim(n, lease, overlap)
        candidates = list(candidates)
        with self._lock:
            self._check_writable()
            if not candidates or n == 0:
                return []
            rows = check_rows(candidates, len(self._table.df)).tolist()
            return self._journal.claim(rows, n, lease, overlap)

    def release(self, rows: Iterable[int]) -> None:
        """Give up this annotator's claims on ``rows`` (row labels) on a team journal, so
        other annotators may be handed them at once rather than when the lease ends; rows
        not claimed are ignored. Nothing to do with the SQLite journal.

        Raises
        ------
        ValueError
            For an unknown or repeated row.
        """
        rows = list(rows)
        with self._lock:
            self._check_writable()
            if rows:
                self._journal.release(check_rows(rows, len(self._table.df)).tolist())
