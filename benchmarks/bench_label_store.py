"""P2 / FEATURES L4: durable annotations per second vs. rewriting the CSV per click; the
background export beside the labeler, and opening a big project (issue 26).

Run: ``python benchmarks/bench_label_store.py [--part durability|exports|open|all]``.
Prints tables:

- ``durability`` (about a minute): durable annotations per second on a 1,000,000-row,
  10-class table (WAL, ``synchronous=FULL``, one committed transaction per annotation);
  time to open a store: create the journal, replay pending actions, reopen after
  compaction; the baseline of rewriting the whole CSV after each annotation, and the ratio.
- ``exports``: ``Session.annotate`` latency (p50, p95) and ``Session.sample`` time while
  clicks go on, for three stores side by side in one process, in interleaved rounds:
  autosave off, background exports written by the autosave thread (the way before issue
  26: ``PROCESS_ROWS`` out of reach, no rest after an export) and by the worker process
  (now); ratios against autosave off. At two loads: quiet, and a busy loop per core.
- ``open``: first open of a CSV (journal created), reopen, and peak memory, each in a
  fresh process (Linux: the peak is the process's VmHWM, reset after the imports), against
  ``pandas.read_csv`` of the same file run the same way,
  interleaved, at the same two loads. ``--before DIR`` adds the opens of another copy of
  the package (e.g. ``git archive main`` unpacked in DIR) run the same way; ``--team`` the
  opens of the same table as a project on a throwaway PostgreSQL server (the tests'
  helper) with its own export file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

import patchwork_widget.labels.autosave as autosave_module
import patchwork_widget.labels.exporting as exporting_module
import patchwork_widget.labels.store as store_module
from patchwork_widget.labels import LabelStore, journal_path, label_counts, prep_label_dataframe
from patchwork_widget.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = multiprocessing.get_context("spawn")  # the busy loops


def _timed(fn, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _rate(step, seconds: float) -> float:
    """Calls of ``step`` per second over ``seconds``."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start)


def _bare_commit(db: sqlite3.Connection) -> None:
    """One one-row transaction with the store's settings: the ceiling for annotate."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (?)", (time.time(),))
    db.execute("COMMIT")


def _bulk_pending_actions(path: Path, n_actions: int, n_rows: int, classes: list[str]) -> None:
    """Append ``n_actions`` single-cell annotate actions to a journal in one transaction.

    The same journal content as ``n_actions`` calls of ``annotate``, written at once so the
    benchmark need not spend minutes producing it.
    """
    rng = np.random.default_rng(1)
    rows = rng.integers(0, n_rows, n_actions).tolist()
    fields = [classes[i] for i in rng.integers(0, len(classes), n_actions)]
    values = rng.integers(0, 2, n_actions).astype(float).tolist()
    db = sqlite3.connect(journal_path(path), isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    first = db.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0] + 1
    now = time.time()
    db.executemany(
        "INSERT INTO actions (id, time, kind, seconds, user, session) "
        "VALUES (?, ?, 'annotate', 1.0, 'bench', 'bench')",
        ((first + i, now) for i in range(n_actions)),
    )
    db.executemany(
        "INSERT INTO events (action, row, field, old, new) VALUES (?, ?, ?, NULL, ?)",
        zip(range(first, first + n_actions), rows, fields, values),
    )
    db.execute("COMMIT")
    db.close()


def durability(args: argparse.Namespace) -> None:
    """The ``durability`` part (see the module's docstring)."""
    classes = [f"class{i}" for i in range(args.classes)]
    df = prep_label_dataframe([f"images/tile_{i:08d}.png" for i in range(args.rows)], classes)
    results: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "labels.csv"
        store, t_create = _timed(LabelStore.open, path, df=df)
        results.append(("open: create journal (base snapshot)", f"{t_create:.2f} s"))

        # fsync speed drifts with other work on the machine: alternate short rounds of the
        # store and of bare SQLite commits, and keep the best round of each.
        rng = random.Random(0)
        bare = sqlite3.connect(Path(folder) / "bare.sqlite", isolation_level=None)
        bare.execute("PRAGMA journal_mode=WAL")
        bare.execute("PRAGMA synchronous=FULL")
        bare.execute("CREATE TABLE t (x REAL)")
        rates, ceilings = [], []
        for _ in range(args.rounds):
            rates.append(
                _rate(
                    lambda: store.annotate(
                        rng.randrange(args.rows), {rng.choice(classes): rng.random() < 0.3}, 1.0
                    ),
                    args.seconds / args.rounds,
                )
            )
            ceilings.append(_rate(lambda: _bare_commit(bare), args.seconds / args.rounds / 2))
        bare.close()
        rate = max(rates)
        results.append(
            (
                f"durable annotations (1 txn each, synchronous=FULL), best of {args.rounds}",
                f"{rate:,.0f} /s",
            )
        )
        results.append(("  median round", f"{sorted(rates)[len(rates) // 2]:,.0f} /s"))
        results.append(("  ceiling: bare one-row SQLite commits, best", f"{max(ceilings):,.0f} /s"))
        if not store.counts.equals(label_counts(store.df)):
            raise RuntimeError("incremental counts differ from a full recount")
        expected = store.df.copy()
        store.close(export=False)  # folds the annotations into the snapshot

        _bulk_pending_actions(path, args.replay_actions, args.rows, classes)
        compact_after, store_module.COMPACT_AFTER = store_module.COMPACT_AFTER, 10**9  # the replay alone
        store, t_replay = _timed(LabelStore.open, path)
        results.append(
            (f"open: snapshot + replay of {args.replay_actions:,} actions", f"{t_replay:.2f} s")
        )
        _, t_compact = _timed(store.compact)
        results.append(("compact (rewrite snapshot)", f"{t_compact:.2f} s"))
        store.close(export=False)
        store, t_open = _timed(LabelStore.open, path)
        results.append(("open: snapshot only, after compaction", f"{t_open:.2f} s"))
        changed = (store.df[classes].fillna(-1) != expected[classes].fillna(-1)).any(axis=1).sum()
        results.append(("rows changed by the replayed actions", f"{changed:,}"))

        _, t_parquet = _timed(store.export, Path(folder) / "labels.parquet")
        results.append(("atomic Parquet export", f"{t_parquet:.2f} s"))
        _, t_export = _timed(store.export)
        results.append(("atomic CSV export", f"{t_export:.2f} s"))
        store.close(export=False)

        baseline = Path(folder) / "baseline.csv"
        table = expected.copy()
        rewrites = []
        for i in range(args.csv_rewrites):
            table.iat[i, 3] = 1.0  # one annotation, then the whole file again
            rewrites.append(_timed(table.to_csv, baseline, index=False)[1])
        per_rewrite = min(rewrites)
        results.append(
            ("baseline: rewrite whole CSV per annotation, best", f"{1 / per_rewrite:.2f} /s")
        )
        results.append(("speed-up over the baseline (best vs best)", f"{rate * per_rewrite:,.0f} x"))

    store_module.COMPACT_AFTER = compact_after
    title = f"LabelStore on {args.rows:,} rows x {args.classes} classes"
    width = max(len(name) for name, _ in results)
    print(title)
    print("-" * (width + 16))
    for name, value in results:
        print(f"{name:<{width}}  {value:>12}")


# -- loads -------------------------------------------------------------------------------


def spin(started) -> None:
    """A busy loop, until terminated."""
    started.set()
    while True:
        pass


@contextmanager
def load(kind: str) -> Iterator[None]:
    """``quiet`` (nothing added) or ``busy`` (one busy loop per core) while inside."""
    procs = []
    if kind == "busy":
        started = [CONTEXT.Event() for _ in range(os.cpu_count() or 2)]
        procs = [CONTEXT.Process(target=spin, args=(event,), daemon=True) for event in started]
        for proc, event in zip(procs, started):
            proc.start()
            event.wait(120)
    print(f"[{kind}: load average {os.getloadavg()[0]:.1f} before the busy loops, if any]",
          flush=True)
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


# -- exports beside the labeler ----------------------------------------------------------

#: name -> (autosave, PROCESS_ROWS, BACKOFF) of the stores compared.
EXPORT_CONFIGS = {
    "autosave off": (None, exporting_module.PROCESS_ROWS, autosave_module.BACKOFF),
    "thread export (before)": (1.0, 2**62, 0.0),
    "worker export (now)": (1.0, exporting_module.PROCESS_ROWS, autosave_module.BACKOFF),
}


def _session(path: Path, df: pd.DataFrame, autosave: float | None, process_rows: int,
             backoff: float) -> Session:
    defaults = exporting_module.PROCESS_ROWS, autosave_module.BACKOFF
    exporting_module.PROCESS_ROWS, autosave_module.BACKOFF = process_rows, backoff
    try:  # both are read when the store opens
        store = LabelStore.open(path, df=df, autosave=autosave)
    finally:
        exporting_module.PROCESS_ROWS, autosave_module.BACKOFF = defaults
    return Session(store, seed=0)


def _clicks(session: Session, seconds: float, rng: random.Random, classes: list[str],
            out: dict[str, list]) -> None:
    """Label like a fast annotator for ``seconds``: annotate a row, refill the queue, pause."""
    rows = len(session.df)
    end = time.perf_counter() + seconds
    seen = {session.store.export_state.exported_at}
    while time.perf_counter() < end:
        row = rng.randrange(rows)
        start = time.perf_counter()
        session.annotate(row, {rng.choice(classes): float(rng.random() < 0.3)}, 1.0)
        annotated = time.perf_counter()
        session.sample(order="random", count=50)
        out["annotate"].append(annotated - start)
        out["sample"].append(time.perf_counter() - annotated)
        seen.add(session.store.export_state.exported_at)
        time.sleep(0.02)
    out["exports"].append(len(seen) - 1)


def _peak_mb(pid: int) -> float:
    """Process ``pid``'s peak resident memory (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exports(args: argparse.Namespace, folder: Path) -> None:
    """The ``exports`` part (see the module's docstring)."""
    classes = [f"class{i}" for i in range(args.classes)]
    df = prep_label_dataframe([f"images/tile_{i:08d}.png" for i in range(args.rows)], classes)
    suffix = f".{args.format}"
    sessions = {name: _session(folder / f"export{i}{suffix}", df, *config)
                for i, (name, config) in enumerate(EXPORT_CONFIGS.items())}
    del df
    rng = random.Random(0)
    table = []
    try:
        for kind in args.loads:
            figures = {name: {"annotate": [], "sample": [], "exports": []} for name in sessions}
            with load(kind):
                for round_ in range(args.export_rounds):
                    names = list(sessions)
                    names = names[round_ % len(names):] + names[:round_ % len(names)]
                    for name in names:
                        for other, session in sessions.items():  # no export left running
                            if EXPORT_CONFIGS[other][0] is not None:
                                session.store.wait_exported(3600)
                        _clicks(sessions[name], args.export_seconds, rng, classes, figures[name])
            off = figures["autosave off"]
            for name, got in figures.items():
                p50, p95 = (np.percentile(got["annotate"], q) * 1e3 for q in (50, 95))
                sample = float(np.mean(got["sample"]))
                table.append((kind, name, len(got["annotate"]), p50, p95, p95 / p50,
                              sample * 1e3, sample / float(np.mean(off["sample"])),
                              sum(got["exports"])))
        worker = sessions["worker export (now)"].store._exports.worker_pid
        worker_mb = _peak_mb(worker) if worker is not None else float("nan")
    finally:
        for session in sessions.values():
            session.close()
    print(f"\nexport worker's peak memory (VmHWM): {worker_mb:,.0f} MB")
    print_table(
        f"Session.annotate and Session.sample while exports run: {args.rows:,} rows x "
        f"{args.classes} classes, {args.format} outfile, {args.export_rounds} interleaved "
        f"rounds of {args.export_seconds:.0f} s per store and load",
        ["load", "store", "clicks", "annotate p50 ms", "p95 ms", "p95/p50", "sample ms",
         "sample / off", "exports"], table)


# -- opening a big project ---------------------------------------------------------------

CHILD = """
import json, sys, time
kind, path, *team = sys.argv[1:]
import pandas as pd
from patchwork_widget.labels import LabelStore

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

with open("/proc/self/clear_refs", "w") as refs:  # the peak (VmHWM) starts again from here
    refs.write("5")
before = status("VmRSS")
start = time.perf_counter()
if kind == "read_csv":
    table = pd.read_csv(path)
elif team:
    store = LabelStore.open(path, autosave=None, journal=team[0], project=team[1])
else:
    store = LabelStore.open(path, autosave=None)
seconds = time.perf_counter() - start
peak = status("VmHWM")
if kind != "read_csv":
    store.close(export=False)
print(json.dumps({"seconds": seconds, "peak_mb": peak, "grew_mb": peak - before}))
"""


def _child(kind: str, path: Path, package: Path, *team: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package)}
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), *team], env=env,
                          check=True, capture_output=True, text=True, timeout=3600)
    return json.loads(done.stdout.splitlines()[-1])


def opening(args: argparse.Namespace, folder: Path, url: str | None) -> None:
    """The ``open`` part (see the module's docstring); ``url``: also open the table as a
    project on that PostgreSQL server."""
    classes = [f"class{i}" for i in range(args.classes)]
    df = prep_label_dataframe([f"images/tile_{i:08d}.png" for i in range(args.rows)], classes)
    rng = np.random.default_rng(0)
    for name in classes[:3]:  # some labels, as in a project under way
        picked = rng.random(args.rows) < 0.05
        df.loc[picked, name] = (rng.random(int(picked.sum())) < 0.3).astype(float)
    source = folder / "source.csv"
    df.to_csv(source, index=False)
    del df
    packages = {"now": ROOT}
    if args.before:
        packages["before"] = Path(args.before)
    table = []
    for kind in args.loads:
        got: dict[str, list[dict]] = {}
        with load(kind):
            for rep in range(args.open_reps):
                got.setdefault("read_csv", []).append(_child("read_csv", source, ROOT))
                for name, package in packages.items():
                    project = folder / f"{name}{rep}"
                    project.mkdir()
                    shutil.copy(source, project / "labels.csv")
                    shutil.copy(source, project / "team.csv")
                    got.setdefault(f"first open ({name})", []).append(
                        _child("open", project / "labels.csv", package))
                    got.setdefault(f"reopen ({name})", []).append(
                        _child("open", project / "labels.csv", package))
                    if url is not None:  # a team project of the same table
                        team = (url, f"{kind}-{rep}-{name}")
                        got.setdefault(f"team first open ({name})", []).append(
                            _child("team", project / "team.csv", package, *team))
                        got.setdefault(f"team reopen ({name})", []).append(
                            _child("team", project / "team.csv", package, *team))
                    shutil.rmtree(project)
        def best(name: str, key: str) -> float:
            return min(run[key] for run in got[name])

        def ratio(a: float, b: float) -> float:
            return a / b if b > 0 else float("nan")

        for name in got:
            figures = [best(name, key) for key in ("seconds", "peak_mb", "grew_mb")]
            base = [best("read_csv", key) for key in ("seconds", "peak_mb", "grew_mb")]
            table.append((kind, name, *(x for pair in zip(figures, map(ratio, figures, base))
                                        for x in pair)))
    print_table(
        f"Opening a {args.rows:,}-row x {args.classes}-class CSV project, each in a fresh "
        f"process, best of {args.open_reps} interleaved runs",
        ["load", "what", "seconds", "/ read_csv", "peak RSS MB", "/ read_csv",
         "grew MB", "/ read_csv"], table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["durability", "exports", "open", "all"],
                        default="all")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0, help="annotation phase length")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--replay-actions", type=int, default=100_000)
    parser.add_argument("--csv-rewrites", type=int, default=2)
    parser.add_argument("--loads", default="quiet,busy",
                        help="comma-separated: quiet, busy (a busy loop per core)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv",
                        help="the outfile of the exports part")
    parser.add_argument("--export-rounds", type=int, default=3)
    parser.add_argument("--export-seconds", type=float, default=20.0,
                        help="clicking time per store and round")
    parser.add_argument("--open-reps", type=int, default=2)
    parser.add_argument("--before", default=None,
                        help="a folder holding another copy of patchwork_widget to compare")
    parser.add_argument("--team", action="store_true",
                        help="open part: also open the table as a team project (PostgreSQL)")
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp dir)")
    args = parser.parse_args()
    args.loads = args.loads.split(",")
    parts = ["durability", "exports", "open"] if args.part == "all" else [args.part]
    if "durability" in parts:
        durability(args)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        if "exports" in parts:
            exports(args, Path(folder))
        if "open" in parts:
            server = None
            if args.team:  # a throwaway server, started by the tests' helper
                sys.path.insert(0, str(ROOT / "tests" / "unit"))
                from postgres_server import PostgresServer

                server = PostgresServer()
            try:
                opening(args, Path(folder), None if server is None else server.url)
            finally:
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
