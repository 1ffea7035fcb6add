"""Issue 22 / FEATURES A4: do 0.9-threshold pseudo-labels from propagation say "yes"?

Held-out multi-class sets, none of which the project's defaults were tuned on:

* "photos": patches of 8 scikit-image photos the demo does not use, one label per patch
  (``bench_suggestions.photo_set`` with no mixed patches), the demo's feature recipe;
* "photos multi-hot": the same with 15% of patches holding halves of two photos;
* "digits": scikit-learn's bundled 8 x 8 digits (10 classes, one label), pixels standardised;
* the demo (11 classes, its own features), for reference.

For 5 seeds, 5% of rows are labeled (every class, yes and no); Zhou propagation (alpha 0.9) on
the project's kNN graph (k = 10), then pseudo-labels at 0.9, with plain channels (the former
behaviour, equal to scikit-learn's ``LabelSpreading`` on the same graph) and with balanced
channels (``balance=True``). On the unlabeled rows: "yes coverage" is the share of true positives
written "yes", "yes precision" the share of written "yes" that are right, "no coverage" /
"no precision" the same for "no".

    python benchmarks/bench_pseudo_labels.py            # all four sets, 5 seeds
    python benchmarks/bench_pseudo_labels.py --quick    # digits and demo, 2 seeds
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _table import print_table
from bench_suggestions import DataSet, demo_set, photo_set

from patchwork_widget.active.graph import knn_graph
from patchwork_widget.active.propagate import propagate, pseudo_labels

LABELED = 0.05
THRESHOLD = 0.9


def digits_set() -> DataSet:
    from sklearn.datasets import load_digits

    x, target = load_digits(return_X_y=True)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    return x.astype(np.float32), np.eye(10)[target], [str(d) for d in range(10)]


def figures(pseudo: np.ndarray, truth: np.ndarray) -> list[float]:
    yes, no = pseudo == 1.0, pseudo == 0.0
    positives, negatives = truth == 1.0, truth == 0.0
    return [float((yes & positives).sum() / max(positives.sum(), 1)),
            float((yes & positives).sum() / max(yes.sum(), 1)),
            float((no & negatives).sum() / max(negatives.sum(), 1)),
            float((no & negatives).sum() / max(no.sum(), 1))]


def rows_for(name: str, data: DataSet, seeds: int) -> list[list]:
    x, truth, _ = data
    graph = knn_graph(x, k=10)
    results: dict[str, list[list[float]]] = {"plain (before)": [], "balanced (after)": []}
    for seed in range(seeds):
        known = np.random.default_rng(3000 + seed).random(len(x)) < LABELED
        y = np.where(known[:, None], truth, np.nan)
        for method, balance in (("plain (before)", False), ("balanced (after)", True)):
            scores = propagate(graph, y, alpha=0.9, balance=balance)
            results[method].append(figures(pseudo_labels(scores[~known], THRESHOLD),
                                           truth[~known]))
    return [[name, method, *np.mean(v, axis=0)] for method, v in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits and demo, 2 seeds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    seeds = 2 if args.quick else 5
    sets = {"digits": digits_set(), "demo": demo_set()}
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            sets["photos"] = photo_set(Path(tmp), mixed=0.0)
            sets["photos multi-hot"] = photo_set(Path(tmp), seed=1)
    for name, (x, y, classes) in sets.items():
        print(f"{name}: {len(x)} rows, {x.shape[1]} features, {len(classes)} classes, "
              f"{y.sum(axis=1).mean():.2f} labels per row")
    rows = [r for name, data in sets.items() for r in rows_for(name, data, seeds)]
    print_table(f"Pseudo-labels at {THRESHOLD} from {LABELED:.0%} labeled rows "
                f"(mean of {seeds} seeds)",
                ["set", "channels", "yes coverage", "yes precision", "no coverage",
                 "no precision"], rows)


if __name__ == "__main__":
    main()
