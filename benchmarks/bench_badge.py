"""P3: BADGE picks, factorised (patchwork_widget.active.badge) vs materialised gradients.

The materialised baseline builds the N x (d+1)C gradient-embedding matrix, as the BADGE
reference code does, then runs the same k-means++ seeding with distances from one
matrix-vector product per pick. Peak memory is measured with tracemalloc (NumPy reports its
allocations to it) from after the inputs exist; time is wall-clock of the whole call.

Goals: factorised <= 1/10 the memory of materialised and no slower, same picks;
N=100,000, C=50, d=2048, k=100 in < 5 s and < 1 GB.

    python benchmarks/bench_badge.py            # all cases (~3 min on 2 cores)
    python benchmarks/bench_badge.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _table import print_table

from patchwork_widget.active.badge import badge


def inputs(n: int, d: int, c: int, dtype: type, seed: int = 0):
    rng = np.random.default_rng(seed)
    probs = 1.0 / (1.0 + np.exp(-2.0 * rng.standard_normal((n, c))))
    emb = rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
    return probs, emb


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
    picks, t_f, m_f = measure(badge, probs, emb, k, seed=0)
    input_mb = (probs.nbytes + emb.nbytes) / 2**20
    if not with_baseline:
        return [(title, "factorised", t_f, m_f, input_mb, "-", "-", "-")]
    ref, t_m, m_m = measure(materialised, probs, emb, k, 0)
    return [(title, "materialised", t_m, m_m, input_mb, 1.0, 1.0, "-"),
            (title, "factorised", t_f, m_f, input_mb, t_f / t_m, m_f / m_m, same(picks, ref))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 20 s)")
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


if __name__ == "__main__":
    main()
