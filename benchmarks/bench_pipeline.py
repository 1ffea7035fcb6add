"""P6 / FEATURES I2, I3: decode + augment throughput of the tf.data pipeline vs a PIL loop.

Run: ``python benchmarks/bench_pipeline.py`` (about two minutes; builds the demo set on first use
and a 256-pixel copy of it in a temporary folder). For the demo PNGs (64x64 RGB, ~1,300 files)
and for the same scenes at 256x256 it prints images per second and CPU microseconds per image:

- the baseline: a plain Python loop that opens each file with Pillow, converts it to float32 in
  [0, 1], flips / turns it at random with NumPy and stacks batches of 64;
- ``patchwork_widget.loaders.dataset`` decoding only, with the same flips and quarter turns,
  and with ``augment=True`` (every default key), also with ``cache=True`` (decoded once, then
  only augmented: the pipeline's floor);
- baseline 2: the same default augmentation per image in Pillow + NumPy
  (``pil_augment_loop``, as torchvision's PIL transforms do it), against which the
  ``augment=True`` rows are also given;

each after one warm-up pass, best of 5 rounds in which the cases take turns (so other load on
the machine falls on all of them alike). Then SimCLR's train step at 64 px fed by its own
two-view pipeline against the same step on one cached batch, alternating. Goal (issue 17):
decode + flips/turns and decode + ``augment=True`` >= 2x the PIL loop. CPU time per image
shows the ceiling on this 2-core machine: the loop uses one core, the pipeline both, so with
both cores free its ratio approaches 2 x the "CPU efficiency" column (baseline CPU per image /
CPU per image); other load on the machine comes out of the pipeline's second core.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time

import numpy as np
from _table import print_table
from PIL import Image

BATCH = 64
ROUNDS = 5
SIMCLR_STEPS = 8
FLIPS = {"flip_left_right": True, "flip_up_down": True, "rot90": True}


def pil_loop(files, rng):
    batch = []
    for f in files:
        with Image.open(f) as im:
            x = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        if rng.random() < 0.5:
            x = x[:, ::-1]
        if rng.random() < 0.5:
            x = x[::-1]
        batch.append(np.rot90(x, int(rng.integers(0, 4))))
        if len(batch) == BATCH:
            np.stack(batch)
            batch = []
    if batch:
        np.stack(batch)


def pil_augment_loop(files, rng):
    """The default augmentation (``augment=True``) done per image with Pillow and NumPy, the
    way torchvision's PIL transforms do it: the same ops and probabilities in the same order
    (Pillow's enhancers for brightness, contrast and saturation; hue shifted in Pillow's HSV;
    SciPy's Sobel)."""
    from PIL import ImageEnhance, ImageFilter
    from scipy import ndimage

    batch = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
        w, h = im.size
        area, ratio = rng.uniform(0.4, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw = min(w, int(np.ceil(np.sqrt(area * ratio) * w)))
        ch = min(h, int(np.ceil(np.sqrt(area / ratio) * h)))
        left, top = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        im = im.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_TOP_BOTTOM)
        im = im.rotate(90 * int(rng.integers(0, 4)))
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
        im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.6, 1.4))
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.9, 1.1))
        hsv = np.asarray(im.convert("HSV")).copy()
        hsv[..., 0] += np.uint8(int(rng.uniform(-0.1, 0.1) * 255) % 256)  # wraps like hue
        im = Image.fromarray(hsv, "HSV").convert("RGB")
        if rng.random() < 0.2:
            im = im.convert("L").convert("RGB")
        if rng.random() < 0.25:
            im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, 2.0)))
        x = np.asarray(im, dtype=np.float32) / 255.0
        if rng.random() < 0.15:
            mag = np.hypot(ndimage.sobel(x, 0), ndimage.sobel(x, 1))
            x = mag / max(float(mag.max()), 1e-8)
        if rng.random() < 0.2:
            x = x + rng.uniform(0, 0.1) * rng.standard_normal(x.shape, dtype=np.float32)
        if rng.random() < 0.25:
            mh, mw = (max(1, round(rng.uniform(0.1, 0.5) * s)) for s in (h, w))
            y0, x0 = rng.integers(0, h - mh + 1), rng.integers(0, w - mw + 1)
            x[y0:y0 + mh, x0:x0 + mw] = 0
        batch.append(np.clip(x, 0, 1))
        if len(batch) == BATCH:
            np.stack(batch)
            batch = []
    if batch:
        np.stack(batch)


def measure(runs: dict, n: int) -> dict:
    """Best (images per second, CPU microseconds per image) of each case over ROUNDS rounds.

    The cases take turns within every round, so load from other processes on the machine
    falls on all of them alike; one warm-up pass each first (tracing, file cache).
    """
    for run in runs.values():
        run()
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return {name: (n / wall, 1e6 * cpu / n) for name, (wall, cpu) in best.items()}


def cases(files, size):
    from patchwork_widget.loaders import dataset

    rng = np.random.default_rng(0)

    def tf_pass(augment, cache=False):
        ds, _ = dataset(files, imshape=(size, size), batch_size=BATCH, augment=augment,
                        cache=cache)
        return lambda: [None for _ in ds]

    runs = {
        "PIL loop + numpy flips/turns (baseline)": lambda: pil_loop(files, rng),
        "tf.data pipeline, decode only": tf_pass(False),
        "tf.data pipeline + flips/turns": tf_pass(FLIPS),
    }
    rates = measure(runs, len(files))
    augmented = measure({
        "PIL + numpy loop, the same default augmentation (baseline 2)":
            lambda: pil_augment_loop(files, rng),
        "tf.data pipeline + augment=True": tf_pass(True),
        "tf.data pipeline + augment=True, cache=True (augmentation only)": tf_pass(True, True),
    }, len(files))
    base_rate, base_cpu = rates["PIL loop + numpy flips/turns (baseline)"]
    aug_rate, aug_cpu = augmented["PIL + numpy loop, the same default augmentation (baseline 2)"]
    rows = [(f"{size}px: {name}", rate, cpu, rate / base_rate, base_cpu / cpu, "-")
            for name, (rate, cpu) in rates.items()]
    return rows + [(f"{size}px: {name}", rate, cpu, rate / base_rate, base_cpu / cpu,
                    rate / aug_rate) for name, (rate, cpu) in augmented.items()]


def simclr_steps(files, size: int, logdir: str) -> list[tuple]:
    """SimCLR train-step seconds fed by its own input pipeline (augment=True, two views) vs
    the same cached batch again and again, alternating, after a warm-up step (tracing)."""
    from patchwork_widget.feature.simclr import SimCLRTrainer

    trainer = SimCLRTrainer(logdir, files, imshape=(size, size), batch_size=BATCH, augment=True)
    batches = iter(trainer._ds)  # the batches fit() iterates
    cached = next(batches)

    def step(x1, x2):
        float(trainer._train_step(x1, x2)["loss"])

    step(*cached)
    real = fixed = 0.0
    for _ in range(SIMCLR_STEPS):
        start = time.perf_counter()
        step(*next(batches))
        middle = time.perf_counter()
        step(*cached)
        real, fixed = real + middle - start, fixed + time.perf_counter() - middle
    return [(f"{size}px", real / SIMCLR_STEPS, fixed / SIMCLR_STEPS, real / fixed)]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    from patchwork_widget.datasets import build_demo_dataset, load_demo_dataset

    files = load_demo_dataset()["filepath"].tolist()
    rows = cases(files, 64)
    with tempfile.TemporaryDirectory() as tmp:
        big = build_demo_dataset(tmp, patch_size=256)["filepath"].tolist()
        rows += cases(big, 256)
    print_table(
        f"P6 decode + augment throughput on {len(files)} demo PNGs (RGB), batches of {BATCH}, "
        f"{os.cpu_count()} cores (goal: flips/turns and augment=True >= 2x baseline)",
        ["case", "images/s", "CPU us/image", "x baseline", "CPU efficiency x baseline",
         "x baseline 2"], rows,
    )
    with tempfile.TemporaryDirectory() as logdir:
        steps = simclr_steps(files, 64, logdir)
    print_table(
        f"SimCLR train step (default ResNetFCN, batch {BATCH}, augment=True), mean of "
        f"{SIMCLR_STEPS} alternating steps (goal: real input <= 1.1x the cached batch)",
        ["images", "real input s", "cached batch s", "ratio"], steps)


if __name__ == "__main__":
    main()
