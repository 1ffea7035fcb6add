"""Feature extraction in a worker process, while the user labels (feature I5).

:class:`BackgroundExtraction` is the session's extraction of a feature extractor given by
name, :class:`~patchwork_widget.options.backbones.Backbone` or ``.keras`` file. Opening the
session does not wait for it: the worker (a process started from the package's own entry point,
at a lower CPU priority: :mod:`.worker_process`) loads TensorFlow, resolves the extractor and
fills the project's feature cache (:meth:`FeatureCache.fill
<patchwork_widget.images.feature_cache.FeatureCache.fill>`), in batches sized to the memory it
has (:func:`batch_size_for`), the labeled rows first. After every batch is on disk it tells the
kernel which cache rows hold which table rows; a thread of the kernel reads them and the
Dispatcher puts them in place on the owner thread (:mod:`.background`), so the session's
features fill up while the grid, keys and journal work. A kill loses at most the batch in
flight: the cache resumes from what is on disk at the next open.

Messages from the worker: ``("started", description)``, ``("rows", part, part_rows, rows)``,
``("done",)`` or ``("error", exception)``; the kernel sends one request,
``("extract", files, cache folder, extractor, first rows, progress)``, then
``("first", rows)`` whenever rows are labeled or sampled (:meth:`BackgroundExtraction.prioritize`),
which the worker extracts next, so the images the user works on get their features first.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from patchwork_widget.images.feature_cache import FeatureCache, ArrivingFeatures
from patchwork_widget.session.background import Dispatcher
from patchwork_widget.session.worker_process import (
    Worker,
    limit_threads,
    portable_error,
    start_worker,
    worker_channels,
)

logger = logging.getLogger(__name__)

IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"
MEMORY_SHARE = 0.25  # of the available memory one batch may take
ACTIVATION_FACTOR = 48  # a CNN's peak activations per image, in multiples of its input bytes
MAX_BATCH = 64
JOIN_SECONDS = 10.0


class ExtractionFailed(RuntimeError):
    """The background extraction ended without the features (the worker's error, or its end)."""


def available_memory() -> int:
    """Bytes of memory available now (Linux: ``MemAvailable``; else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 1 << 30


def batch_size_for(image_size: tuple[int, int], num_channels: int = 3,
                   memory: int | None = None) -> int:
    """Images per extraction batch: as many as fit :data:`MEMORY_SHARE` of ``memory`` (default
    the memory available now), counting :data:`ACTIVATION_FACTOR` times an image's float32
    input for the network's activations; between 1 and :data:`MAX_BATCH`."""
    memory = available_memory() if memory is None else memory
    per_image = image_size[0] * image_size[1] * num_channels * 4 * ACTIVATION_FACTOR
    return int(max(1, min(MAX_BATCH, memory * MEMORY_SHARE // per_image)))


class BackgroundExtraction:
    """The session's features as a worker process extracts them (see the module docstring).

    Its state (``idle``, ``running``, ``done``, ``failed``) and :attr:`rows` change on the
    owner thread only, as the Dispatcher applies what the worker reported.
    """

    def __init__(self) -> None:
        self.state = IDLE
        self.rows: ArrivingFeatures | None = None
        self.description = ""
        self.error: BaseException | None = None
        self._worker: Worker | None = None
        self._dispatcher: Dispatcher | None = None
        self._closed = False
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # to the worker, in order

    # ------------------------------------------------------------------ what it holds
    @property
    def total(self) -> int:
        return 0 if self.rows is None else len(self.rows.ready)

    @property
    def done(self) -> int:
        return 0 if self.rows is None else self.rows.done

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def pid(self) -> int | None:
        return None if self._worker is None else self._worker.process.pid

    def status(self) -> dict[str, Any]:
        """``state``, ``done``, ``total``, ``description`` and ``error`` (a message), as
        plain values (the widget's ``extraction`` trait)."""
        return {"state": self.state, "done": self.done, "total": self.total,
                "description": self.description,
                "error": "" if self.error is None else str(self.error)}

    def progress_text(self) -> str:
        """``features N of M`` (what an order that needs features says meanwhile)."""
        return f"features {self.done:,} of {self.total:,}"

    # ------------------------------------------------------------------ running it
    def start(self, files: Sequence[str], folder: str | os.PathLike, extractor: Any,
              dispatcher: Dispatcher, on_change: Callable[[BackgroundExtraction], None], *,
              first: Sequence[int] = ()) -> None:
        """Start the worker on ``files`` (one per table row) with ``extractor`` (a name, a
        Backbone or a ``.keras`` path), caching into ``folder``. ``on_change(self)`` runs on
        the owner thread after every change (rows arrived, done, failed)."""
        if self.state != IDLE:
            raise RuntimeError(f"the extraction was started already ({self.state})")
        files = list(map(str, files))
        self.rows = ArrivingFeatures(len(files))
        self._dispatcher = dispatcher
        self.state = RUNNING
        self.description = str(getattr(extractor, "name", None) or Path(str(extractor)).name)
        self._worker = worker = start_worker(__name__)
        logger.info("extracting features of %d images in process %d", len(files),
                    worker.process.pid)
        # messages go through a thread of their own: a large request fills the pipe until the
        # worker, still importing, reads it, and neither opening the session nor a sample
        # (prioritize) may wait for that
        self._outbox.put(("extract", files, str(folder), extractor, [int(r) for r in first],
                          "ipykernel" not in sys.modules))
        threading.Thread(target=self._send_all, args=(worker,),
                         name="patchwork-extraction-send", daemon=True).start()
        threading.Thread(target=self._read, args=(worker, on_change),
                         name="patchwork-extraction", daemon=True).start()

    def prioritize(self, rows: Sequence[int]) -> None:
        """Have the worker extract ``rows`` (table rows: those just labeled or sampled) next,
        within a batch or two; nothing when it is not running. Any thread; never waits."""
        if self.state == RUNNING and len(rows):
            self._outbox.put(("first", [int(r) for r in rows]))

    def wait(self, timeout: float | None = None) -> np.ndarray:
        """On the owner thread: wait until every row has its features and return them.

        Raises
        ------
        ExtractionFailed
            When the extraction failed (its error is the cause) or was closed.
        TimeoutError
            When ``timeout`` seconds passed first.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._dispatcher is not None:
                self._dispatcher.drain()
            if self.state == DONE:
                return self.rows.array
            if self.state != RUNNING:
                raise ExtractionFailed(f"no features: the extraction is {self.state}"
                                       + ("" if self.error is None else f" ({self.error})")
                                       ) from self.error
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"the extraction is still running after {timeout} s "
                                   f"({self.progress_text()})")
            time.sleep(0.02)

    def close(self) -> None:
        """End the worker (a batch in flight is lost; the cache keeps the others)."""
        self._closed = True
        self._outbox.put(None)
        worker = self._worker
        if worker is not None and worker.alive:
            worker.process.terminate()
            try:
                worker.process.wait(JOIN_SECONDS)
            except Exception:  # noqa: BLE001 - a worker that will not end is killed
                worker.process.kill()

    # ------------------------------------------------------------------ the kernel's reader
    def _send_all(self, worker: Worker) -> None:
        """The sender thread: the request, then the rows asked for first, in order."""
        while True:
            message = self._outbox.get()
            if message is None:
                return
            try:
                worker.requests.send(message)
            except (OSError, ValueError):  # the worker is gone: the reader reports it
                return

    def _read(self, worker: Worker, on_change: Callable[[BackgroundExtraction], None]) -> None:
        """The reader thread: take the worker's messages, read the reported rows from the
        cache and hand them to the owner thread."""
        post = self._dispatcher.post
        rows = self.rows

        def apply(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                fn()
                on_change(self)
            return run

        try:
            while True:
                try:
                    message = worker.replies.recv()
                except (EOFError, OSError):
                    code = worker.process.wait()
                    error = ExtractionFailed(
                        "the extraction was closed" if self._closed
                        else f"the feature extraction process ended (exit code {code})")
                    post(apply(lambda: self._end(FAILED, error)))
                    return
                kind = message[0]
                if kind == "started":
                    post(apply(lambda d=message[1]: setattr(self, "description", d)))
                elif kind == "rows":
                    _, part, part_rows, table_rows = message
                    values = rows.read(part, part_rows)
                    post(apply(lambda r=table_rows, v=values: rows.put(r, v)))
                elif kind == "done":
                    post(apply(lambda: self._end(DONE, None)))
                    return
                else:  # ("error", exception)
                    post(apply(lambda err=message[1]: self._end(FAILED, err)))
                    return
        finally:
            self._outbox.put(None)  # the sender thread ends too
            worker.close_pipes()

    def _end(self, state: str, error: BaseException | None) -> None:
        if self.state != RUNNING:
            return
        self.state, self.error = state, error
        if error is None:
            logger.info("features of %d images extracted", self.total)
        else:
            logger.error("feature extraction failed after %s: %s", self.progress_text(), error)


# ---------------------------------------------------------------------- in the worker process
def main() -> None:
    """The worker's entry point: one extraction request on standard input, its progress on
    standard output (see the module docstring)."""
    requests, replies = worker_channels()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        _, files, folder, extractor, first, progress = requests.recv()
        asked = Asked(requests)
        limit_threads()
        try:
            serve(files, folder, extractor, first, progress, replies, asked.take)
        except Exception as err:  # the kernel shows it
            logger.exception("feature extraction failed in the worker")
            replies.send(("error", portable_error(err)))
    except (BrokenPipeError, EOFError):  # the kernel closed the pipes or ended
        pass
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)  # nothing to save: skip TensorFlow's slow teardown


class Asked:
    """In the worker: the rows the kernel asks for first (``("first", rows)`` messages), taken
    by a thread as they come; :meth:`take` hands over those asked since it was last called."""

    def __init__(self, requests: Any) -> None:
        self._rows: list[int] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(requests,), name="patchwork-asked",
                         daemon=True).start()

    def _read(self, requests: Any) -> None:
        while True:
            try:
                message = requests.recv()
            except (EOFError, OSError):  # the kernel is gone
                os._exit(0)
            if message is None:
                os._exit(0)
            with self._lock:
                self._rows.extend(message[1])

    def take(self) -> list[int]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows


def serve(files: list[str], folder: str, extractor: Any, first: list[int], progress: bool,
          replies: Any, priority: Callable[[], Sequence[int]] | None = None) -> None:
    """Resolve ``extractor`` and fill the cache in ``folder``, reporting rows as they land;
    ``priority()`` names rows to extract next (the kernel's requests)."""
    from patchwork_widget.images.backbones import resolve_extractor

    resolved = resolve_extractor(extractor)
    replies.send(("started", resolved.description or resolved.identity))
    batch = batch_size_for(resolved.image_size, resolved.num_channels)
    FeatureCache(folder).fill(
        files, resolved, lambda part, part_rows, rows: replies.send(("rows", str(part),
                                                                     part_rows, rows)),
        first=first, priority=priority, batch_size=batch, progress=progress)
    replies.send(("done",))
