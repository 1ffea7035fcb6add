"""Features that do not fit in memory: peak memory and time of streaming prediction and
sampling on a memmap, against the same work on an in-memory array of a size that fits.

Each case runs in a child process of its own (so each peak is its own), which imports
TensorFlow, builds the default model (a linear head, 3 classes) on 512-d features, and
measures its memory after that (the baseline), then times

* ``predict``: :func:`patchwork_widget.models.predictions.predict_features` of every row;
* ``max entropy``, ``diversity``, ``coreset``: :func:`patchwork_widget.active.registry.rank`
  picking 100 of the rows (the uncertainty order on those predictions; the diversity orders on
  the features, prepared once and cached as a Session does).

Memory is reported above the baseline, two ways: the peak of anonymous (private) memory,
sampled every 2 ms from ``/proc/self/status`` (``RssAnon``): what the process itself holds,
which a memory limit counts; and the peak resident set (``VmHWM``), which also counts the
memmap's file pages the kernel keeps cached (reclaimable, shared with the page cache).

    python benchmarks/bench_streaming_features.py                # 2M x 512 memmap (4 GB)
    python benchmarks/bench_streaming_features.py --rows 200000  # a quick run

The memmap is written to ``--folder`` (default: the system's temporary folder) and removed
after. The in-memory baseline runs at ``--memory-rows`` rows (default 200,000: 400 MB), as does
a memmap of the same size, so the time ratio compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _table import print_table

DIM = 512
CLASSES = ["a", "b", "c"]
PICKS = 100
WRITE_ROWS = 65_536


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakAnon:
    """The largest ``RssAnon`` seen, sampled in a thread while it runs."""

    def __init__(self) -> None:
        self.peak = _status("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status("RssAnon"))

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))


def write_features(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` x 512 float32 rows (three clusters) as an .npy file, written in blocks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, DIM)).astype(np.float32)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, DIM))
    for start in range(0, rows, WRITE_ROWS):
        n = min(WRITE_ROWS, rows - start)
        block = rng.standard_normal((n, DIM), dtype=np.float32)
        block += centres[rng.integers(0, 3, n)]
        x[start:start + n] = block
    x.flush()
    del x


def run_case(path: Path, in_memory: bool) -> dict:
    """The child's work: what it measured, as a dict."""
    from patchwork_widget.active.registry import rank
    from patchwork_widget.images.feature_rows import chunk_rows
    from patchwork_widget.models import build_models
    from patchwork_widget.models.predictions import predict_features

    features = np.load(path, mmap_mode=None if in_memory else "r")
    models = build_models(CLASSES, feature_shape=(DIM,))
    rng = np.random.default_rng(0)
    models.output.set_weights([rng.normal(size=(DIM, 3)).astype(np.float32) * 0.05,
                               np.zeros(3, np.float32)])
    predict_features(models, features[:10])  # warm
    base_anon, base_hwm = _status("RssAnon"), _status("VmHWM")
    out: dict = {"rows": len(features), "chunk_mb": chunk_rows(features) * DIM * 4 / 2**20}
    cache: dict = {}
    labels = np.full((len(features), 3), np.nan)
    candidates = np.ones(len(features), dtype=bool)
    with PeakAnon() as peak:
        start = time.perf_counter()
        probs = predict_features(models, features)
        out["predict"] = time.perf_counter() - start
        out["predict_anon"] = peak.peak - base_anon
        for name in ("max entropy", "diversity", "coreset"):
            start = time.perf_counter()
            rank(name, candidates, PICKS, rng=np.random.default_rng(1), probs=probs,
                 features=features, labels=labels, cache=cache)
            out[name] = time.perf_counter() - start
    out["anon"] = peak.peak - base_anon
    out["hwm"] = max(0, _status("VmHWM") - base_hwm)
    out["base_anon"] = base_anon
    return out


def child(path: Path, in_memory: bool) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, __file__, "--case", str(path)]
                          + (["--in-memory"] if in_memory else []),
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the memmap")
    parser.add_argument("--memory-rows", type=int, default=200_000,
                        help="rows of the in-memory baseline (and of a memmap as large)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--case", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.in_memory)))
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_streaming_", dir=args.folder))
    try:
        small, large = folder / "small.npy", folder / "large.npy"
        write_features(small, args.memory_rows)
        cases = [("in memory", child(small, True)), ("memmap", child(small, False))]
        small.unlink()
        start = time.perf_counter()
        write_features(large, args.rows)
        written = time.perf_counter() - start
        cases.append(("memmap", child(large, False)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    mb = 2**20
    base = cases[0][1]
    rows = []
    for label, r in cases:
        per_row = r["rows"] / base["rows"]
        rows.append([label, f"{r['rows']:,}", f"{r['rows'] * DIM * 4 / mb:,.0f}",
                     r["chunk_mb"], r["predict"], r["max entropy"], r["diversity"],
                     r["coreset"], r["anon"] / mb, r["hwm"] / mb,
                     r["predict"] / per_row / base["predict"],
                     (r["diversity"] + r["coreset"]) / per_row
                     / (base["diversity"] + base["coreset"])])
    print_table(f"Streaming prediction and sampling, {DIM}-d float32 features, 3 classes, "
                f"{PICKS} picks (load average {os.getloadavg()[0]:.1f}; the large memmap took "
                f"{written:.0f} s to write)",
                ["features", "rows", "array MB", "chunk MB", "predict s", "max entropy s",
                 "diversity s", "coreset s", "peak anon MB", "peak RSS MB",
                 "predict / row vs memory", "diversity+coreset / row vs memory"], rows)
    large_case = cases[-1][1]
    print(f"\npeak anonymous memory of the {large_case['rows']:,}-row memmap: "
          f"{large_case['anon'] / mb:,.0f} MB above the baseline "
          f"({large_case['anon'] / (large_case['rows'] * DIM * 4):.3f} x the array, "
          f"{large_case['anon'] / mb / large_case['chunk_mb']:.1f} x one chunk; the "
          f"prediction alone {large_case['predict_anon'] / mb:,.0f} MB)")


if __name__ == "__main__":
    main()
