"""Issue 16: the team journal on PostgreSQL vs. the SQLite journal.

Run: ``python benchmarks/bench_team.py`` (about a minute and a half). With ``--url
postgresql://...`` it uses that server; otherwise it starts a throwaway one on loopback
with the tests' helper (needs Debian's ``postgresql`` package). Prints, for 1, 2 and 4
annotator processes labeling one project at once (every call acknowledged only after the
server's synchronous commit, each process also applying the others' changes live):

- durable annotations per second, all annotators together;
- acknowledgement latency p50 / p95 (one ``annotate`` call, as the caller sees it);

and the same for one SQLite store (the embedded journal has one writer). ``--sampling``
instead times ``Session.sample`` of 50 unlabeled rows (random order), which on a team
journal claims them while another annotator holds 5,000 rows, against the same sample on
the SQLite journal (the runs interleaved in one process, so load on the machine touches
both alike).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.session import Session

CLASSES = [f"c{i}" for i in range(10)]


def _table(nrows: int):
    return prep_label_dataframe([f"img_{i:06d}.png" for i in range(nrows)], CLASSES)


def _annotator(url: str | None, project: str, name: str, folder: str, rows: list[int],
               nrows: int, ready, go, results) -> None:
    """Open, wait for ``go``, label ``rows`` one call each; put the call latencies."""
    journal = {} if url is None else {"journal": url, "project": project, "annotator": name}
    store = LabelStore.open(Path(folder) / f"{name}.csv", df=_table(nrows), autosave=None,
                            **journal)
    ready.put(name)
    go.wait()
    latencies = []
    for k, row in enumerate(rows):
        start = time.perf_counter()
        store.annotate(row, {CLASSES[k % len(CLASSES)]: k % 2})
        latencies.append(time.perf_counter() - start)
    results.put((name, time.perf_counter(), latencies))
    store.close(export=False)


def run(url: str | None, annotators: int, per_annotator: int, nrows: int) -> dict:
    """Time ``annotators`` processes labeling ``per_annotator`` rows each at once."""
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    project = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        if url is not None:  # the project exists before the annotators race to open it
            LabelStore.open(Path(folder) / "setup.csv", df=_table(nrows), autosave=None,
                            journal=url, project=project).close(export=False)
        rows = np.random.default_rng(0).permutation(nrows)[: annotators * per_annotator]
        procs = [
            ctx.Process(target=_annotator, args=(
                url, project, f"a{i}", folder,
                rows[i * per_annotator:(i + 1) * per_annotator].tolist(), nrows,
                ready, go, results,
            ))
            for i in range(annotators)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=300)
        start = time.perf_counter()
        go.set()
        done = [results.get(timeout=900) for _ in procs]
        for p in procs:
            p.join(60)
    seconds = max(end for _, end, _ in done) - start
    latencies = np.concatenate([lat for _, _, lat in done]) * 1000
    return {
        "per_second": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
    }


def sampling(url: str, nrows: int, repeats: int = 40) -> dict:
    """Median ms of ``Session.sample(count=50)``: SQLite, and a team journal on which another
    annotator holds 5,000 claims; interleaved."""
    project = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        solo = Session(LabelStore.open(Path(folder) / "solo.csv", df=_table(nrows),
                                       autosave=None), seed=0)
        team = Session.open(_table(nrows), outfile=Path(folder) / "ana.csv", journal=url,
                            project=project, annotator="ana", seed=0)
        other = LabelStore.open(Path(folder) / "bob.csv", df=_table(nrows), autosave=None,
                                journal=url, project=project, annotator="bob")
        other.claim(np.random.default_rng(1).permutation(nrows)[:5000].tolist(), 5000)
        times: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
        try:
            for _ in range(repeats):
                for name, session in (("SQLite", solo), ("PostgreSQL", team)):
                    start = time.perf_counter()
                    session.sample(count=50)
                    times[name].append((time.perf_counter() - start) * 1000)
        finally:
            for closing in (solo, team, other):
                closing.close()
    return {name: float(np.median(ms)) for name, ms in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--per-annotator", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sampling", action="store_true",
                        help="time Session.sample with claims instead (see above)")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
        from postgres_server import PostgresServer

        server = PostgresServer()
        url = server.url
    try:
        if args.sampling:
            ms = sampling(url, args.rows)
            print(f"Session.sample(count=50), {args.rows:,}-row table, median of 40: SQLite "
                  f"{ms['SQLite']:.1f} ms, PostgreSQL with claims {ms['PostgreSQL']:.1f} ms "
                  f"(x{ms['PostgreSQL'] / ms['SQLite']:.2f})")
            return
        print(f"{args.per_annotator} annotations per annotator, {args.rows:,}-row table, "
              f"{len(CLASSES)} classes")
        print(f"{'journal':<12}{'annotators':>11}{'annotations/s':>15}{'p50 ms':>9}{'p95 ms':>9}")
        rows = [("SQLite", None, 1)] + [("PostgreSQL", url, k) for k in (1, 2, 4)]
        for name, target, k in rows:
            r = run(target, k, args.per_annotator, args.rows)
            print(f"{name:<12}{k:>11}{r['per_second']:>15.0f}{r['p50_ms']:>9.2f}"
                  f"{r['p95_ms']:>9.2f}", flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
