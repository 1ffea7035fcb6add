"""Sampling at 10k / 100k / 1M rows (A2): ``Session.sample`` against plain NumPy.

For each size the table holds the time of one ``Session.sample`` call (unlabeled subset, 50
rows) for random, max entropy, margin and highest C, after predictions exist and a few labels
were given between calls (as while labeling), and the NumPy baseline in the same process,
interleaved call by call: the order's score over all rows + ``argpartition`` for the top 50;
random: the unlabeled mask from the label array + ``rng.choice``. Goals: random <= 1.5x, the
uncertainty orders' fixed cost <= 3x at 10k rows, max entropy at 1M rows <= 1.5x.

A second table times the diversity (k-means++) and coreset (greedy k-center) orders picking
100 rows from 256-d features, once their features are prepared (the order's cache is warm, as
in a Session), against float32 loops on the same prepared features (``((x - c)**2).sum(1)``
per pick). Goal: <= 0.7x. The load average is printed beside the figures.

    python benchmarks/bench_sampling.py            # 10k, 100k, 1M rows x 10 classes
    python benchmarks/bench_sampling.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _table import print_table

from patchwork_widget.active import diversity, uncertainty
from patchwork_widget.active.registry import rank
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session

CLASSES = [f"class_{i}" for i in range(10)]
COUNT = 50
REPEATS = 5
BATCH = 100
FEATURE_DIM = 256


def best_pair(ours, base, repeats: int = REPEATS, before=None) -> tuple[float, float]:
    """Best wall times of ``ours()`` and ``base()`` over ``repeats`` interleaved rounds,
    ``before()`` (untimed) ahead of each of ours."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out, prepare in ((ours, times[0], before), (base, times[1], None)):
            if prepare is not None:
                prepare()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def baselines(probs: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict:
    def top(score):
        return np.argpartition(-score, COUNT)[:COUNT]

    return {
        "random": lambda: rng.choice(np.flatnonzero(np.isnan(labels).all(axis=1)), COUNT,
                                     replace=False),
        "max entropy": lambda: top(uncertainty.binary_entropy(probs).mean(axis=1)),
        "margin": lambda: top((1 - np.abs(2 * probs - 1)).mean(axis=1)),
        "highest": lambda: top(probs[:, 0]),
    }


def session_rows(n: int, folder: Path) -> list[tuple]:
    rng = np.random.default_rng(0)
    paths = [f"img_{i:07d}.png" for i in range(n)]
    session = Session.open(prep_label_dataframe(paths, CLASSES), outfile=folder / f"l{n}.parquet", seed=0)
    probs = rng.random((n, len(CLASSES)))
    session.set_predictions(pd.DataFrame(probs, columns=CLASSES))
    rows = iter(rng.permutation(n))
    base = baselines(probs, session.df[CLASSES].to_numpy(dtype=float), np.random.default_rng(1))
    orders = {"random": "random", "max entropy": "max entropy", "margin": "margin",
              "highest": {"name": "highest", "cls": CLASSES[0]}}
    table = []
    for name, order in orders.items():
        ours, theirs = best_pair(lambda: session.sample({"kind": "unlabeled"}, order, COUNT),
                                 base[name],
                                 before=lambda: session.annotate(int(next(rows)), {CLASSES[1]: 1.0}))
        table.append((f"{n:,}", name, ours * 1e3, theirs * 1e3, ours / theirs, _load()))
    session.store.close()
    return table


def float32_kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    picks = [int(rng.integers(len(x)))]
    dist = ((x - x[picks[0]]) ** 2).sum(axis=1)
    while len(picks) < k:
        cum = np.cumsum(dist)
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        picks.append(j)
        np.minimum(dist, ((x - x[j]) ** 2).sum(axis=1), out=dist)
    return picks


def float32_kcenter(x: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    picks = [int(rng.integers(len(x)))]
    dist = ((x - x[picks[0]]) ** 2).sum(axis=1)
    while len(picks) < k:
        dist[picks] = -1.0
        j = int(np.argmax(dist))
        picks.append(j)
        np.minimum(dist, ((x - x[j]) ** 2).sum(axis=1), out=dist)
    return picks


def batch_rows(n: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, FEATURE_DIM)).astype(np.float32)
    prepared = diversity.prepare_features(features)
    candidates = np.ones(n, dtype=bool)
    cache: dict = {}
    table = []
    for name, reference in (("diversity", float32_kmeanspp), ("coreset", float32_kcenter)):
        def ours():
            rank(name, candidates, BATCH, rng=rng, features=features, cache=cache)

        ours()  # prepares the features once, as the first call in a Session does
        mine, theirs = best_pair(ours, lambda: reference(prepared, BATCH, rng))
        table.append((f"{n:,}", name, mine * 1e3, theirs * 1e3, mine / theirs, _load()))
    return table


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    sizes = [10_000, 100_000] if parser.parse_args().quick else [10_000, 100_000, 1_000_000]
    table = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            table += session_rows(n, Path(folder))
    header = ["rows", "order", "ours ms", "NumPy ms", "ratio", "load 1/5/15 min"]
    print_table(f"Session.sample of {COUNT} rows (best of {REPEATS}, interleaved, one annotation "
                "between calls)", header, table)
    print_table(f"{BATCH}-row batches from {FEATURE_DIM}-d features (best of {REPEATS}, "
                "interleaved) against float32 loops", header,
                [row for n in sizes[:2] for row in batch_rows(n)])


if __name__ == "__main__":
    main()
