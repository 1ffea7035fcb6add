"""Online rounds in a worker process, so that training never holds the kernel's GIL.

:class:`RoundProcess` starts one process the first time a round needs it and keeps it warm for
the whole online run. The process is started from the package's own entry point and talks to
the kernel over its standard input and output (:mod:`.worker_process`). The cached features go to the worker once, as a raw file
it maps read-only (they do not change while online mode runs). Each round sends the table's
snapshot (flags and class columns), the model's build spec and weights and the training
options; the worker trains its copy of the model with the same function as an in-process run
(:func:`~patchwork_widget.session.modeling.train_and_predict`) and sends back the outcome
(history, predictions, embeddings) and the trained weights.

:meth:`RoundProcess.run` is a ``runner`` for :meth:`Session.train
<patchwork_widget.session.core.Session.train>`: it runs in the training thread and
waits on a pipe (holding no GIL), and the Task applies the outcome on the owner thread exactly as
for an in-process run. A worker that dies is a failed round (:class:`WorkerDied`), never a hang;
an exception in the worker fails the round with that exception; a round cut short by
:meth:`RoundProcess.close` (``stop_online``) ends as :class:`~.background.Cancelled`, quietly.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from patchwork_widget.images.feature_rows import chunks
from patchwork_widget.options import FineTuneOptions
from patchwork_widget.session.background import Cancelled, Report
from patchwork_widget.session.modeling import (
    RoundRequest,
    TrainingOutcome,
    snapshot_classes,
    train_and_predict,
)
from patchwork_widget.session.worker_process import (
    limit_threads,
    portable_error,
    start_worker,
    worker_channels,
)

if TYPE_CHECKING:
    from patchwork_widget.models import PatchworkModels

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often a waiting round checks for a cancel or a dead worker
JOIN_SECONDS = 30.0  # how long a closing worker may take to finish its round and exit


class WorkerDied(RuntimeError):
    """The worker process ended while a round was going."""


@dataclass(frozen=True)
class FeatureFile:
    """A raw, C-ordered copy of the features the worker maps read-only."""

    path: str
    dtype: str
    shape: tuple[int, ...]

    @classmethod
    def write(cls, features: Any, folder: str) -> FeatureFile:
        """Copy ``features`` (an array, memmap or Zarr array) into ``folder``, a chunk of rows
        at a time."""
        path = os.path.join(folder, "features.raw")
        with open(path, "wb") as f:
            for _, block in chunks(features, dtype=None):
                np.ascontiguousarray(block).tofile(f)
        return cls(path, np.dtype(features.dtype).str, tuple(int(s) for s in features.shape))

    def open(self) -> np.ndarray:
        return np.memmap(self.path, dtype=np.dtype(self.dtype), mode="r", shape=self.shape)


@dataclass(frozen=True)
class ModelState:
    """What the worker needs to rebuild the kernel's model: its build spec and weights."""

    classes: list[str]
    feature_shape: tuple[int, ...]
    options: FineTuneOptions
    weights: list[np.ndarray]  # the fine-tuning model's, then the output model's
    trained: bool
    single_label: bool = False  # a softmax output (one label per image)

    @classmethod
    def of(cls, model: PatchworkModels) -> ModelState:
        return cls(list(model.classes), model.feature_shape, model.options,
                   model.fine_tuning.get_weights() + model.output.get_weights(), model.trained,
                   model.single_label)

    def build_key(self) -> tuple[Any, ...]:
        return self.feature_shape, self.options, len(self.classes)

    def apply_to(self, model: PatchworkModels) -> None:
        """Put these weights and the trained flag into ``model`` (not the classes: the
        kernel's model may have been renamed with its classes during the round)."""
        split = len(model.fine_tuning.weights)
        model.set_single_label(self.single_label)
        model.fine_tuning.set_weights(self.weights[:split])
        model.output.set_weights(self.weights[split:])
        model.trained = self.trained


class RoundProcess:
    """One worker process for the rounds of an online run on pre-extracted ``features``."""

    def __init__(self, features: np.ndarray) -> None:
        if features is None or np.ndim(features) < 2:
            raise ValueError("features: the round worker needs pre-extracted features (an array "
                             f"of rows x ...); got {None if features is None else np.shape(features)}")
        self._features = features
        self._lock = threading.Lock()  # one round at a time; closing waits for it
        self._send_lock = threading.Lock()  # a cancel may be sent while a round is sent
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None  # to the worker (its standard input)
        self._replies: Connection | None = None  # from the worker (its standard output)
        self._folder: str | None = None
        self._file: FeatureFile | None = None
        self._closed = False
        self.ready = threading.Event()  # set once the worker has loaded TensorFlow

    def warm(self) -> None:
        """Start the worker now, in the background (writing the features and loading
        TensorFlow take seconds), so that the first round does not wait for it."""
        threading.Thread(target=self._warm_up, name="patchwork-online-start", daemon=True).start()

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker's process id (None before it starts)."""
        return None if self._process is None else self._process.pid

    def run(self, model: PatchworkModels, request: RoundRequest, inputs: dict[str, Any],
            cancel: threading.Event, report: Report) -> TrainingOutcome:
        """Train ``model`` in the worker (a ``runner`` for ``Session.train``): send it the
        round, wait, and put the trained weights into ``model``. ``inputs`` are ignored: the
        worker has the features."""
        with self._lock:
            if self._closed and not self.alive:
                raise Cancelled("the online training process was closed")
            replies = self._connection()
            snapshot = request.snapshot.drop(columns=["filepath"], errors="ignore")
            # the worker's model takes the round's classes: the kernel's may have been renamed
            # since the snapshot was taken (on the owner thread, while this thread started)
            state = replace(ModelState.of(model), classes=snapshot_classes(snapshot))
            try:  # a round that comes after close() runs cancelled
                self._send(("round", replace(request, snapshot=snapshot), state, self._closed))
            except OSError as err:  # e.g. a broken pipe: the worker died before the round
                raise self._died() from err
            while True:
                kind, *payload = self._receive(replies, cancel)
                if kind == "progress":
                    report(payload[0])
                elif kind == "error":
                    raise payload[0]
                else:
                    outcome, state = payload
                    state.apply_to(model)
                    return outcome

    def close(self) -> None:
        """Cancel the round in flight and end the worker; returns at once (the worker exits
        in the background, its feature file is deleted after it)."""
        self._closed = True
        self._cancel_round()
        threading.Thread(target=self._shut_down, name="patchwork-online-close", daemon=True).start()

    # ------------------------------------------------------------------ internals
    def _warm_up(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._connection()
            except WorkerDied:  # the next round starts another one
                logger.warning("the online training process ended while starting")

    def _connection(self) -> Connection:
        """The connection the worker's replies come on, starting the worker if needed."""
        if self.alive:
            return self._replies
        self._close_pipes()  # a worker that died in an earlier round
        if self._file is None:
            self._folder = tempfile.mkdtemp(prefix="patchwork-online-")
            self._file = FeatureFile.write(self._features, self._folder)
        self.ready.clear()
        worker = start_worker(__name__)
        self._process, self._conn, self._replies = worker.process, worker.requests, worker.replies
        try:
            self._send(("start", self._file))
        except OSError as err:
            raise self._died() from err
        self._receive(self._replies, None)  # ("ready",)
        self.ready.set()
        logger.info("online training process %d started", self._process.pid)
        return self._replies

    def _send(self, message: Any) -> None:
        """Send ``message`` to the worker; OSError when its pipe is closed or broken."""
        with self._send_lock:
            if self._conn is None:
                raise OSError("the online training process's pipe is closed")
            self._conn.send(message)

    def _cancel_round(self) -> None:
        """Tell the worker to stop the round it trains (if any) at its next check."""
        if self.alive:
            try:
                self._send(("cancel",))
            except (OSError, ValueError):  # the worker is gone already
                pass

    def _receive(self, replies: Connection, cancel: threading.Event | None) -> tuple:
        cancelled = False
        while not replies.poll(POLL_SECONDS):
            if cancel is not None and cancel.is_set() and not cancelled:
                self._cancel_round()
                cancelled = True
            if not self.alive:
                break
        try:
            return replies.recv()
        except (EOFError, OSError) as err:
            raise self._died() from err

    def _died(self) -> Exception:
        """The error for a worker that is gone: :class:`WorkerDied`, or :class:`Cancelled`
        when :meth:`close` ended it."""
        try:
            code = self._process.wait(JOIN_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        if self._closed:
            return Cancelled(f"the online training process was closed (exit code {code})")
        return WorkerDied(f"the online training process ended (exit code {code})")

    def _close_pipes(self) -> None:
        for conn in (self._conn, self._replies):
            if conn is not None:
                conn.close()
        self._conn = self._replies = None

    def _shut_down(self) -> None:
        with self._lock:
            if self._process is not None:
                try:
                    self._send(None)
                except (OSError, ValueError):  # the worker is gone already
                    pass
                try:
                    self._process.wait(JOIN_SECONDS)
                except subprocess.TimeoutExpired:
                    logger.warning("online training process %d did not exit: terminating it",
                                   self._process.pid)
                    self._process.terminate()
                    self._process.wait(JOIN_SECONDS)
                self._close_pipes()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)


# ---------------------------------------------------------------------- in the worker process
def main() -> None:
    """The worker's entry point: requests on standard input, replies on standard output.

    Standard output is the reply channel only: anything printed (TensorFlow's notices
    included) goes to standard error.
    """
    requests, replies = worker_channels()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        serve(requests, replies)
    except (BrokenPipeError, EOFError):  # the kernel closed the pipes or ended: nothing to do
        os._exit(0)


def serve(requests: Connection, replies: Connection) -> None:
    """The worker's loop: one round per ``round`` message until ``None`` or the kernel's end.

    A reader thread takes the messages as they come, so that a ``cancel`` reaches the round
    that trains meanwhile; the rounds run in this thread.
    """
    _, features = requests.recv()  # ("start", FeatureFile)
    data = features.open()
    from patchwork_widget import models as m  # TensorFlow loads before the first round

    limit_threads()
    cancel = threading.Event()
    rounds: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                message = requests.recv()
            except (EOFError, OSError):  # the kernel is gone
                message = None
            if message is None:
                cancel.set()
                rounds.put(None)
                return
            if message[0] == "cancel":
                cancel.set()
            else:  # ("round", request, state, cancelled): a round starts uncancelled
                if message[3]:
                    cancel.set()
                else:
                    cancel.clear()
                rounds.put(message)

    threading.Thread(target=read, name="patchwork-worker-requests", daemon=True).start()
    replies.send(("ready",))
    model, built_for = None, None
    while True:
        message = rounds.get()
        if message is None:  # nothing to save: skip TensorFlow's slow teardown
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        _, request, state, _ = message
        try:
            if model is None or built_for != state.build_key():
                model = m.build_models(state.classes, feature_shape=state.feature_shape,
                                       options=state.options)
                built_for = state.build_key()
            state.apply_to(model)
            model.classes = list(state.classes)
            outcome = train_and_predict(model, request, {"features": data}, cancel,
                                        lambda step: _progress(replies, step))
            replies.send(("done", outcome, ModelState.of(model)))
        except Exception as err:  # the round failed: the kernel re-raises it
            logger.exception("online round failed in the worker")
            replies.send(("error", portable_error(err)))


def _progress(conn: Connection, step: tuple) -> None:
    """Forward the last report of each epoch (a message per step would cost the kernel)."""
    _, index, logs = step
    if index == logs.get("steps"):
        conn.send(("progress", step))
