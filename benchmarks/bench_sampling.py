"""Sampling at 10k / 100k / 1M rows (A2): ``Session.sample`` against plain NumPy.

For each size the table holds the time of one ``Session.sample`` call (unlabeled subset, 50
rows) for random, max entropy, margin and highest C, after predictions exist and a few labels
were given between calls (as while labeling), and the NumPy baseline in the same process:
the order's score over all rows + ``argpartition`` for the top 50 (random: ``rng.choice``).
Goal: max entropy at 1M rows <= 1.5x the baseline.

    python benchmarks/bench_sampling.py            # 10k, 100k, 1M rows x 10 classes
    python benchmarks/bench_sampling.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _table import print_table

from patchwork_widget.active import uncertainty
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session

CLASSES = [f"class_{i}" for i in range(10)]
COUNT = 50
REPEATS = 5


def best(fn, repeats: int = REPEATS, before=None) -> float:
    """Best wall time of ``fn()`` over ``repeats`` calls, ``before()`` (untimed) ahead of each."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def baselines(probs: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    def top(score):
        return np.argpartition(-score, COUNT)[:COUNT]

    return {
        "random": best(lambda: rng.choice(len(probs), COUNT, replace=False)),
        "max entropy": best(lambda: top(uncertainty.binary_entropy(probs).mean(axis=1))),
        "margin": best(lambda: top((1 - np.abs(2 * probs - 1)).mean(axis=1))),
        "highest": best(lambda: top(probs[:, 0])),
    }


def session_times(n: int, folder: Path) -> tuple[dict[str, float], np.ndarray]:
    rng = np.random.default_rng(0)
    paths = [f"img_{i:07d}.png" for i in range(n)]
    session = Session.open(prep_label_dataframe(paths, CLASSES), outfile=folder / f"l{n}.parquet", seed=0)
    probs = rng.random((n, len(CLASSES)))
    session.set_predictions(pd.DataFrame(probs, columns=CLASSES))
    rows = iter(rng.permutation(n))
    orders = {"random": "random", "max entropy": "max entropy", "margin": "margin",
              "highest": {"name": "highest", "cls": CLASSES[0]}}
    out = {}
    for name, order in orders.items():
        out[name] = best(lambda: session.sample({"kind": "unlabeled"}, order, COUNT),
                         before=lambda: session.annotate(int(next(rows)), {CLASSES[1]: 1.0}))
    session.store.close()
    return out, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    sizes = [10_000, 100_000] if parser.parse_args().quick else [10_000, 100_000, 1_000_000]
    table = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            ours, probs = session_times(n, Path(folder))
            base = baselines(probs, np.random.default_rng(1))
            for name in ours:
                table.append((f"{n:,}", name, ours[name] * 1e3, base[name] * 1e3, ours[name] / base[name]))
    print_table(f"Session.sample of {COUNT} rows (best of {REPEATS}, one annotation between calls)",
                ["rows", "order", "sample ms", "NumPy ms", "ratio"], table)


if __name__ == "__main__":
    main()
