"""Area under the learning curve (AULC) of each query strategy, against random, in one process.

Two problems, both simulated with patchwork_widget.active.simulate.compare_strategies:

* scikit-learn's digits (1,797 8x8 images, 10 classes, single-label), logistic regression on
  the pixels;
* the offline demo set (patchwork_widget.datasets, ~1,300 patches, 11 classes, multi-hot),
  logistic regression per class on simple image features computed without TensorFlow: an
  8-bin colour histogram per channel plus an 8x8 grey thumbnail, standardised.

AULC is the trapezoid area under metric-vs-labels divided by the span of labels (the curve's
mean); "x random" is the ratio of a strategy's mean AULC to random's.

    python benchmarks/bench_strategies.py           # ~3 minutes on 2 cores
    python benchmarks/bench_strategies.py --quick   # fewer repeats and rounds
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _table import print_table
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from patchwork_widget.active.simulate import aulc_summary, compare_strategies
from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.datasets import demo_classes, load_demo_dataset
from patchwork_widget.images.batch import read_images


def image_features(paths: list[str]) -> np.ndarray:
    """Colour histograms (8 bins per channel) and an 8x8 grey thumbnail, standardised."""
    images = read_images(paths, imshape=(32, 32), num_channels=3, num_workers=2)
    if images.errors:
        raise RuntimeError(f"{len(images.errors)} demo images could not be read")
    x = images.arrays
    hist = np.stack([np.stack([np.histogram(img[..., c], bins=8, range=(0, 1))[0]
                               for c in range(3)]).ravel() for img in x]) / (32 * 32)
    grey = x.mean(axis=-1).reshape(len(x), 8, 4, 8, 4).mean(axis=(2, 4)).reshape(len(x), -1)
    feats = np.hstack([hist, grey])
    return (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)


def strategies() -> list:
    """The widget's orders that need no class, and margin with 20% random picks."""
    return ["random", "least confidence", "max entropy", "margin", "badge", "coreset",
            "knn confidence", OrderChoice("margin", random_fraction=0.2)]


def table(name: str, results, seconds: float) -> list[tuple]:
    summary = aulc_summary(results)
    base = summary.loc["random", "mean"]
    return [(name, strategy, row["mean"], row["std"], row["mean"] / base, seconds)
            for strategy, row in summary.iterrows()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, fewer rounds")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5

    def logistic():
        return LogisticRegression(max_iter=300, tol=1e-3)

    rows = []
    x, y = load_digits(return_X_y=True)
    start = time.perf_counter()
    digits = compare_strategies(x / 16.0, y, strategies(), logistic, seed_size=20,
                                query_size=20, rounds=4 if args.quick else 8, repeats=repeats,
                                metric="accuracy", seed=0)
    rows += table(f"digits, accuracy, 20 + 20/round, {repeats} repeats", digits,
                  time.perf_counter() - start)

    demo = load_demo_dataset()
    feats = image_features(demo["filepath"].tolist())
    labels = demo[demo_classes()].to_numpy(dtype=int)
    start = time.perf_counter()
    results = compare_strategies(feats, labels, strategies(), logistic, seed_size=30,
                                 query_size=30, rounds=4 if args.quick else 8, repeats=repeats,
                                 metric="macro_f1", seed=0)
    rows += table(f"demo (multi-hot), macro F1, 30 + 30/round, {repeats} repeats", results,
                  time.perf_counter() - start)
    print_table("AULC per strategy (mean +/- std over repeats; ratio to random in the same run)",
                ["problem", "strategy", "AULC", "std", "x random", "run seconds"], rows)


if __name__ == "__main__":
    main()
