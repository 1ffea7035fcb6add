"""Issue 22: near-duplicate groups from the kNN graph, on the demo with planted copies.

200 demo images (seeded draw) get a planted copy each: resized to 80-100% and re-saved as JPEG
(quality 60-90); the second hundred are also cropped by up to 6% of each side and brightened
x0.9-1.1. The copies join the demo's 1,294 images and everything is turned into the demo's
features (colour histograms and an 8 x 8 grey thumbnail, standardised). ``near_duplicate_groups``
(k = 10) at several cosine-distance thresholds: the share of planted (original, copy) pairs that
land in one group (recall), the other rows pulled into groups, and the groups' sizes; exact
search, so the figures describe the threshold, not the index.

    python benchmarks/bench_duplicates.py
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _table import print_table
from PIL import Image, ImageEnhance

from patchwork_widget.active.duplicates import near_duplicate_groups
from patchwork_widget.datasets import demo_features, load_demo_dataset

PLANTED = 200
THRESHOLDS = (0.005, 0.01, 0.02, 0.05, 0.1)


def near_copy(path: str, out: Path, rng: np.random.Generator, crop: float) -> str:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    dx, dy = (int(rng.uniform(0, crop) * s) for s in (w, h))
    left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
    img = img.crop((left, top, w - (dx - left), h - (dy - top)))
    scale = float(rng.uniform(0.8, 1.0))
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    if crop > 0:
        img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.9, 1.1)))
    img.save(out, quality=int(rng.integers(60, 91)))
    return str(out)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    paths = load_demo_dataset()["filepath"].tolist()
    rng = np.random.default_rng(0)
    originals = rng.choice(len(paths), PLANTED, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        copies = [near_copy(paths[i], Path(tmp) / f"copy_{j:04d}.jpg", rng,
                            0.0 if j < PLANTED // 2 else 0.06) for j, i in enumerate(originals)]
        features = demo_features(paths + copies)
    n = len(paths)
    rows = []
    for threshold in THRESHOLDS:
        groups = near_duplicate_groups(features, threshold, k=10, backend="exact")
        group_of = np.full(len(features), -1)
        for g, members in enumerate(groups):
            group_of[members] = g
        planted = np.r_[originals, np.arange(n, n + PLANTED)]
        copy_group = group_of[n + np.arange(PLANTED)]
        found = (group_of[originals] >= 0) & (group_of[originals] == copy_group)
        others = np.setdiff1d(np.flatnonzero(group_of >= 0), planted)
        sizes = [len(g) for g in groups]
        half = PLANTED // 2
        rows.append([threshold, float(found[:half].mean()), float(found[half:].mean()),
                     len(others), len(groups),
                     max(sizes, default=0)])
    print_table(f"Near-duplicate groups, demo ({n} images) + {PLANTED} planted copies, k = 10",
                ["cosine distance <=", "re-encoded pairs found", "cropped+brightened found",
                 "other images in groups",
                 "groups", "largest group"], rows)


if __name__ == "__main__":
    main()
