"""The Session's sampling methods (A1, A2): the queue of rows to label next, claimed for
this annotator on a team journal (see :mod:`.claims`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from patchwork_widget.active.registry import (
    ORDERS,
    OrderChoice,
    available_orders,
    order_options,
    rank,
)
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask
from patchwork_widget.labels.agreement import disagreeing_rows
from patchwork_widget.session.claims import CLAIMED_KINDS
from patchwork_widget.session.events import EventKind

if TYPE_CHECKING:
    from patchwork_widget.session.core import Session

_UNLABELED = Subset(SubsetKind.UNLABELED)


class SamplingMethods:
    """Mixed into :class:`~.core.Session`; uses its table, store, claims and derived state."""

    def sample(
        self: Session, subset: Subset | Mapping[str, Any] = _UNLABELED,
        order: str | OrderChoice | Mapping[str, Any] = "random", count: int = 50,
    ) -> list[int]:
        """Fill the queue with ``count`` rows of ``subset`` in ``order`` (A1, A2).

        ``order`` is an order name, an ``OrderChoice`` (name and class) or its dict form.
        Sampling rows still to label (unlabeled, unlabeled for a class, partially labeled)
        claims them in the store (see ``claim_lease``): on a team journal, rows other
        annotators hold are replaced by the next ones in the order. The claims on the
        previous queue's rows that the new queue does not claim are given up.
        """
        self.dispatcher.drain()
        if not isinstance(subset, Subset):
            subset = Subset.from_dict(subset)
        choice = OrderChoice.parse(order)
        arrays = self._order_inputs()
        disagree = (disagreeing_rows(self.store.history(), self.classes, len(self.df))
                    if subset.kind is SubsetKind.DISAGREEMENTS else None)
        candidates = subset_mask(self.df, self.classes, subset, labels=arrays["labels"],
                                 unreadable=self.unreadable_mask(), disagreements=disagree)
        picked = rank(choice, candidates, count, rng=self._rng, classes=self.classes, **arrays)
        if not len(picked) and candidates.any():
            raise ValueError(f"order {choice.title!r} can rank none of the {int(candidates.sum()):,} "
                             f"images in {subset.title!r}: {ORDERS[choice.name].leaves_out}")
        claimed = subset.kind in CLAIMED_KINDS and not self.store.read_only
        if claimed:
            picked = self.claim_ranked(picked, candidates, int(count), choice)
        else:
            self.claims.forget()
        if not self.store.read_only:  # rows no longer claimed for this queue go to others now
            self.claims.release(set(self.queue) - ({int(r) for r in picked} if claimed else set()))
        self.queue, self.cursor = [int(r) for r in picked], 0
        self.sampled = {"subset": subset.to_dict(), "order": choice.to_dict(), "count": int(count)}
        return self.queue

    def claim_ranked(self: Session, picked: Sequence[int], candidates: np.ndarray, count: int,
                     order: str | OrderChoice | Mapping[str, Any]) -> list[int]:
        """Claim ``count`` rows for this annotator (see ``claim_lease``): ``picked``, the
        ranked rows of the ``candidates`` mask, with rows another annotator holds replaced
        by the next ones ``order`` ranks. With the SQLite journal: ``picked`` itself."""
        arrays = self._order_inputs()

        def more(remaining: np.ndarray, n: int) -> np.ndarray:
            return rank(order, remaining, n, rng=self._rng, classes=self.classes, **arrays)

        return self.claims.take(np.asarray(picked, dtype=np.intp), candidates, count, more)

    def set_queue(self: Session, rows: Sequence[int]) -> None:
        """Replace the queue (e.g. re-ranked after an online round) and tell the views."""
        self.queue = [int(r) for r in rows]
        self._emit(EventKind.QUEUE, source="queue")

    @property
    def orders(self: Session) -> list[OrderChoice]:
        """The orders available now (model-based ones once their arrays cover every class)."""
        return order_options(self.classes, available_orders(**self._order_inputs()))

    def _order_inputs(self: Session) -> dict[str, Any]:
        """The arrays the orders need, each present only if it fits the current classes."""
        classes, derived = self.classes, self.derived
        arrays: dict[str, Any] = {
            "labels": self.df[classes].to_numpy(dtype=float),
            "probs": derived.covering("predictions", classes),
            "features": self.features,
            "embeddings": derived.embeddings,
            "scores": derived.covering("propagation", classes),
            "cache": derived.cache,
        }
        return {name: value for name, value in arrays.items() if value is not None}
