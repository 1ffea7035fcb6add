"""Issue 22 / FEATURES B4: does the disagreement order put flipped labels first?

Held-out one-label sets (``bench_pseudo_labels``): scikit-learn's bundled digits, patches of 8
scikit-image photos the demo does not use, and the demo's single-label rows. For 5 seeds, 400
rows are labeled and 10% of them get a wrong class (uniformly among the others). The labeled
rows are ranked by:

* "in-sample": ``disagreement`` with the model alone, the model (softmax head on features,
  ``models.convex.fit_multinomial``) fitted on all labeled rows, flipped ones included: the
  former behaviour, where the model has learned the flips;
* "out-of-fold": the same order fed 5-fold out-of-fold predictions
  (``models.convex.out_of_fold``), each row scored by a head that never saw its label;
* "cleanlab": ``cleanlab.filter.find_label_issues`` on the same out-of-fold predictions,
  ranked by self-confidence, padded with ``cleanlab.rank.get_label_quality_scores`` order when
  it flags fewer rows (the peer; ``pip install cleanlab``, not a dependency).

Shown: the share of flipped rows among the first 5% of the ranking (the best possible is 1.0,
a random order 0.10) and the share of all flipped rows found in the first 10%.

    python benchmarks/bench_disagreement.py
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _table import print_table
from bench_pseudo_labels import digits_set
from bench_suggestions import DataSet, demo_set, photo_set
from scipy.special import softmax

from patchwork_widget.active.orders import disagreement_scores
from patchwork_widget.models.convex import fit_multinomial, out_of_fold

LABELED = 400
FLIPPED = 0.10
SEEDS = 5


def one_label(data: DataSet) -> DataSet:
    x, y, classes = data
    keep = y.sum(axis=1) == 1
    return x[keep], y[keep], classes


def ranked_cleanlab(given: np.ndarray, probs: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = find_label_issues(given, probs, return_indices_ranked_by="self_confidence")
    rest = [i for i in np.argsort(get_label_quality_scores(given, probs)) if i not in set(flagged)]
    return np.r_[flagged, rest].astype(int)


def figures(order: np.ndarray, flipped: np.ndarray) -> list[float]:
    n = len(order)
    return [float(flipped[order[:max(1, n // 20)]].mean()),
            float(flipped[order[:n // 10]].sum() / flipped.sum())]


def rows_for(name: str, data: DataSet) -> list[list]:
    x, truth, _ = one_label(data)
    x = np.asarray(x, dtype=np.float64)
    c = truth.shape[1]
    results: dict[str, list[list[float]]] = {"in-sample": [], "out-of-fold": [], "cleanlab": []}
    for seed in range(SEEDS):
        rng = np.random.default_rng(4000 + seed)
        rows = rng.choice(len(x), LABELED, replace=False)
        target = truth[rows].argmax(axis=1)
        flipped = rng.random(LABELED) < FLIPPED
        given = np.where(flipped, (target + rng.integers(1, c, LABELED)) % c, target)
        labels = np.eye(c)[given]
        fit = fit_multinomial(x[rows], labels)
        inside = softmax(x[rows] @ fit.kernel.astype(np.float64) + fit.bias, axis=1)
        held = out_of_fold(x[rows], labels, single_label=True, seed=seed)
        for method, order in (
                ("in-sample", np.argsort(-disagreement_scores(labels, inside), kind="stable")),
                ("out-of-fold", np.argsort(-disagreement_scores(labels, held), kind="stable")),
                ("cleanlab", ranked_cleanlab(given, held))):
            results[method].append(figures(order, flipped))
    return [[name, method, *np.mean(v, axis=0)] for method, v in results.items()]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    sets = {"digits": digits_set(), "demo": demo_set()}
    with tempfile.TemporaryDirectory() as tmp:
        sets["photos"] = photo_set(Path(tmp), mixed=0.0)
    rows = [r for name, data in sets.items() for r in rows_for(name, data)]
    print_table(f"Flipped labels found by disagreement ({LABELED} labeled rows, {FLIPPED:.0%} "
                f"flipped, mean of {SEEDS} seeds)",
                ["set", "ranking", "flipped in first 5%", "flipped found in first 10%"], rows)


if __name__ == "__main__":
    main()
