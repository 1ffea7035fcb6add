"""Online active learning (A6, B3): the model keeps learning while the user labels.

After every ``every`` newly labeled images (an image counts once however many classes it got)
a training round starts in the background (warm-started: the same model trains on, on a
snapshot of the table taken when the round starts). When no validation row of the snapshot
holds a label, the round holds out ``holdout`` of the labeled training images as validation
rows of its snapshot (:func:`~patchwork_widget.labels.groups.holdout_mask`: the same images
every round; the table is not changed), so every round has validation figures. When the round's
results are in place (on the owner thread, see :mod:`.background`), the round's validation
figures are recorded, the stop rule is checked, and the unlabeled part of the queue after the
cursor is re-ranked by the chosen order, with a share of random picks, if online mode ranked
that queue (or started on it): a queue the user set since (more like this, a jump, a new
sample) is kept until :meth:`OnlineLearner.rerank_now`. Labels that arrive during a round count
towards the next one. Nothing here blocks labeling.

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

from patchwork_widget.active.online import OnlineOptions
from patchwork_widget.labels.groups import holdout_mask, labeled_classes, train_mask
from patchwork_widget.options.checks import Choice, check_fields
from patchwork_widget.session.background import Cancelled, Report, Task
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.events import EventKind
from patchwork_widget.session.modeling import (
    Modeling,
    RoundRequest,
    TrainingOutcome,
    snapshot_classes,
    train_and_predict,
)
from patchwork_widget.session.round_worker import RoundProcess
from patchwork_widget.session.sampling import Sampling

logger = logging.getLogger(__name__)

# Rows after the cursor a re-ranking leaves in place: the view's grid page, which is on screen
# (the view reports its cursor a moment after it moves).
KEEP_AHEAD = 15


class RoundRunner(Choice):
    """Where rounds train: ``process`` (a worker process, every round; needs pre-extracted
    features), ``thread`` (a thread of the kernel), ``auto`` (with features, the worker
    process once it has started and a thread until then; without, a thread)."""

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
    images: int  # labeled training images the round trained on
    val_auc: float  # NaN without labeled validation rows
    val_loss: float
    class_auc: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    held_out: int = 0  # labeled images held out as validation rows (none of the user's)


@dataclass(frozen=True)
class _Trained:
    """What a round's training thread found besides the outcome (read by ``_round_done``)."""

    class_auc: dict[str, float]
    images: int
    held_out: int


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
        self.images_since = 0  # images labeled since the running model last saw the table
        self.reason = ""  # why it stopped
        self.job: Task | None = None
        self.worker: RoundProcess | None = None  # the run's worker process, if it has one
        self._thread_while_starting = True  # runner "auto": rounds need not wait for the worker
        self._trained = _Trained({}, 0, 0)  # of the last round, set where it trained
        self._ranked: list[int] = []  # the queue online mode may re-rank (it ranked or started on it)
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
        self.rounds, self.images_since = [], 0
        self._ranked = list(self.sampling.queue)  # the queue it starts on is its to re-rank
        if runner is RoundRunner.PROCESS or (runner is RoundRunner.AUTO and ctx.features is not None):
            self.worker = RoundProcess(ctx.features)
            self.worker.warm()
        self._thread_while_starting = runner is RoundRunner.AUTO
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
    def images_labeled(self, count: int) -> None:
        """``count`` images were given class values (on the owner thread)."""
        self.images_since += count
        self._maybe_start()

    def _maybe_start(self) -> None:
        if (self.state is OnlineState.RUNNING and self.options is not None
                and self.images_since >= self.options.every
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
                                     runner=partial(self._train_round, self.worker, options.holdout))
        except ValueError as err:  # e.g. no training labels yet: wait for more
            logger.info("online round not started: %s", err)
            return
        self.images_since = 0
        self._started = time.perf_counter()

    def _train_round(self, worker: RoundProcess | None, holdout: float, model: Any,
                     request: RoundRequest, inputs: dict[str, Any], cancel: threading.Event,
                     report: Report) -> TrainingOutcome:
        """A round, in the training thread: in ``worker`` or in this thread, with the
        validation AUC per class computed there too (not on the owner thread). Without labeled
        validation rows, the ``holdout`` share of the labeled training images is held out as
        validation rows of the round's snapshot. While the worker is still starting (loading
        TensorFlow takes seconds, more on a busy machine) the round trains in this thread with
        runner ``auto``, so the first rounds need not wait for it; with runner ``process``
        every round waits for the worker."""
        snapshot = request.snapshot
        classes = snapshot_classes(snapshot)
        held = holdout_mask(snapshot, classes, holdout)
        if held.any():
            snapshot = snapshot.copy()
            snapshot.loc[held, "validation"] = True
        images = int((train_mask(snapshot) & (labeled_classes(snapshot, classes) > 0)).sum())
        in_worker = worker is not None and (worker.ready.is_set() or not self._thread_while_starting)
        run = worker.run if in_worker else train_and_predict
        outcome = run(model, replace(request, snapshot=snapshot, class_auc=True, out_of_fold=False),
                      inputs, cancel, report)
        # read by _round_done, posted after this returns
        self._trained = _Trained(outcome.class_auc, images, int(held.sum()))
        return outcome

    def _round_done(self, task: Task) -> None:
        if self.state is OnlineState.OFF:
            return
        error = task.exception()
        if isinstance(error, Cancelled):  # stopped during the round: nothing to report
            return
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
        trained = self._trained
        self.rounds.append(OnlineRound(
            round=len(self.rounds) + 1, images=trained.images,
            val_auc=float(last.get("val_auc", math.nan)), val_loss=float(last.get("val_loss", math.nan)),
            class_auc=trained.class_auc, seconds=time.perf_counter() - self._started,
            held_out=trained.held_out))
        unlabeled = self._unlabeled()
        reason = self._stop_reason(unlabeled)
        if reason:
            self.stop(reason)
        else:
            if not self.queue_kept:
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
            self._ranked = list(sampling.queue)
            return sampling.queue
        picked = rank(self.options.order, candidates, self.options.count, rng=ctx.rng,
                      classes=ctx.classes, **sampling.order_inputs())
        if not ctx.store.read_only:  # on a team journal: rows another annotator holds
            picked = sampling.claim_ranked(picked, candidates, self.options.count,  # give way
                                           self.options.order)
        sampling.set_queue(keep + [int(r) for r in picked])
        self._ranked = list(sampling.queue)
        return sampling.queue

    @property
    def queue_kept(self) -> bool:
        """Whether the queue is the user's (set since online mode last ranked it: more like
        this, a jump, a new sample), which rounds keep rather than re-rank."""
        on = self.state in (OnlineState.RUNNING, OnlineState.PAUSED)
        return on and self.sampling.queue != self._ranked

    def rerank_now(self) -> list[int]:
        """Re-rank the queue after the cursor with the model of the last round and let later
        rounds re-rank it (the user hands a queue they set back to online mode)."""
        if self.state not in (OnlineState.RUNNING, OnlineState.PAUSED):
            raise ValueError(f"cannot re-rank: online learning is {self.state.value}")
        if not self.rounds:
            raise ValueError("cannot re-rank yet: no round has finished")
        queue = self.rerank()
        self._tell()
        return queue

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "rounds": len(self.rounds),
            "images_since_update": self.images_since,
            "labels_since_update": self.images_since,  # the older key, for scripts that read it
            "held_out": self.rounds[-1].held_out if self.rounds else 0,
            "queue_kept": self.queue_kept,
            "training": self.job is not None and not self.job.done(),
            "runner": "thread" if self.worker is None else "process",
            # the worker process: None (no worker), "starting" (with runner "auto", rounds
            # train in a thread meanwhile) or "ready"
            "worker": None if self.worker is None else ("ready" if self.worker.ready.is_set()
                                                        else "starting"),
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
