"""The one epoch loop of every trainer (TF-free): fine-tuning's minibatch solver
(:mod:`patchwork_widget.models.train`), :func:`~patchwork_widget.models.distill.distill` and
the self-supervised trainers (:class:`~patchwork_widget.feature.base.FeatureTrainer`).

Each run gives the loop its batches, its step and what to do around them (:class:`Hooks`);
the loop owns the order of things: the epoch's start, each step (stopping at a cancel before
the step, and at a non-finite loss after it when asked), the running means of what the steps
return, and the epoch's end, whose record goes into the history.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Diverged", "Hooks", "LoopOutcome", "run_epochs"]


class Diverged(ArithmeticError):
    """A step's loss was NaN or infinite (raised by :func:`run_epochs` with
    ``stop_on_nonfinite``)."""


@dataclass
class Hooks:
    """What a run does around the loop's steps; every hook is optional.

    Attributes
    ----------
    epoch_start : callable(epoch)
        Before the epoch's first batch is asked for.
    after_step : callable(epoch, step, logs)
        After each step, with the step's values (a dict the hook may add to for its own
        use; the epoch's means are taken before it is called).
    epoch_end : callable(epoch, record)
        After the epoch's last step, with ``record`` (``epoch`` and the means of the steps'
        values); it may add to it (validation, benchmarks) before it joins the history.
    """

    epoch_start: Callable[[int], None] | None = None
    after_step: Callable[[int, int, dict[str, float]], None] | None = None
    epoch_end: Callable[[int, dict[str, float]], None] | None = None


@dataclass
class LoopOutcome:
    """How :func:`run_epochs` ended: one record per completed epoch, and whether a cancel
    stopped it (the cancelled epoch has no record)."""

    history: list[dict[str, float]] = field(default_factory=list)
    cancelled: bool = False


def run_epochs(epochs: int, batches: Callable[[int], Iterable[Any]],
               step: Callable[[Any], Mapping[str, float]], hooks: Hooks | None = None, *,
               cancel: threading.Event | None = None, stop_on_nonfinite: bool = False,
               first_epoch: int = 1) -> LoopOutcome:
    """Run ``epochs`` epochs of ``step(batch)`` over ``batches(epoch)``.

    Parameters
    ----------
    epochs : int
        Epochs to run, numbered from ``first_epoch``.
    batches : callable(epoch) -> iterable
        The epoch's batches (a dataset, a progress bar over one, or ``range(steps)``).
    step : callable(batch) -> mapping of str to float
        One optimizer step; returns its values (``loss`` at least when
        ``stop_on_nonfinite``).
    hooks : Hooks, optional
    cancel : threading.Event, optional
        Checked before every step; once set, the loop returns with ``cancelled=True``.
    stop_on_nonfinite : bool
        Raise :class:`Diverged` when a step's ``loss`` is NaN or infinite.

    Returns
    -------
    LoopOutcome
    """
    hooks = hooks or Hooks()
    outcome = LoopOutcome()
    for epoch in range(first_epoch, first_epoch + epochs):
        if hooks.epoch_start is not None:
            hooks.epoch_start(epoch)
        sums: dict[str, float] = {}
        steps = 0
        for batch in batches(epoch):
            if cancel is not None and cancel.is_set():
                outcome.cancelled = True
                return outcome
            logs = {k: float(v) for k, v in step(batch).items()}
            steps += 1
            if stop_on_nonfinite and not math.isfinite(logs.get("loss", 0.0)):
                raise Diverged(f"the loss became {logs['loss']} at epoch {epoch}, step {steps}")
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
            if hooks.after_step is not None:
                hooks.after_step(epoch, steps, logs)
        record = {"epoch": epoch, **{k: v / max(steps, 1) for k, v in sums.items()}}
        if hooks.epoch_end is not None:
            hooks.epoch_end(epoch, record)
        outcome.history.append(record)
    return outcome
