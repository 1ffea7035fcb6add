"""Issue 27 / FEATURES I5, B6: extraction throughput on a local Dask cluster vs one process.

Run: ``python benchmarks/bench_extract_cluster.py [--images N] [--side PX] [--rounds R]``.
Writes N random RGB PNGs (default 1,024 of 96 px) and a MobileNetV3-small with random weights,
saved as a ``.keras`` file (the form a cluster's workers load), into a temporary folder, then
times, in rounds in which the cases take turns (so other load on the machine falls on all of
them alike), best round kept:

- the baseline: ``extract_features`` in this process, features in memory;
- ``extract_features(client=..., zarr_path=...)`` on a ``LocalCluster`` of 2 worker processes
  (1 thread each), into a fresh Zarr array, the workers' extractor already loaded (a warm-up
  run loads it once per worker, as a long extraction would);
- a rerun of the same extraction: every chunk already recorded done (the cost of resuming).

Printed: images per second and the ratio to the baseline. The cluster's gain is bounded by the
cores the machine has: each worker is one process, one task at a time, and TensorFlow in the
baseline already uses every core for the convolutions, so on a 2-core machine the ratio shows
mainly the overhead of the tasks, the Zarr writes and the completion records.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time

import numpy as np
from _table import print_table
from PIL import Image


def write_images(folder: str, n: int, side: int) -> list:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"img_{i:05d}.png")
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from distributed import Client, LocalCluster

    from patchwork_widget.images.backbones import build_backbone
    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.options.backbones import Backbone

    folder = tempfile.mkdtemp(prefix="bench_extract_cluster_")
    try:
        files = write_images(folder, args.images, args.side)
        model = build_backbone(Backbone("mobilenet_v3_small", weights=None,
                                        image_size=(args.side, args.side)))
        model_path = os.path.join(folder, "extractor.keras")
        model.save(model_path)
        size = (args.side, args.side)
        common = dict(imshape=size, batch_size=64, progress=False)

        t = time.perf_counter()
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=":0")
        client = Client(cluster)
        start_cluster = time.perf_counter() - t
        with cluster, client:
            t = time.perf_counter()
            warm = extract_features(files[:8], model_path, client=client,
                                    zarr_path=os.path.join(folder, "warm.zarr"),
                                    chunk_rows=1, **common)  # the workers load the model
            first_load = time.perf_counter() - t
            reference = extract_features(files, model, **common).features
            best = {"one process (baseline)": np.inf, "cluster, 2 workers": np.inf,
                    "cluster rerun (all done)": np.inf}
            for r in range(args.rounds):
                t = time.perf_counter()
                extract_features(files, model, **common)
                best["one process (baseline)"] = min(best["one process (baseline)"],
                                                     time.perf_counter() - t)
                out = os.path.join(folder, f"run{r}.zarr")
                t = time.perf_counter()
                result = extract_features(files, model_path, client=client, zarr_path=out,
                                          chunk_rows=args.chunk_rows, **common)
                best["cluster, 2 workers"] = min(best["cluster, 2 workers"],
                                                 time.perf_counter() - t)
                t = time.perf_counter()
                extract_features(files, model_path, client=client, zarr_path=out,
                                 chunk_rows=args.chunk_rows, **common)
                best["cluster rerun (all done)"] = min(best["cluster rerun (all done)"],
                                                       time.perf_counter() - t)
                np.testing.assert_allclose(result.features[:], reference, atol=1e-4)
            assert warm.features.shape[0] == 8
        base = best["one process (baseline)"]
        rows = [(name, f"{seconds:.2f}", args.images / seconds, base / seconds)
                for name, seconds in best.items()]
        print_table(f"extraction of {args.images} PNGs of {args.side} px, MobileNetV3-small "
                    f"(random weights), chunks of {args.chunk_rows}, best of {args.rounds}; "
                    f"{os.cpu_count()} CPUs",
                    ["case", "seconds", "images/s", "x baseline"], rows)
        print(f"\nonce per cluster: start {start_cluster:.1f} s; first task on each worker "
              f"(imports, model load) {first_load:.1f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
