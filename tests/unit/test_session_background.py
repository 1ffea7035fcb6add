"""The threading rule: workers compute, the owner thread applies (session.background)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from patchwork_widget.session.background import Dispatcher, run_in_background


def test_in_a_script_results_wait_for_the_owner_and_result_applies_them():
    dispatcher = Dispatcher()
    applied_on, progress_on = [], []
    owner = threading.get_ident()

    def work(cancel, report):
        report("half")
        return 21

    task = run_in_background("double", dispatcher, work,
                             lambda v: applied_on.append(threading.get_ident()) or v * 2,
                             on_progress=lambda p: progress_on.append((p, threading.get_ident())))
    assert task.result(timeout=10) == 42
    assert applied_on == [owner] and progress_on == [("half", owner)]
    assert task.done() and task.exception() is None


def test_a_failure_in_the_worker_or_the_apply_step_ends_the_task_with_that_error():
    dispatcher = Dispatcher()
    ended = []

    def broken(cancel, report):
        raise RuntimeError("disk on fire")

    task = run_in_background("broken", dispatcher, broken, lambda v: v, on_end=ended.append)
    with pytest.raises(RuntimeError, match="disk on fire"):
        task.result(timeout=10)
    assert ended == [task] and isinstance(task.exception(), RuntimeError)

    def bad_apply(value):
        raise KeyError("missing columns")

    task = run_in_background("apply", dispatcher, lambda c, r: 1, bad_apply, on_end=ended.append)
    with pytest.raises(KeyError):
        task.result(timeout=10)
    assert ended[-1] is task and task.done()


def test_with_a_running_loop_results_are_applied_on_the_loop_thread_without_asking():
    applied_on, loop_thread = [], []

    async def main():
        dispatcher = Dispatcher()  # made on the loop's thread, as in a kernel cell
        done = asyncio.Event()
        run_in_background("work", dispatcher, lambda c, r: 5,
                          lambda v: applied_on.append(threading.get_ident()),
                          on_end=lambda task: done.set())
        await asyncio.wait_for(done.wait(), 10)

    def kernel() -> None:  # a thread of its own: the test runner's thread may hold a loop
        loop_thread.append(threading.get_ident())
        asyncio.run(main())

    thread = threading.Thread(target=kernel)
    thread.start()
    thread.join(20)
    assert applied_on == loop_thread


def test_drain_from_another_thread_runs_nothing():
    dispatcher = Dispatcher()
    ran = []
    dispatcher.post(lambda: ran.append(1))
    threading.Thread(target=dispatcher.drain).start()
    assert ran == []
    dispatcher.drain()
    assert ran == [1]


def test_posts_from_other_threads_apply_at_constant_depth_when_each_apply_drains_again():
    """With no loop, an apply step that asks ``task.done()`` (which drains) must not recurse
    through the whole queue: thousands of posts from two threads apply without RecursionError."""
    dispatcher = Dispatcher()
    task = run_in_background("idle", dispatcher, lambda cancel, report: 1, lambda v: v)
    task.result(timeout=10)
    applied = []

    def apply(i: int) -> None:
        task.done()  # drains: inside a drain, a no-op
        applied.append(i)

    def poster(start: int) -> None:
        for i in range(start, 6000, 2):
            dispatcher.post(lambda i=i: apply(i))

    threads = [threading.Thread(target=poster, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    dispatcher.drain()
    assert sorted(applied) == list(range(6000))


def test_result_inside_an_apply_step_still_waits_for_its_own_result():
    dispatcher = Dispatcher()
    seen = []
    inner = run_in_background("inner", dispatcher, lambda cancel, report: 5, lambda v: v * 2)
    outer = run_in_background("outer", dispatcher, lambda cancel, report: 1,
                              lambda v: seen.append(inner.result(timeout=10)) or v)
    assert outer.result(timeout=10) == 1 and seen == [10]
