"""The one epoch loop (issue 25.7): what every trainer's epochs rely on, checked without
TensorFlow against hand-computed means and call orders."""

from __future__ import annotations

import math
import threading

import pytest

from patchwork_widget.models.loop import Diverged, Hooks, run_epochs


def test_hooks_run_in_order_and_records_hold_the_means_of_the_steps():
    calls = []
    losses = iter([1.0, 3.0, 2.0, 6.0])

    def step(batch):
        calls.append(("step", batch))
        return {"loss": next(losses), "n": batch}

    def epoch_end(epoch, record):
        calls.append(("end", epoch))
        record["val"] = 10 * epoch

    outcome = run_epochs(2, lambda epoch: [epoch, epoch + 1], step,
                         Hooks(lambda e: calls.append(("start", e)),
                               lambda e, s, logs: calls.append(("after", e, s)), epoch_end))
    assert outcome.history == [{"epoch": 1, "loss": 2.0, "n": 1.5, "val": 10},
                               {"epoch": 2, "loss": 4.0, "n": 2.5, "val": 20}]
    assert calls[:6] == [("start", 1), ("step", 1), ("after", 1, 1), ("step", 2),
                         ("after", 1, 2), ("end", 1)]
    assert not outcome.cancelled


def test_a_cancel_stops_before_the_next_step_and_keeps_completed_epochs():
    cancel = threading.Event()

    def step(batch):
        if batch == 3:
            cancel.set()
        return {"loss": 0.5}

    outcome = run_epochs(5, lambda epoch: range(2 * epoch - 1, 2 * epoch + 1), step,
                         cancel=cancel)
    assert outcome.cancelled and [r["epoch"] for r in outcome.history] == [1]


def test_a_non_finite_loss_stops_when_asked():
    with pytest.raises(Diverged, match="the loss became nan at epoch 1, step 2"):
        run_epochs(1, lambda e: range(3), lambda b: {"loss": math.nan if b == 1 else 1.0},
                   stop_on_nonfinite=True)
    done = run_epochs(1, lambda e: range(2), lambda b: {"loss": math.inf})
    assert done.history[0]["loss"] == math.inf
