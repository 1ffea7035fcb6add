"""Online active learning (A6, B3): the model keeps learning while the user labels.

After every ``every`` new labels a training round starts in the background (warm-started: the
same model trains on, on a snapshot of the table taken when the round starts). When the round's
results are in place (on the owner thread, see :mod:`.background`), the round's validation
figures are recorded, the stop rule is checked, and the unlabeled part of the queue after the
cursor is re-ranked by the chosen order, with a share of random picks. Labels that arrive during
a round count towards the next one. Nothing here blocks labeling.

With pre-extracted features the rounds train in a worker process kept for the whole run
(:mod:`.round_worker`), so training never competes with message handling for the kernel's GIL;
on images they train in a thread of the kernel. The owner thread's share of a round is the same
either way: the snapshot when it starts, putting the predictions in place and re-ranking when it
ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from patchwork_widget.options.active import OnlineOptions
from patchwork_widget.options.checks import Choice, check_fields
from patchwork_widget.session.background import Report, Task
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.events import EventKind
from patchwork_widget.session.modeling import (
    Modeling,
    RoundRequest,
    TrainingOutcome,
    train_and_predict,
)
from patchwork_widget.session.round_worker import RoundProcess
from patchwork_widget.session.sampling import Sampling

logger = logging.getLogger(__name__)

# Rows after the cursor a re-ranking leaves in place: the view's grid page, which is on screen
# (the view reports its cursor a moment after it moves).
KEEP_AHEAD = 15


class RoundRunner(Choice):
    """Where rounds train: ``process`` (a worker process; needs pre-extracted features),
    ``thread`` (a thread of the kernel), ``auto`` (process when the session has features)."""

    AUTO = "auto"
    PROCESS = "process"
    THREAD = "thread"


class OnlineState(Choice):
    OFF = "off"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class OnlineRound:
    """Figures of one finished round."""

    round: int
    labels: int  # labeled training rows the round saw
    val_auc: float  # NaN without validation labels
    val_loss: float
    class_auc: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class OnlineLearner:
    """The online loop of one Session (use it through the Session's ``*_online`` methods).

    Its rounds are the ``modeling`` part's training runs; it re-ranks the ``sampling`` part's
    queue."""

    def __init__(self, context: SessionContext, sampling: Sampling, modeling: Modeling) -> None:
        self.context = context
        self.sampling = sampling
        self.modeling = modeling
        self.options: OnlineOptions | None = None
        self.state = OnlineState.OFF
        self.rounds: list[OnlineRound] = []
        self.labels_since = 0  # labels given since the running model last saw the table
        self.reason = ""  # why it stopped
        self.job: Task | None = None
        self.worker: RoundProcess | None = None  # the run's worker process, if it has one
        self._class_auc: dict[str, float] = {}  # of the last round, set where it trained
        self._started = 0.0

    # ------------------------------------------------------------------ control
    def start(self, options: OnlineOptions, runner: RoundRunner | str = RoundRunner.AUTO) -> None:
        ctx = self.context
        runner = RoundRunner.parse(runner, "runner")
        if runner is RoundRunner.PROCESS and ctx.features is None:
            raise ValueError("runner 'process' needs pre-extracted features (features=...); "
                             "on images use runner 'thread' or 'auto'")
        if self.state in (OnlineState.RUNNING, OnlineState.PAUSED):
            raise ValueError("online learning is already on: stop it first, or pause / resume it")
        model = ctx.derived.model
        if model is None:
            self.modeling.build_model()
        elif list(model.classes) != ctx.classes:
            raise ValueError("the model was built for other classes: build it again (build_model)")
        self.options, self.state, self.reason = options, OnlineState.RUNNING, ""
        self.rounds, self.labels_since = [], 0
        if runner is RoundRunner.PROCESS or (runner is RoundRunner.AUTO and ctx.features is not None):
            self.worker = RoundProcess(ctx.features)
            self.worker.warm()
        self._start_round()
        self._tell()

    def pause(self) -> None:
        """No new rounds until :meth:`resume`; a round already going finishes and is used."""
        self._require(OnlineState.RUNNING, "pause")
        self.state = OnlineState.PAUSED
        self._tell()

    def resume(self) -> None:
        self._require(OnlineState.PAUSED, "resume")
        self.state = OnlineState.RUNNING
        self._maybe_start()
        self._tell()

    def stop(self, reason: str = "stopped by the user") -> None:
        """Stop for good (the model keeps its last completed round); a running round is
        cancelled."""
        if self.state in (OnlineState.OFF, OnlineState.STOPPED):
            return
        self.state, self.reason = OnlineState.STOPPED, reason
        if self.job is not None and not self.job.done():
            self.job.cancel()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        logger.info("online learning stopped: %s", reason)
        self._tell()

    def _require(self, state: OnlineState, action: str) -> None:
        if self.state is not state:
            raise ValueError(f"cannot {action} online learning: it is {self.state.value}")

    # ------------------------------------------------------------------ rounds
    def labels_changed(self, count: int) -> None:
        """``count`` labels were given (on the owner thread)."""
        self.labels_since += count
        self._maybe_start()

    def _maybe_start(self) -> None:
        if (self.state is OnlineState.RUNNING and self.options is not None
                and self.labels_since >= self.options.every
                and (self.job is None or self.job.done())):
            self._start_round()

    def _start_round(self) -> None:
        ctx, options = self.context, self.options
        assert options is not None
        from patchwork_widget.active.registry import ORDERS

        if not int(ctx.store.counts[["train_positive", "train_negative"]].to_numpy().sum()):
            return  # nothing to learn from yet: the first training label starts a round
        needs = ORDERS[options.order.name].needs
        try:
            self.job = self.modeling.train(options.train, update_embeddings="embeddings" in needs,
                                     on_done=self._round_done,
                                     runner=partial(self._train_round, self.worker))
        except ValueError as err:  # e.g. no training labels yet: wait for more
            logger.info("online round not started: %s", err)
            return
        self.labels_since = 0
        self._started = time.perf_counter()

    def _train_round(self, worker: RoundProcess | None, model: Any, request: RoundRequest,
                     inputs: dict[str, Any], cancel: threading.Event, report: Report
                     ) -> TrainingOutcome:
        """A round, in the training thread: in ``worker`` or in this thread, with the
        validation AUC per class computed there too (not on the owner thread)."""
        run = train_and_predict if worker is None else worker.run
        outcome = run(model, replace(request, class_auc=True), inputs, cancel, report)
        self._class_auc = outcome.class_auc  # read by _round_done, posted after this returns
        return outcome

    def _round_done(self, task: Task) -> None:
        if self.state is OnlineState.OFF:
            return
        error = task.exception()
        if error is not None:
            self.stop(f"round {len(self.rounds) + 1} failed: {error}")
            return
        result = task.result()
        if result.cancelled:
            return
        if result.stopped:  # a NaN loss: the model kept its last good epoch
            self.stop(f"round {len(self.rounds) + 1} failed: {result.stopped}")
            return
        history = result.history
        last = history.iloc[-1] if len(history) else {}
        labels = int(self.context.store.counts[["train_positive", "train_negative"]].to_numpy().sum())
        self.rounds.append(OnlineRound(
            round=len(self.rounds) + 1, labels=labels,
            val_auc=float(last.get("val_auc", math.nan)), val_loss=float(last.get("val_loss", math.nan)),
            class_auc=self._class_auc, seconds=time.perf_counter() - self._started))
        unlabeled = self._unlabeled()
        reason = self._stop_reason(unlabeled)
        if reason:
            self.stop(reason)
        else:
            self.rerank(unlabeled)
            self._maybe_start()
        self._tell()

    def _stop_reason(self, unlabeled: np.ndarray) -> str:
        rule, last = self.options.stop, self.rounds[-1]
        if rule.macro_auc is not None and last.val_auc >= rule.macro_auc:
            return f"validation macro AUC {last.val_auc:.3f} reached {rule.macro_auc}"
        if rule.class_auc and all(last.class_auc.get(c, -1.0) >= t for c, t in rule.class_auc.items()):
            return "every class reached its validation AUC threshold"
        if rule.all_labeled and not unlabeled.any():
            return "every image of the subset is labeled"
        return ""

    # ------------------------------------------------------------------ the queue
    def _unlabeled(self) -> np.ndarray:
        """The subset's unlabeled rows (a mask)."""
        from patchwork_widget.active.subsets import subset_mask
        from patchwork_widget.labels.groups import labeled_classes

        ctx = self.context
        mask = subset_mask(ctx.df, ctx.classes, self.options.subset)
        mask &= labeled_classes(ctx.df, ctx.classes) == 0
        return mask

    def rerank(self, unlabeled: np.ndarray | None = None) -> list[int]:
        """Re-rank the queue after the cursor: the rows up to the cursor and the next
        :data:`KEEP_AHEAD` stay as they are, the rest is the subset's unlabeled rows in the
        chosen order (with random picks). ``unlabeled``: the subset's unlabeled rows, when
        already at hand."""
        from patchwork_widget.active.registry import rank

        ctx, sampling = self.context, self.sampling
        keep = sampling.queue[: sampling.cursor + 1 + KEEP_AHEAD]
        candidates = self._unlabeled() if unlabeled is None else unlabeled.copy()
        candidates[np.asarray(keep, dtype=np.intp)] = False
        if not candidates.any():
            return sampling.queue
        picked = rank(self.options.order, candidates, self.options.count, rng=ctx.rng,
                      classes=ctx.classes, **sampling.order_inputs())
        if not ctx.store.read_only:  # on a team journal: rows another annotator holds
            picked = sampling.claim_ranked(picked, candidates, self.options.count,  # give way
                                           self.options.order)
        sampling.set_queue(keep + [int(r) for r in picked])
        return sampling.queue

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "rounds": len(self.rounds),
            "labels_since_update": self.labels_since,
            "training": self.job is not None and not self.job.done(),
            "runner": "thread" if self.worker is None else "process",
            "reason": self.reason,
            "history": [vars(r) for r in self.rounds],
        }

    def _tell(self) -> None:
        self.context.emit(EventKind.ONLINE, payload=self.status(), source="online")


def online_options(options: OnlineOptions | Mapping[str, Any] | None,
                   fields: Mapping[str, Any]) -> OnlineOptions:
    """``OnlineOptions`` from an instance, a dict of its fields, or keyword ``fields`` (one
    of them, not both)."""
    if options is not None and fields:
        raise ValueError("give OnlineOptions or keyword fields, not both")
    if isinstance(options, OnlineOptions):
        return options
    values = dict(options or {}, **fields)
    check_fields(OnlineOptions, values, "online")
    return OnlineOptions(**values)
