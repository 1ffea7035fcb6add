"""Area under the learning curve (AULC) of each query strategy, against random, in one process,
for the acquisition model and for a successor model trained on the same picks (an RBF SVC,
Lowell et al. 2019): picks that only suit the model that chose them are not advice worth
following.

Problems, all simulated with patchwork_widget.active.simulate.compare_strategies:

* scikit-learn's digits (1,797 8x8 images, 10 classes, single-label), logistic regression on
  the pixels;
* the offline demo set (patchwork_widget.datasets, ~1,300 patches, 11 classes, multi-hot),
  logistic regression per class on simple image features computed without TensorFlow: an
  8-bin colour histogram per channel plus an 8x8 grey thumbnail, standardised;
* held out: one-label patches of 8 scikit-image photos the demo does not use (the demo's
  feature recipe through a fixed random projection, ``bench_single_label.projected_photos``)
  and scikit-learn's breast cancer set (2 classes), standardised.

AULC is the trapezoid area under metric-vs-labels divided by the span of labels (the curve's
mean); "x random" is the ratio of a strategy's mean AULC to random's.

    python benchmarks/bench_strategies.py           # ~15 minutes on 2 cores
    python benchmarks/bench_strategies.py --quick   # fewer repeats and rounds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _table import print_table
from bench_single_label import projected_photos
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

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
    """The widget's orders that need no class, and the candidates for the default with 20%
    random picks (max entropy + 20% was the online default)."""
    return ["random", "least confidence", "max entropy", "margin", "badge", "coreset",
            "knn confidence", OrderChoice("margin", random_fraction=0.2),
            OrderChoice("badge", random_fraction=0.2),
            OrderChoice("max entropy", random_fraction=0.2)]


def table(name: str, results, seconds: float) -> list[tuple]:
    summary = aulc_summary(results)
    successor = aulc_summary(results, model="successor")
    base, base_s = summary.loc["random", "mean"], successor.loc["random", "mean"]
    return [(name, strategy, row["mean"], row["std"], row["mean"] / base,
             successor.loc[strategy, "mean"], successor.loc[strategy, "mean"] / base_s, seconds)
            for strategy, row in summary.iterrows()]


def svc(multilabel: bool):
    """The successor: an RBF SVC with probabilities (one per class for multi-hot labels)."""
    def make():
        model = SVC(probability=True, random_state=0)
        return OneVsRestClassifier(model) if multilabel else model
    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, fewer rounds")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    repeats = 2 if args.quick else args.repeats
    rounds = 4 if args.quick else 8
    header = ["problem", "strategy", "AULC", "std", "x random", "successor AULC",
              "successor x random", "run seconds"]

    def logistic():
        return LogisticRegression(max_iter=300, tol=1e-3)

    def run(name, x, y, metric, size):
        start = time.perf_counter()
        results = compare_strategies(x, y, strategies(), logistic, seed_size=size,
                                     query_size=size, rounds=rounds, repeats=repeats,
                                     metric=metric, seed=0,
                                     successor_factory=svc(np.ndim(y) == 2))
        rows = table(f"{name}, {metric}, {size} + {size}/round, {repeats} repeats", results,
                     time.perf_counter() - start)
        print_table(name, header, rows)  # as each problem ends
        sys.stdout.flush()
        return rows

    rows = []
    x, y = load_digits(return_X_y=True)
    rows += run("digits", x / 16.0, y, "accuracy", 20)
    demo = load_demo_dataset()
    feats = image_features(demo["filepath"].tolist())
    rows += run("demo (multi-hot)", feats, demo[demo_classes()].to_numpy(dtype=int), "macro_f1",
                30)
    with tempfile.TemporaryDirectory() as tmp:
        px, py, _ = projected_photos(Path(tmp), 0.0)
    rows += run("photos (held out)", px, py.argmax(axis=1), "accuracy", 20)
    bx, by = load_breast_cancer(return_X_y=True)
    rows += run("breast cancer (held out)", (bx - bx.mean(axis=0)) / bx.std(axis=0), by,
                "accuracy", 10)
    print_table("AULC per strategy (mean +/- std over repeats; ratio to random in the same run; "
                "successor: an RBF SVC trained on the same picks)", header, rows)


if __name__ == "__main__":
    main()
