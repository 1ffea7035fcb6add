"""P2 / FEATURES L4: durable annotations per second vs. rewriting the CSV per click.

Run: ``python benchmarks/bench_label_store.py`` (about a minute). Prints a table:

- durable annotations per second on a 1,000,000-row, 10-class table (WAL,
  ``synchronous=FULL``, one committed transaction per annotation);
- time to open a store: create the journal, replay pending actions, reopen after
  compaction;
- the baseline of rewriting the whole CSV after each annotation, and the ratio.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

import patchwork_widget.labels.store as store_module
from patchwork_widget.labels import LabelStore, journal_path, label_counts, prep_label_dataframe


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0, help="annotation phase length")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--replay-actions", type=int, default=100_000)
    parser.add_argument("--csv-rewrites", type=int, default=2)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp dir)")
    args = parser.parse_args()

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
        store_module.COMPACT_AFTER = 10**9  # time the replay alone
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

    title = f"LabelStore on {args.rows:,} rows x {args.classes} classes"
    width = max(len(name) for name, _ in results)
    print(title)
    print("-" * (width + 16))
    for name, value in results:
        print(f"{name:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
