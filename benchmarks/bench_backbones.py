"""I5: extraction throughput of each named backbone (random weights: no download).

Run: ``python benchmarks/bench_backbones.py [N]`` (N images, default 128; a few minutes on
2 cores). For each backbone of ``options.backbones.BACKBONES`` at its own input size it prints
images per second of ``extract_features`` end to end (read + resize + model, batches of 32)
and CPU milliseconds per image, after one warm-up batch, against the baseline of the demo's
hand-made features (``datasets.demo_features``: histograms and a grey thumbnail, no network)
on the same files in the same process. The demo PNGs (64 x 64) are read, so the rows measure
the networks, not the decoder. The load average before and after is printed: the machine is
shared, and other load comes out of these figures.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from _table import print_table

BATCH = 32


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(n: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    from patchwork_widget.datasets import demo_features, load_demo_dataset
    from patchwork_widget.images.backbones import build_backbone
    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.options.backbones import BACKBONES, Backbone

    files = load_demo_dataset().filepath.tolist()
    files = (files * (n // len(files) + 1))[:n]
    print(f"{n} demo images (64 x 64 PNG), batches of {BATCH}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    wall, cpu = timed(lambda: demo_features(files))
    base = n / wall
    rows = [("demo_features (baseline)", "32 x 32", 88, base, 1000 * cpu / n, 1.0)]
    for name, info in BACKBONES.items():
        backbone = Backbone(name, weights=None)
        model = build_backbone(backbone)
        run = lambda fs: extract_features(fs, model, imshape=backbone.size,  # noqa: E731
                                          batch_size=BATCH, progress=False)
        run(files[:BATCH])  # warm-up: tracing
        wall, cpu = timed(lambda: run(files))
        rows.append((name, f"{backbone.size[0]} x {backbone.size[1]}", info.feature_size,
                     n / wall, 1000 * cpu / n, (n / wall) / base))
        print(f"  {name}: {n / wall:.1f} images/s", flush=True)
    print_table("Extraction with random weights (images per second, end to end)",
                ["extractor", "input", "features", "images/s", "CPU ms/image",
                 "vs baseline"], rows)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
