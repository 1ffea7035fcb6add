"""Training in a background thread (feature M3): the widget's Train tab uses this.

:func:`start_training` copies the label table's columns in the calling thread, starts
:func:`~patchwork_widget.models.train.fit` in a worker thread and returns a :class:`TrainingJob`
at once: ``job.cancel()`` stops it before its next step (keeping the last completed epoch),
``job.result()`` waits for the :class:`~patchwork_widget.models.train.TrainResult`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Optional, Sequence

import pandas as pd

from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.train import Progress, TrainResult, fit


class TrainingJob:
    """A :func:`fit` running in a background thread.

    Attributes
    ----------
    future : concurrent.futures.Future
        Resolves to the :class:`TrainResult` (or the exception ``fit`` raised).
    cancel_event : threading.Event
        Set by :meth:`cancel`.
    """

    def __init__(self, future: "Future[TrainResult]", cancel_event: threading.Event) -> None:
        self.future = future
        self.cancel_event = cancel_event

    def cancel(self) -> None:
        """Ask training to stop before its next step (keeps the last completed epoch)."""
        self.cancel_event.set()

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout: Optional[float] = None) -> TrainResult:
        """Wait for the result; re-raises an exception from training."""
        return self.future.result(timeout)


def start_training(
    models: PatchworkModels,
    df: pd.DataFrame,
    *,
    progress: Optional[Progress] = None,
    **fit_kwargs: Any,
) -> TrainingJob:
    """Run :func:`fit` in a background thread and return at once.

    The table's label, flag and path columns are copied here, in the calling thread, so the
    labeler may keep editing ``df`` meanwhile. ``progress`` is called from the training thread.
    Other keyword arguments go to :func:`fit`.
    """
    cols: Sequence[str] = ["filepath", "exclude", "validation", *models.classes]
    snapshot = df[list(cols)].copy()
    cancel_event = threading.Event()
    pool = ThreadPoolExecutor(1, thread_name_prefix="patchwork-train")
    future = pool.submit(fit, models, snapshot, progress=progress, cancel=cancel_event,
                         **fit_kwargs)
    pool.shutdown(wait=False)
    return TrainingJob(future, cancel_event)
