"""I5: named backbones (random weights: no download): extraction throughput, opening a large
project without waiting for extraction, and label efficiency on the demo.

Run: ``python benchmarks/bench_backbones.py [--images N] [--rows R] [--skip ...]``.

**throughput** (N images, default 128; a few minutes on 2 cores). For each backbone of ``options.backbones.BACKBONES`` at its own input size it prints
images per second of ``extract_features`` end to end (read + resize + model, batches of 32)
and CPU milliseconds per image, after one warm-up batch, against the baseline of the demo's
hand-made features (``datasets.demo_features``: histograms and a grey thumbnail, no network)
on the same files in the same process. The demo PNGs (64 x 64) are read, so the rows measure
the networks, not the decoder. The load average before and after is printed: the machine is
shared, and other load comes out of these figures.

**open** (R rows, default 100,000): the kernel's time for ``PatchworkWidget(df,
feature_extractor=Backbone("mobilenet_v3_small", weights=None, image_size=(32, 32)))``
(extraction starts in a worker process and is not waited for) against ``PatchworkWidget(df,
features=...)`` with features already in memory (the baseline), in the same process; then, in
a real JupyterLab (the e2e harness), the time from the cell's ``PatchworkWidget(...)`` call
(the kernel's clock) to the first thumbnail painted in the page (``img.complete`` with pixels,
the page's clock: one machine), for both. Goal: under 2 s with the named extractor.

**simulate** (the demo's 1,294 images, 11 classes): label efficiency (area under the
learning curve of macro F1, a logistic regression, 30 seed + 30 per round, 4 rounds, 2
repeats, random and margin orders; ``active.simulate.compare_strategies``) on the features of
each backbone with random weights at 64 x 64, against the demo's hand-made features
(``datasets.demo_features``). Random weights show the pipeline, not what ImageNet weights give.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _table import print_table

BATCH = 32
REPO = Path(__file__).resolve().parent.parent


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(n: int) -> None:
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


def rows_table(folder: Path | str, rows: int) -> Any:
    """A label table of ``rows`` images: links to the demo's PNGs, made once in ``folder``."""
    from patchwork_widget import prep_label_dataframe
    from patchwork_widget.datasets import demo_classes, load_demo_dataset

    demo = load_demo_dataset()["filepath"].tolist()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"img_{i:07d}.png") for i in range(rows)]
    for i, path in enumerate(paths):
        if not os.path.lexists(path):
            os.symlink(demo[i % len(demo)], path)
    return prep_label_dataframe(paths, demo_classes())


OPEN_CELL = """\
import time
t0 = time.time()
from patchwork_widget import PatchworkWidget
widget = PatchworkWidget(df, outfile={outfile!r}, imshape=(128, 128), seed=0, **{kwargs})
widget
"""

SETUP_CELL = """\
import sys
sys.path.insert(0, {bench!r})
import numpy as np
from patchwork_widget.options.backbones import Backbone
from bench_backbones import rows_table
df = rows_table({folder!r}, {rows})
features = np.zeros((len(df), 576), dtype=np.float32)
backbone = Backbone("mobilenet_v3_small", weights=None, image_size=(32, 32))
"""

FIRST_PAINT = """() => {
  const img = [...document.querySelectorAll('.pw-cell img')]
    .find((i) => i.src && i.complete && i.naturalWidth > 0);
  return img ? Date.now() / 1000 : false;
}"""


def open_times(rows: int, workdir: Path) -> None:
    from patchwork_widget import PatchworkWidget
    from patchwork_widget.options.backbones import Backbone

    df = rows_table(workdir / "links", rows)
    features = np.zeros((rows, 576), dtype=np.float32)
    backbone = Backbone("mobilenet_v3_small", weights=None, image_size=(32, 32))
    kernel = []
    for name, kwargs in (("features in memory (baseline)", {"features": features}),
                         ("named extractor, not waited for", {"feature_extractor": backbone})):
        start = time.perf_counter()
        widget = PatchworkWidget(df.copy(), outfile=workdir / f"k{len(kernel)}.csv",
                                 imshape=(128, 128), seed=0, **kwargs)
        kernel.append((name, time.perf_counter() - start))
        widget.close()
    page_times = first_paint_times(rows, workdir)
    base_k, base_p = kernel[0][1], page_times[0]
    print_table(f"Opening {rows:,} rows: PatchworkWidget(...) (kernel) and to the first painted "
                "thumbnail (JupyterLab)",
                ["features", "kernel s", "x baseline", "first paint s", "x baseline"],
                [(name, k, k / base_k, p, p / base_p)
                 for (name, k), p in zip(kernel, page_times)])


def first_paint_times(rows: int, workdir: Path) -> list[float]:
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from tests.e2e.harness import (
        CHROMIUM_ARGS,
        chromium_executable,
        kernel_exec,
        open_notebook,
        run_all,
        start_server,
        write_notebook,
    )

    times = []
    server = start_server("lab", workdir / "root", workdir / "state", workdir / "server.log",
                          timeout=120)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_executable(), headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for k, kwargs in enumerate(("{'features': features}",
                                        "{'feature_extractor': backbone}")):
                name = f"open_{k}.ipynb"
                setup = SETUP_CELL.format(bench=str(Path(__file__).parent),
                                          folder=str(workdir / "links"), rows=rows)
                cell = OPEN_CELL.format(outfile=str(workdir / f"p{k}.csv"), kwargs=kwargs)
                write_notebook(server.root_dir / name, [setup, cell])
                open_notebook(page, server, name)
                run_all(page, server, timeout=600)
                painted = page.wait_for_function(FIRST_PAINT, timeout=120_000).json_value()
                t0 = float(kernel_exec(page, "print(repr(t0))"))
                times.append(painted - t0)
                kernel_exec(page, "widget.close()")
            browser.close()
    finally:
        server.stop()
    return times


def simulate() -> None:
    from sklearn.linear_model import LogisticRegression

    from patchwork_widget.active.simulate import aulc_summary, compare_strategies
    from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset
    from patchwork_widget.images.backbones import build_backbone
    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.options.backbones import BACKBONES, Backbone

    demo = load_demo_dataset()
    files = demo["filepath"].tolist()
    labels = demo[demo_classes()].to_numpy(dtype=int)

    def aulc(x: np.ndarray) -> tuple[float, float]:
        # scale-free: random weights can give features of 1e-10 (MobileNetV3's hard-swish)
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        results = compare_strategies(x, labels, ["random", "margin"],
                                     lambda: LogisticRegression(max_iter=300, tol=1e-3),
                                     seed_size=30, query_size=30, rounds=4, repeats=2,
                                     metric="macro_f1", seed=0)
        summary = aulc_summary(results)
        return summary.loc["random", "mean"], summary.loc["margin", "mean"]

    base = aulc(demo_features(files))
    rows = [("demo_features (baseline)", *base, 1.0)]
    for name in BACKBONES:
        backbone = Backbone(name, weights=None, image_size=(64, 64))
        x = extract_features(files, build_backbone(backbone), imshape=backbone.size,
                             batch_size=BATCH, progress=False).features
        random_aulc, margin_aulc = aulc(np.asarray(x))
        rows.append((name, random_aulc, margin_aulc, random_aulc / base[0]))
        print(f"  {name}: AULC {random_aulc:.3f}", flush=True)
    print_table("Label efficiency on the demo (AULC of macro F1; random weights at 64 x 64)",
                ["features", "random AULC", "margin AULC", "random x baseline"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="images for throughput")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for open")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["throughput", "open", "simulate"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if "throughput" not in args.skip:
        throughput(args.images)
    if "open" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            open_times(args.rows, Path(tmp))
    if "simulate" not in args.skip:
        simulate()


if __name__ == "__main__":
    main()
