"""The sample queue on a team journal: rows this annotator claims (issue 16, work split).

Sampling a subset of rows still to label (:data:`CLAIMED_KINDS`) hands the ranked rows to
:meth:`LabelStore.claim`, which skips rows another annotator holds, so two annotators
sampling at once get different images (up to the ``overlap`` share, labeled by two for
agreement). Rows the claim refuses are replaced by the next ranked ones until the queue
is full or the subset is exhausted. While the annotator labels, the claims on the rest of
the queue are renewed (at most every half lease), so only a notebook that stops labeling
loses them. With the SQLite journal (one annotator) ``claim`` hands out every row asked
for, so the queue is exactly the ranked sample.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from patchwork_widget.active.subsets import SubsetKind
from patchwork_widget.labels import LabelStore
from patchwork_widget.labels.errors import JournalUnavailableError
from patchwork_widget.options.project import DEFAULT_LEASE, DEFAULT_OVERLAP, ProjectOptions

logger = logging.getLogger(__name__)

#: Subsets of rows still to label: sampling them claims the rows.
CLAIMED_KINDS = (SubsetKind.UNLABELED, SubsetKind.UNLABELED_FOR, SubsetKind.PARTIAL)


#: ``more(remaining, n)``: the next ``n`` ranked rows among the ``remaining`` mask.
Ranker = Callable[[np.ndarray, int], np.ndarray]


class QueueClaims:
    """This annotator's claims on the session's queue.

    Parameters
    ----------
    store
        The label store (team journal or SQLite).
    lease
        Seconds a claim lasts without renewal (> 0).
    overlap
        Share of a sample (0 to 1) that may be rows exactly one other annotator holds.
    """

    def __init__(self, store: LabelStore, lease: float = DEFAULT_LEASE,
                 overlap: float = DEFAULT_OVERLAP) -> None:
        self.store = store
        declared = ProjectOptions.CONSTRAINTS
        self.lease = declared["claim_lease"].check("claim_lease", lease)
        self.overlap = declared["claim_overlap"].check("claim_overlap", overlap)
        self._mutex = threading.Lock()
        self._claimed_at: float | None = None  # monotonic time of the last claim; None: none held

    def take(self, first: np.ndarray, candidates: np.ndarray, count: int, more: Ranker) -> list[int]:
        """Claim ``count`` rows: ``first`` (the ranked sample of the boolean ``candidates``
        mask), then, for rows another annotator holds, the next ones ``more`` ranks.

        The overlap share is offered on the first ranked rows only (so it is never
        exceeded). Returns the claimed rows in ranked order.
        """
        remaining = np.asarray(candidates, dtype=bool).copy()
        picked, overlap, queue = np.asarray(first, dtype=np.intp), self.overlap, []
        while len(picked):
            queue += self.store.claim(picked.tolist(), count - len(queue), self.lease, overlap)
            remaining[picked] = False
            if len(queue) >= count or not remaining.any():
                break
            overlap = 0.0
            picked = np.asarray(more(remaining, 2 * (count - len(queue))), dtype=np.intp)
        with self._mutex:
            self._claimed_at = time.monotonic()
        return queue

    def forget(self) -> None:
        """The queue is no longer claimed (e.g. sampled from a subset of labeled rows)."""
        with self._mutex:
            self._claimed_at = None

    def release(self, rows: Sequence[int]) -> None:
        """Give up the claims on ``rows`` (those that left the queue), so other annotators
        get them now. A server that cannot be reached is logged, not raised: the claims then
        end with their lease."""
        rows = sorted({int(r) for r in rows})
        if not rows:
            return
        try:
            self.store.release(rows)
        except JournalUnavailableError as error:
            logger.warning("claims not released (%s); they end with their lease", error)

    def renew(self, rows: Sequence[int]) -> None:
        """Renew the claims on ``rows`` (the rest of the queue) if half the lease has passed
        since the last claim. A server that cannot be reached is logged, not raised: the
        labels were saved, and the next call tries again."""
        with self._mutex:
            due = self._claimed_at is not None and (
                time.monotonic() - self._claimed_at >= self.lease / 2)
            if not due:
                return
            self._claimed_at = time.monotonic()
        rows = list(dict.fromkeys(int(r) for r in rows))
        if not rows:
            return
        try:
            self.store.claim(rows, len(rows), self.lease, self.overlap)
        except JournalUnavailableError as error:
            logger.warning("claims not renewed (%s); trying again at the next label", error)
            with self._mutex:
                self._claimed_at = 0.0  # due again at once
