"""Online active learning (A6): acknowledgement latency while rounds run, and labels saved.

1. Ack latency: the widget's annotate request (validated, journaled with synchronous=FULL,
   answered) p50 / p95 over paced requests (one every ``GAP`` seconds, as a fast labeler) with
   no training, and while online rounds run back to back (every=1), once with rounds in a
   thread of this process and once in the worker process; the quiet figure is taken before and
   after, in the same process. Goal: ratio <= 1.2. Also the owner thread's time per round (the
   hand-over that puts a round's predictions in place and re-ranks the queue). A control row:
   no training, but as many CPU-bound processes as the worker's threads, at the worker's
   priority: what any second busy process costs the requests on this machine, GIL aside.
2. A simulated labeler (labels from ground truth, ``LABEL_SECONDS`` per label; the validation
   rows labeled first): labels needed until the validation macro AUC reaches the target, for
   online mode (a round every 20 labels, max entropy, 20% random; the worker warm before the
   first label), retraining by hand every 100 labels with max entropy, and the same by hand in
   random order. On the demo set, and on scikit-learn's digits (1,797 rows, 10 classes, the 64
   pixel columns standardised), a held-out set the defaults were not tuned on.

3. The first round's delay: labels and seconds from ``start_online`` with a fresh worker until
   the first round is applied, a label a second, with runner "process" (rounds wait for the
   worker) and "auto" (rounds train in a kernel thread until the worker has started).

    python benchmarks/bench_online.py            # all parts
    python benchmarks/bench_online.py latency    # part 1 only
    python benchmarks/bench_online.py first      # part 3 only
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _table import print_table

from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.session.worker_process import NICENESS
from patchwork_widget.widget import protocol

CONTEXT = multiprocessing.get_context("spawn")  # the control's busy processes

REQUESTS = 200  # timed annotate requests per condition, at least
MIN_ROUNDS = 8  # with rounds running: go on until this many rounds were applied
GAP = 0.02  # seconds between requests
LABEL_SECONDS = 0.1  # the simulated labeler's time per label
MAX_LABELS = 600


@dataclass(frozen=True)
class Problem:
    name: str
    truth: pd.DataFrame  # filepath and one 0/1 column per class
    classes: list[str]
    features: np.ndarray
    target: float  # validation macro AUC to reach
    validation_rows: int


def demo_problem() -> Problem:
    truth = load_demo_dataset()
    return Problem("demo set", truth, demo_classes(), demo_features(truth["filepath"].tolist()),
                   0.97, 200)


def digits_problem() -> Problem:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    scale = x.std(axis=0)
    features = ((x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)).astype(np.float32)
    classes = [f"digit_{d}" for d in range(10)]
    truth = pd.DataFrame(np.eye(10)[y], columns=classes)
    truth.insert(0, "filepath", [f"digits/{i:04d}.png" for i in range(len(y))])
    return Problem("digits (scikit-learn)", truth, classes, features, 0.99, 300)


def open_session(folder: Path, name: str, problem: Problem) -> Session:
    df = prep_label_dataframe(problem.truth["filepath"].tolist(), problem.classes)
    session = Session.open(df, outfile=folder / f"{name}.csv", features=problem.features, seed=0)
    rows = np.random.default_rng(0).permutation(len(df))[:problem.validation_rows]
    for row in rows:
        session.annotate(int(row), {**problem.truth.loc[row, problem.classes].to_dict(),
                                    "validation": True})
    return session


def idle(session: Session, seconds: float) -> None:
    """The kernel between two messages: it applies finished rounds."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        session.dispatcher.drain()
        time.sleep(0.002)


def spin(started) -> None:
    """A CPU-bound process at the round worker's priority (the control), until terminated."""
    os.nice(NICENESS)
    started.set()
    while True:
        pass


def with_busy_processes(session: Session, rows: list[int]) -> np.ndarray:
    count = max(1, (os.cpu_count() or 2) - 1)  # as many as the worker's threads
    started = [CONTEXT.Event() for _ in range(count)]
    procs = [CONTEXT.Process(target=spin, args=(event,), daemon=True) for event in started]
    for proc, event in zip(procs, started):
        proc.start()
        event.wait(120)
    latencies, *_ = ack_latency(session, rows, None)
    for proc in procs:
        proc.terminate()
        proc.join()
    return latencies


def median_ms(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def timed(record: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, adding each call's duration (ms) to ``record``."""
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            record.append((time.perf_counter() - start) * 1e3)
    return run


def ack_latency(session: Session, rows: list[int], runner: str | None
                ) -> tuple[np.ndarray, list[float], list[float]]:
    """Request latencies (ms), and the owner thread's time (ms) of each round applied and of
    each round started (the snapshot, inside a request): at least :data:`REQUESTS` requests
    (cycling over ``rows``) and, with a runner, :data:`MIN_ROUNDS` rounds."""
    cls = session.classes[0]
    starts: list[float] = []
    session.online._start_round = timed(starts, session.online._start_round)  # until the del below
    if runner is not None:
        session.start_online(every=1, explore=0.0, stop={"all_labeled": False}, runner=runner)
        session.online.job.result(timeout=600)  # warm: the first round is done
    latencies, applies = [], []
    i = 0
    while i < REQUESTS or (runner is not None and len(applies) < MIN_ROUNDS and i < 20 * REQUESTS):
        row = rows[i % len(rows)]
        end = time.perf_counter() + GAP
        while time.perf_counter() < end:
            rounds = len(session.online.rounds)
            start = time.perf_counter()
            session.dispatcher.drain()  # the kernel's loop applies finished rounds here
            if len(session.online.rounds) > rounds:
                applies.append((time.perf_counter() - start) * 1e3)
            time.sleep(0.002)
        start = time.perf_counter()
        ((reply, _),) = protocol.handle(session, {"type": "annotate", "id": i, "rows": [row],
                                                  "changes": {cls: 0.0}})
        latencies.append((time.perf_counter() - start) * 1e3)
        assert reply["type"] == "ack"
        i += 1
    if runner is not None:
        session.stop_online()
    del session.online._start_round
    return np.array(latencies), applies, starts[1:]  # the first started before the timing


def latency_table(folder: Path, problem: Problem) -> None:
    session = open_session(folder, "latency", problem)
    classes, truth = problem.classes, problem.truth
    for row in range(len(truth) - 60, len(truth)):  # training labels, then one warm-up run
        session.annotate(row, truth.loc[row, classes].to_dict())
    session.build_model()
    session.train().result(timeout=300)
    free = [r for r in range(len(truth)) if np.isnan(session.df.at[r, classes[0]])]
    quiet, *_ = ack_latency(session, free, None)
    figures = {f"rounds back to back, {runner}": ack_latency(session, free, runner)
               for runner in ("thread", "process")}
    figures["control: busy processes, no training"] = (with_busy_processes(session, free), [], [])
    quiet_after, *_ = ack_latency(session, free, None)
    session.close()
    base = np.concatenate([quiet, quiet_after])
    p = np.percentile
    rows = [("no training, before", len(quiet), p(quiet, 50), p(quiet, 95), "", "", 0, "", ""),
            ("no training, after", len(quiet_after), p(quiet_after, 50), p(quiet_after, 95),
             "", "", 0, "", "")]
    for runner, (busy, applies, starts) in figures.items():
        rows.append((runner, len(busy), p(busy, 50), p(busy, 95),
                     p(busy, 50) / p(base, 50), p(busy, 95) / p(base, 95), len(applies),
                     median_ms(starts), median_ms(applies)))
    print_table(f"Annotate request latency, ms (one request every {GAP} s; ratios against "
                f"both quiet runs; load average {os.getloadavg()[0]:.1f})",
                ["", "requests", "p50", "p95", "p50 ratio", "p95 ratio", "rounds applied",
                 "owner ms: round start", "owner ms: round applied"], rows)


def labels_to_target(session: Session, problem: Problem, mode: str) -> tuple[int, float]:
    """Label the queue's next image from ground truth until the validation AUC reaches the
    target; returns (labels given, AUC reached)."""
    classes, truth = problem.classes, problem.truth
    session.sample({"kind": "unlabeled"}, "random", 50)
    if mode == "online":
        session.start_online(every=20, order="max entropy", explore=0.2, count=50,
                             stop={"macro_auc": problem.target})
        assert session.online.worker.ready.wait(600)  # the labeler starts once it is warm
    else:
        session.build_model()
    given, auc = 0, float("nan")
    while given < MAX_LABELS:
        if mode == "online":
            status = session.online_status()
            if status["rounds"]:
                auc = status["history"][-1]["val_auc"]
            if status["state"] == "stopped":
                break
        elif given % 100 == 0 and given:
            session.train().result(timeout=300)
            auc = float(session.train_history["val_auc"].iloc[-1])
            if auc >= problem.target:
                break
            order = "max entropy" if mode == "by hand, max entropy" else "random"
            session.sample({"kind": "unlabeled"}, order, 100)
        if session.cursor >= len(session.queue) - 1:
            session.sample({"kind": "unlabeled"}, "random", 50)
        row = session.queue[session.cursor]
        session.annotate(row, truth.loc[row, classes].to_dict())
        session.cursor = min(session.cursor + 1, len(session.queue) - 1)
        given += 1
        idle(session, LABEL_SECONDS)
    if mode == "online":
        if session.online.job is not None:
            session.online.job.result(timeout=300)
        session.dispatcher.drain()
        auc = session.online_status()["history"][-1]["val_auc"]
        session.stop_online()
    return given, auc


def labeler_table(folder: Path, problem: Problem) -> None:
    table = []
    for mode in ("online", "by hand, max entropy", "by hand, random order"):
        name = f"{problem.name}_{mode}".replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        session = open_session(folder, name, problem)
        start = time.perf_counter()
        given, auc = labels_to_target(session, problem, mode)
        table.append((mode, given, auc, time.perf_counter() - start))
        session.close()
    print_table(f"Labels until the validation macro AUC reaches {problem.target} ({problem.name}, "
                f"{len(problem.truth)} rows, {problem.validation_rows} validation rows; "
                f"{LABEL_SECONDS} s per label; at most {MAX_LABELS})",
                ["mode", "labels", "AUC reached", "seconds"], table)


FIRST_ROUND_SECONDS = 1.0  # the simulated labeler's pace while the first round is awaited
FIRST_ROUND_EVERY = 20


def first_round(folder: Path, problem: Problem, runner: str) -> tuple[int, float, str]:
    """Labels given and seconds from ``start_online`` (a fresh worker) until the first round
    is applied, labeling at :data:`FIRST_ROUND_SECONDS` a label; and where it trained."""
    session = open_session(folder, f"first_{runner}", problem)
    classes, truth = problem.classes, problem.truth
    session.sample({"kind": "unlabeled"}, "random", 400)
    start = time.perf_counter()
    session.start_online(every=FIRST_ROUND_EVERY, order="max entropy", explore=0.2, count=50,
                         runner=runner)
    given, where = 0, ""
    while not session.online_status()["rounds"] and given < MAX_LABELS:
        row = session.queue[session.cursor]
        session.annotate(row, truth.loc[row, classes].to_dict())
        session.cursor = min(session.cursor + 1, len(session.queue) - 1)
        given += 1
        status = session.online_status()
        if not where and status["training"]:  # "auto" trains in a thread while it starts
            starting = status["worker"] == "starting" and runner == "auto"
            where = "kernel thread" if starting else "worker"
        idle(session, FIRST_ROUND_SECONDS)
    seconds = time.perf_counter() - start
    session.stop_online()
    session.close()
    return given, seconds, where


def first_round_table(folder: Path, problem: Problem) -> None:
    """The first round's delay with runner "process" (every round waits for the worker, as
    before) and "auto" (rounds train in a thread while the worker starts), same process."""
    figures = {runner: first_round(folder, problem, runner) for runner in ("process", "auto")}
    base = figures["process"][1]
    rows = [(runner, given, seconds, seconds / base, where)
            for runner, (given, seconds, where) in figures.items()]
    print_table(f"First online round ({problem.name}; a label every {FIRST_ROUND_SECONDS} s, a "
                f"round every {FIRST_ROUND_EVERY} labels, a fresh worker; load average "
                f"{os.getloadavg()[0]:.1f})",
                ["runner", "labels until the first round", "seconds", "ratio to process",
                 "first round trained in"], rows)


def main(parts: list[str]) -> None:
    demo = demo_problem()
    with tempfile.TemporaryDirectory() as folder:
        if parts == ["first"]:
            first_round_table(Path(folder), demo)
            return
        latency_table(Path(folder), demo)
        if "latency" not in parts:
            first_round_table(Path(folder), demo)
            for problem in (demo, digits_problem()):
                labeler_table(Path(folder), problem)


if __name__ == "__main__":
    main(sys.argv[1:])
