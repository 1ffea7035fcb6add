"""The Session's sampling part (A1, A2): the queue of rows to label next, claimed for
this annotator on a team journal (see :mod:`.claims`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from patchwork_widget.active.duplicates import duplicate_group_ids, group_ranked, near_duplicate_groups
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
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.events import EventKind

_UNLABELED = Subset(SubsetKind.UNLABELED)


class Sampling:
    """The sample queue of a Session: which rows, where the view's cursor is, how they were
    chosen. Uses the context's table, store, claims and derived state."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.queue: list[int] = []
        self.cursor = 0  # position in the queue of the image on screen (the view reports it)
        self.sampled: dict[str, Any] = {}  # the subset, order and count of the current queue
        # A near-duplicates sample: row -> its group's number in the queue (1, 2, ...); the
        # rows of a group are consecutive. Empty for other subsets.
        self.groups: dict[int, int] = {}
        self._duplicates: tuple[Any, np.ndarray] | None = None  # (features, group per row)

    def sample(
        self, subset: Subset | Mapping[str, Any] = _UNLABELED,
        order: str | OrderChoice | Mapping[str, Any] = "random", count: int = 50,
    ) -> list[int]:
        """Implements ``Session.sample`` (documented there)."""
        ctx = self.context
        ctx.dispatcher.drain()
        if not isinstance(subset, Subset):
            subset = Subset.from_dict(subset)
        choice = OrderChoice.parse(order)
        if ctx.features is None and ctx.extraction.running and \
                "features" in ORDERS[choice.name].needs:
            raise ValueError(f"order {choice.title!r} needs the features: "
                             f"{ctx.extraction.progress_text()} are extracted so far; it is "
                             "offered once they all are (session.extraction.wait()), or "
                             "choose an order that needs none")
        arrays = self.order_inputs()
        disagree = (disagreeing_rows(ctx.store.history(), ctx.classes, len(ctx.df))
                    if subset.kind is SubsetKind.DISAGREEMENTS else None)
        duplicates = self.duplicate_ids() if subset.kind is SubsetKind.NEAR_DUPLICATES else None
        candidates = subset_mask(ctx.df, ctx.classes, subset, labels=arrays["labels"],
                                 unreadable=ctx.unreadable_mask(), disagreements=disagree,
                                 duplicates=duplicates)
        groups: list[np.ndarray] = []
        if duplicates is None:
            picked = rank(choice, candidates, count, rng=ctx.rng, classes=ctx.classes, **arrays)
        else:  # whole groups, each consecutive, in the order of their best-ranked row
            ranked = rank(choice, candidates, max(1, int(candidates.sum())), rng=ctx.rng,
                          classes=ctx.classes, **arrays)
            groups = group_ranked(ranked, duplicates, int(count))
            picked = np.concatenate(groups) if groups else np.empty(0, dtype=np.intp)
        if not len(picked) and candidates.any():
            raise ValueError(f"order {choice.title!r} can rank none of the {int(candidates.sum()):,} "
                             f"images in {subset.title!r}: {ORDERS[choice.name].leaves_out}")
        claimed = subset.kind in CLAIMED_KINDS and not ctx.store.read_only
        if claimed:
            picked = self.claim_ranked(picked, candidates, int(count), choice)
        else:
            ctx.claims.forget()
        if not ctx.store.read_only:  # rows no longer claimed for this queue go to others now
            ctx.claims.release(set(self.queue) - ({int(r) for r in picked} if claimed else set()))
        self.queue, self.cursor = [int(r) for r in picked], 0
        ctx.extraction.prioritize(self.queue)  # the images about to be labeled, first
        self.groups = {int(r): number for number, rows in enumerate(groups, 1) for r in rows}
        self.sampled = {"subset": subset.to_dict(), "order": choice.to_dict(), "count": int(count)}
        return self.queue

    def duplicate_ids(self) -> np.ndarray:
        """Each row's near-duplicate group (-1: none) from the session's features, found once
        per features array (:func:`~patchwork_widget.active.duplicates.near_duplicate_groups`
        at its default threshold)."""
        ctx = self.context
        if ctx.features is None:
            raise ValueError("the near-duplicates subset needs features: open the session with "
                             "features=... (pre-extracted) or extract them first")
        if self._duplicates is None or self._duplicates[0] is not ctx.features:
            n = len(ctx.df)
            groups = near_duplicate_groups(ctx.features, k=max(1, min(10, n - 1)))
            self._duplicates = (ctx.features, duplicate_group_ids(groups, n))
        return self._duplicates[1]

    def claim_ranked(self, picked: Sequence[int], candidates: np.ndarray, count: int,
                     order: str | OrderChoice | Mapping[str, Any]) -> list[int]:
        """Implements ``Session.claim_ranked`` (documented there)."""
        ctx = self.context
        arrays: dict[str, Any] = {}

        def more(remaining: np.ndarray, n: int) -> np.ndarray:
            if not arrays:  # gathered only when another annotator holds some of the rows
                arrays.update(self.order_inputs())
            return rank(order, remaining, n, rng=ctx.rng, classes=ctx.classes, **arrays)

        return ctx.claims.take(np.asarray(picked, dtype=np.intp), candidates, count, more)

    def set_queue(self, rows: Sequence[int]) -> None:
        """Replace the queue (e.g. re-ranked after an online round) and tell the views."""
        ctx = self.context
        self.queue = [int(r) for r in rows]
        ctx.emit(EventKind.QUEUE, source="queue")

    @property
    def orders(self) -> list[OrderChoice]:
        """The orders available now (model-based ones once their arrays cover every class)."""
        ctx = self.context
        return order_options(ctx.classes, available_orders(**self.order_inputs()))

    def order_inputs(self) -> dict[str, Any]:
        """The arrays the orders need, each present only if it fits the current classes."""
        ctx = self.context
        classes, derived = ctx.classes, ctx.derived
        arrays: dict[str, Any] = {
            # by column position: selecting by a list of names builds an Index every call,
            # the larger part of a sample's fixed cost at 10k rows
            "labels": ctx.df.iloc[:, [ctx.df.columns.get_loc(c) for c in classes]].to_numpy(
                dtype=float),
            "probs": derived.covering("predictions", classes),
            "heldout": derived.covering("out_of_fold", classes),
            "features": ctx.features,
            "embeddings": derived.embeddings,
            "propagation": derived.covering("propagation", classes),
            "cache": derived.cache,
        }
        return {name: value for name, value in arrays.items() if value is not None}
