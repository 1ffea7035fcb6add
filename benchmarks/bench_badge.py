"""P3: BADGE picks, factorised and lazy (patchwork_widget.active.badge), against baselines.

Three tables:

1. Factorised vs materialised gradients. The materialised baseline builds the N x (d+1)C
   gradient-embedding matrix, as the BADGE reference code does, then runs k-means++ seeding
   with distances from one matrix-vector product per pick. "eager" is the factorised seeding
   with every centre applied before the next draw (``_refresh_limits`` patched): the same
   random stream, so the same picks as the materialised run. "lazy" is the default (rejection
   sampling against stale bounds): the same pick distribution, other picks for a seed. Peak
   memory with tracemalloc (NumPy reports to it) above the inputs; time is wall-clock.
2. A million rows x 256 (float32, C = 10, k = 100), plain Gaussian and clustered embeddings:
   lazy vs eager time in the same process, and pick quality: the k-means++ cost (sum of D^2
   after the k picks, lower covers the data better) and the overlap of picks between runs.
3. Active learning outcome: AULC on scikit-learn's digits (logistic regression, 20 + 20 per
   round) with lazy and eager BADGE, against random, with the same repeats.

Goals: factorised <= 1/10 the memory of materialised and no slower, same picks when eager;
N=100,000, C=50, d=2048, k=100 in < 5 s and < 1 GB; 1M x 256 in < 2 s.

    python benchmarks/bench_badge.py            # all cases (~10 min on 2 loaded cores)
    python benchmarks/bench_badge.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from unittest import mock

import numpy as np
from _table import print_table
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from patchwork_widget.active import badge as badge_module
from patchwork_widget.active.badge import badge
from patchwork_widget.active.simulate import aulc_summary, compare_strategies
from patchwork_widget.active.strategies import order_strategy


def eager():
    """Apply every centre before the next draw: the former seeding, pick for pick."""
    return mock.patch.object(badge_module, "_refresh_limits", lambda n: (1, 0))


def eager_badge(*args, **kwargs) -> np.ndarray:
    with eager():
        return badge(*args, **kwargs)


def inputs(n: int, d: int, c: int, dtype: type, seed: int = 0, clusters: int = 0):
    """Sigmoid outputs and embeddings: Gaussian, or ``clusters`` tight Gaussian clusters whose
    outputs come from a random linear layer (so the gradients cluster too)."""
    rng = np.random.default_rng(seed)
    if not clusters:
        probs = 1.0 / (1.0 + np.exp(-2.0 * rng.standard_normal((n, c))))
        return probs, rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
    centres = 3.0 * rng.standard_normal((clusters, d), dtype=np.float32)
    emb = rng.standard_normal((n, d), dtype=np.float32)
    emb *= 0.3
    emb += centres[rng.integers(0, clusters, n)]
    logits = (emb @ (rng.standard_normal((d, c), dtype=np.float32) / np.sqrt(d))).astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logits)), emb.astype(dtype)


def materialised(probs: np.ndarray, emb: np.ndarray, k: int, seed: int) -> np.ndarray:
    """BADGE with G = a (x) [h, 1] built in memory (dtype of ``emb``)."""
    rng = np.random.default_rng(seed)
    dtype = emb.dtype
    a = (probs - (probs >= 0.5)).astype(dtype)
    n = len(a)
    g = np.empty((n, a.shape[1], emb.shape[1] + 1), dtype=dtype)
    np.multiply(a[:, :, None], emb[:, None, :], out=g[:, :, :-1])
    g[:, :, -1] = a
    g = g.reshape(n, -1)
    sq = np.einsum("ij,ij->i", g, g).astype(np.float64)
    picks = [int(np.argmax(sq))]
    dist = np.maximum(sq + sq[picks[0]] - 2.0 * (g @ g[picks[0]]), 0.0)
    dist[picks[0]] = 0.0
    while len(picks) < k:
        cum = np.cumsum(dist)
        j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        picks.append(j)
        np.minimum(dist, np.maximum(sq + sq[j] - 2.0 * (g @ g[j]), 0.0), out=dist)
        dist[j] = 0.0
    return np.asarray(picks)


def measure(fn, *args, **kwargs):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def same(a: np.ndarray, b: np.ndarray) -> str:
    if np.array_equal(a, b):
        return "yes"
    first = int(np.argmax(a != b)) if len(a) == len(b) else min(len(a), len(b))
    return f"no (from pick {first}; {len(set(a) & set(b))}/{len(a)} shared)"


def compare(n: int, d: int, c: int, k: int, dtype: type, with_baseline: bool) -> list[tuple]:
    probs, emb = inputs(n, d, c, dtype)
    title = f"N={n:,} d={d} C={c} k={k} {np.dtype(dtype).name}"
    input_mb = (probs.nbytes + emb.nbytes) / 2**20
    picks, t_e, m_e = measure(eager_badge, probs, emb, k, seed=0)
    _, t_l, m_l = measure(badge, probs, emb, k, seed=0)
    if not with_baseline:
        return [(title, "factorised, eager", t_e, m_e, input_mb, "-", "-", "-"),
                (title, "factorised, lazy", t_l, m_l, input_mb, t_l / t_e, "-", "distribution")]
    ref, t_m, m_m = measure(materialised, probs, emb, k, 0)
    return [(title, "materialised", t_m, m_m, input_mb, 1.0, 1.0, "-"),
            (title, "factorised, eager", t_e, m_e, input_mb, t_e / t_m, m_e / m_m,
             same(picks, ref)),
            (title, "factorised, lazy", t_l, m_l, input_mb, t_l / t_m, m_l / m_m,
             "distribution")]


def seeding_cost(probs: np.ndarray, emb: np.ndarray, picks: np.ndarray) -> float:
    """Sum over rows of the squared gradient distance to the nearest pick (k-means++ cost)."""
    a = probs - (probs >= 0.5)
    sq = np.einsum("ij,ij->i", a, a) * (np.einsum("ij,ij->i", emb, emb).astype(np.float64) + 1)
    total = 0.0
    for start in range(0, len(a), 65536):
        rows = slice(start, start + 65536)
        h = (emb[rows] @ emb[picks].T).astype(np.float64) + 1.0
        dist = sq[rows, None] + sq[None, picks] - 2.0 * (a[rows] @ a[picks].T) * h
        total += float(np.maximum(dist.min(axis=1), 0.0).sum())
    return total


def large(n: int, clusters: int, seeds: int) -> list[tuple]:
    """Lazy vs eager at N x 256, k = 100: seconds, k-means++ cost, overlap of picks."""
    probs, emb = inputs(n, 256, 10, np.float32, clusters=clusters)
    title = f"N={n:,} d=256 C=10 k=100 " + (f"{clusters} clusters" if clusters else "Gaussian")
    runs = {}
    for name, fn in (("eager", eager_badge), ("lazy", badge)):
        times, picks = [], []
        for seed in range(seeds):
            start = time.perf_counter()
            picks.append(fn(probs, emb, 100, seed=seed))
            times.append(time.perf_counter() - start)
        cost = np.mean([seeding_cost(probs, emb, p) for p in picks])
        runs[name] = (float(np.median(times)), cost, picks)
    overlap = {
        "eager/eager": np.mean([len(set(runs["eager"][2][i]) & set(runs["eager"][2][j]))
                                for i in range(seeds) for j in range(i + 1, seeds)]),
        "lazy/eager": np.mean([len(set(runs["lazy"][2][i]) & set(runs["eager"][2][j]))
                               for i in range(seeds) for j in range(seeds) if i != j]),
    }
    base_t, base_cost = runs["eager"][:2]
    return [(title, name, t, t / base_t, cost / base_cost,
             overlap["eager/eager" if name == "eager" else "lazy/eager"])
            for name, (t, cost, _) in runs.items()]


def learning_outcome(repeats: int, rounds: int) -> list[tuple]:
    """AULC on digits with lazy and eager BADGE (and random), same splits and seeds."""
    eager_order = order_strategy("badge")

    def eager_strategy(state, k, rng):
        with eager():
            return eager_order(state, k, rng)

    x, y = load_digits(return_X_y=True)
    results = compare_strategies(
        x / 16.0, y, {"random": "random", "BADGE lazy": "badge", "BADGE eager": eager_strategy},
        lambda: LogisticRegression(max_iter=300, tol=1e-3), seed_size=20, query_size=20,
        rounds=rounds, repeats=repeats, metric="accuracy", seed=0)
    summary = aulc_summary(results)
    base = summary.loc["random", "mean"]
    return [(f"digits, {repeats} repeats", name, row["mean"], row["std"], row["mean"] / base)
            for name, row in summary.iterrows()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rows = []
    rows += compare(50_000 // scale, 512, 10, 64, np.float64, True)
    rows += compare(200_000 // scale, 512, 10, 64, np.float32, True)
    rows += compare(100_000 // scale, 2048, 50, 100, np.float32, False)
    print_table(
        "P3 BADGE: factorised vs materialised gradient embeddings (peak MB above the inputs; "
        "goals: <= 0.1x memory, <= 1x time, same picks; 100k x 2048, C=50: < 5 s, < 1 GB)",
        ["case", "method", "seconds", "peak MB", "inputs MB", "x time", "x memory",
         "same picks"], rows)
    seeds = 2 if args.quick else 3
    rows = []
    for clusters in (0, 50):
        rows += large(1_000_000 // scale, clusters, seeds)
    print_table(
        f"BADGE lazy vs eager (median of {seeds} seeds; cost = sum of D^2 after the picks, mean; "
        "overlap = picks shared by two runs of other seeds, mean; goal 1M x 256 < 2 s)",
        ["case", "seeding", "seconds", "x eager time", "x eager cost", "overlap / 100"], rows)
    print_table("Active learning with lazy and eager BADGE: AULC (accuracy), 20 + 20 per round",
                ["problem", "strategy", "AULC", "std", "x random"],
                learning_outcome(2 if args.quick else 5, 4 if args.quick else 8))


if __name__ == "__main__":
    main()
