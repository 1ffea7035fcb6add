"""Background work with one threading rule: workers compute, the owner thread applies.

Training, feature extraction and graph building run in worker threads so the kernel stays
free for labeling. A worker never touches traitlets or the Session's fields: it returns a
value, and :class:`Dispatcher` hands that value to the thread that owns the Session (the
kernel's main thread, where its asyncio loop runs), where it is applied. In a notebook the
loop runs the hand-over as soon as the kernel is idle; in a plain script (no running loop) the
hand-over waits until the owner thread asks for it: :meth:`Task.result`, :meth:`Task.done` or
:meth:`Dispatcher.drain`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Report = Callable[[Any], None]  # what a worker calls to report progress


class Cancelled(Exception):
    """Raised by work cancelled before it had anything to hand back (e.g. an online round
    whose worker process was closed by ``stop_online``): the task ends with it as its
    exception, logged at INFO level, not as a failure."""


class Dispatcher:
    """Runs callables on the thread that created it (the owner thread).

    :meth:`post` may be called from any thread; the callables run in order, on the owner
    thread, through the owner's running asyncio loop when there is one, else at the next
    :meth:`drain` the owner calls. A callable that drains again (``task.done()`` inside an
    apply step) does not recurse: the outer drain runs what is posted meanwhile, so any
    number of posts from other threads runs at constant stack depth.
    """

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._pending: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._draining = False  # a drain is running on the owner thread (further down the stack)

    @property
    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._owner

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the owner thread, soon."""
        self._pending.put(fn)
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop closed meanwhile: the owner drains by hand
                pass

    def call_later(self, delay: float, fn: Callable[[], None]) -> bool:
        """Run ``fn`` on the owner thread after ``delay`` seconds, through the owner's running
        loop; False (nothing scheduled) when there is none, as in a plain script."""
        if self._loop is None or self._loop.is_closed():
            return False
        self._loop.call_soon_threadsafe(self._loop.call_later, delay, fn)
        return True

    def drain(self) -> None:
        """Run everything posted so far (only on the owner thread; elsewhere, and inside a
        drain already running, a no-op)."""
        if not self.on_owner_thread or self._draining:
            return
        self._draining = True
        try:
            while self._run_one():
                pass
        finally:
            self._draining = False

    def run_until(self, done: threading.Event) -> None:
        """On the owner thread, run posted callables until ``done`` is set or none is left
        (what :meth:`Task.result` needs inside a drain, where :meth:`drain` does nothing)."""
        if self.on_owner_thread:
            while not done.is_set() and self._run_one():
                pass

    def _run_one(self) -> bool:
        """Run the oldest posted callable; False when there was none."""
        try:
            fn = self._pending.get_nowait()
        except queue.Empty:
            return False
        try:
            fn()
        except Exception:  # an apply step failed: log it, keep the others going
            logger.exception("applying a background result failed")
        return True


class Task(Generic[T]):
    """Background work whose result is applied on the owner thread before it counts as done.

    ``result()`` returns only once the result is in place (e.g. a training run's predictions
    are set on the Session), and re-raises the worker's or the apply step's exception.
    """

    def __init__(self, name: str, dispatcher: Dispatcher) -> None:
        self.name = name
        self._dispatcher = dispatcher
        self._cancel = threading.Event()
        self._computed = threading.Event()  # the worker has posted its outcome
        self._finished = threading.Event()  # the outcome has been applied (or failed)
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def cancel_event(self) -> threading.Event:
        """Set by :meth:`cancel`; workers check it between steps."""
        return self._cancel

    def cancel(self) -> None:
        """Ask the worker to stop at its next check."""
        self._cancel.set()

    def done(self) -> bool:
        """True once the result is applied or the task failed."""
        self._dispatcher.drain()
        return self._finished.is_set()

    def result(self, timeout: float | None = None) -> T:
        """Wait for the applied result; re-raise the task's exception."""
        if self._dispatcher.on_owner_thread:
            if not self._computed.wait(timeout):
                raise TimeoutError(f"{self.name} still running after {timeout} s")
            self._dispatcher.drain()
            self._dispatcher.run_until(self._finished)  # called inside a drain
        if not self._finished.wait(timeout):
            raise TimeoutError(f"{self.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self) -> BaseException | None:
        """The failure, once done (None on success or while running)."""
        return self._error if self._finished.is_set() else None

    def _finish(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._finished.set()


def run_in_background(
    name: str,
    dispatcher: Dispatcher,
    work: Callable[[threading.Event, Report], T],
    apply: Callable[[T], Any],
    *,
    on_progress: Callable[[Any], None] | None = None,
    on_end: Callable[[Task], None] | None = None,
) -> Task:
    """Start ``work(cancel_event, report)`` in a daemon thread.

    On the owner thread, in order: ``on_progress(x)`` for every ``report(x)`` the worker makes;
    then ``apply(value)``, whose return value becomes ``task.result()``; then ``on_end(task)``,
    also after a failure of ``work`` or ``apply`` (``task.exception()`` tells which).
    """
    task: Task = Task(name, dispatcher)

    def report(payload: Any) -> None:
        if on_progress is not None:
            dispatcher.post(lambda: on_progress(payload))

    def finish(outcome: Any, error: BaseException | None) -> None:
        if error is None:
            try:
                outcome = apply(outcome)
            except Exception as err:  # the apply step runs here: report it through the task
                logger.exception("%s: applying the result failed", name)
                error = err
        task._finish(outcome if error is None else None, error)
        if on_end is not None:
            on_end(task)

    def worker() -> None:
        try:
            value = work(task.cancel_event, report)
        except Cancelled as err:  # asked for: nothing to report as a failure
            logger.info("%s cancelled: %s", name, err)
            dispatcher.post(lambda error=err: finish(None, error))
        except Exception as err:  # handed to the owner thread, shown there
            logger.exception("%s failed", name)
            dispatcher.post(lambda error=err: finish(None, error))
        else:
            dispatcher.post(lambda: finish(value, None))
        finally:
            task._computed.set()

    threading.Thread(target=worker, name=f"patchwork-{name}", daemon=True).start()
    return task
