"""P4: kNN graph search and label propagation at 100,000 and (optionally) 1,000,000 rows.

Search: patchwork_widget.active.neighbors.knn_search (faiss HNSW above 50,000 rows) against
scikit-learn's brute-force ``NearestNeighbors`` with ``metric="cosine"`` (what the original
patchwork used) and with ``"euclidean"`` on L2-normalised rows (same neighbours, faster
kernel). The brute-force baselines are timed on a sample of query rows and extrapolated
linearly to all rows (their cost is linear in the number of queries); the same sample gives
the exact neighbours for recall@10. Data: "random" is i.i.d. Gaussian (no structure: the worst
case for any approximate search); "clustered" is 100 Gaussian clusters on a 32-dimensional
subspace plus small isotropic noise (closer to image features).

Propagation: 20 classes, labels derived from the clusters, 5% of rows labeled per class;
Bai et al. (20 clamped steps) and Zhou et al. (conjugate gradient, alpha 0.99, tol 1e-4).
Goals: search >= 20x faster than brute force at recall >= 0.98 (100k x 256); 1M x 128 under
2 minutes at recall >= 0.95; propagation under 20 s at 1M rows and 20 classes.

    python benchmarks/bench_knn_propagate.py            # 100k x 256 (~5 min on 2 cores)
    python benchmarks/bench_knn_propagate.py --large    # also 1M x 128 (~10 more minutes)
    python benchmarks/bench_knn_propagate.py --large --skip-small
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _table import print_table
from sklearn.neighbors import NearestNeighbors

from patchwork_widget.active.graph import graph_from_neighbors
from patchwork_widget.active.neighbors import knn_search
from patchwork_widget.active.propagate import propagate

K = 10
CLASSES = 20


def data(kind: str, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 100, n)
    if kind == "random":
        return rng.standard_normal((n, d), dtype=np.float32), cluster
    latent = 3.0 * rng.standard_normal((100, 32))[cluster] + rng.standard_normal((n, 32))
    x = latent @ (rng.standard_normal((32, d)) / np.sqrt(32)) + 0.1 * rng.standard_normal((n, d))
    return x.astype(np.float32), cluster


def brute(x: np.ndarray, queries: np.ndarray, metric: str) -> tuple[float, np.ndarray]:
    """Seconds for all N rows (extrapolated from the sample) and the sample's neighbours."""
    if metric == "euclidean":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    start = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=K + 1, metric=metric, algorithm="brute").fit(x)
    idx = nn.kneighbors(x[queries], return_distance=False)
    seconds = (time.perf_counter() - start) * len(x) / len(queries)
    return seconds, idx[:, 1:]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def run(kind: str, n: int, d: int, n_queries: int, settings: list[dict]) -> tuple[list, list]:
    x, cluster = data(kind, n, d)
    queries = np.random.default_rng(1).choice(n, n_queries, replace=False)
    t_cos, exact = brute(x, queries, "cosine")
    t_euc, _ = brute(x, queries, "euclidean")
    name = f"{kind} {n:,} x {d}"
    rows = [(name, "sklearn brute cosine (extrapolated)", t_cos, 1.0, t_euc / t_cos, 1.0),
            (name, "sklearn brute euclidean, unit rows", t_euc, t_cos / t_euc, 1.0, 1.0)]
    best = None
    for options in settings:
        start = time.perf_counter()
        idx, dist = knn_search(x, K, backend="hnsw", **options)
        seconds = time.perf_counter() - start
        label = "hnsw " + " ".join(f"{k}={v}" for k, v in options.items()) if options else (
            "hnsw, defaults (M=16, efC=40, ef=48)")
        rows.append((name, label, seconds, t_cos / seconds, t_euc / seconds,
                     recall(idx[queries], exact)))
        best = best or (idx, dist)
    return rows, propagation(name, best, cluster)


def propagation(name: str, neighbors: tuple, cluster: np.ndarray) -> list:
    idx, dist = neighbors
    start = time.perf_counter()
    graph = graph_from_neighbors(idx, dist)
    t_graph = time.perf_counter() - start
    truth = (cluster[:, None] % CLASSES == np.arange(CLASSES)).astype(float)
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(truth.shape) < 0.05, truth, np.nan)
    rows = [(name, "graph weights + normalise", t_graph, "-")]
    for method, options in (("bai", {"iterations": 20}), ("zhou", {"tol": 1e-4})):
        start = time.perf_counter()
        scores = propagate(graph, labels, method=method, **options)
        seconds = time.perf_counter() - start
        hidden = np.isnan(labels)
        accuracy = float(np.mean((scores[hidden] >= 0.5) == truth[hidden].astype(bool)))
        rows.append((name, f"propagate {method}, {CLASSES} classes", seconds, accuracy))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also run 1,000,000 x 128")
    parser.add_argument("--skip-small", action="store_true", help="skip the 100,000-row runs")
    args = parser.parse_args()
    settings = [{}, {"ef_search": 128}, {"hnsw_m": 32, "ef_construction": 80, "ef_search": 96}]
    search, prop = [], []
    for kind in () if args.skip_small else ("clustered", "random"):
        rows, more = run(kind, 100_000, 256, 2_000, settings)
        search += rows
        prop += more
    if args.large:
        rows, more = run("clustered", 1_000_000, 128, 1_000, [{}])
        search += rows
        prop += more
    print_table(f"P4 kNN search, k={K}, cosine (goal: >= 20x brute force at recall >= 0.98; "
                "1M x 128 < 120 s at recall >= 0.95)",
                ["data", "method", "seconds", "x vs cosine", "x vs euclidean", "recall@10"],
                search)
    print_table("P4 graph and propagation on the first HNSW graph above (goal: < 20 s at 1M "
                "rows, 20 classes); accuracy = propagated labels vs truth on hidden entries",
                ["data", "step", "seconds", "accuracy"], prop)


if __name__ == "__main__":
    main()
