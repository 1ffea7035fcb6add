"""Issue 22: one label per image, and thresholds for a precision target. What ``a`` writes
per row, and the softmax head against multinomial logistic regression, on held-out sets
(nothing downloaded):

- ``photos``: patches of 8 scikit-image photos the demo does not use (one photo per patch),
  the demo's feature recipe through a fixed random projection to 24 dimensions (a weaker
  extractor); ``photos, 15% two``: the same with 15% of patches holding halves of two photos;
- ``wine`` (3 classes) and ``breast cancer`` (2 classes) from scikit-learn, standardised;
- ``multi-hot table``: scikit-learn's ``make_multilabel_classification`` (8 classes).

For 30 / 60 / 120 random labeled rows (3 seeds), on the other rows:

- one-label sets: macro AUC of the sigmoid head (``TrainOptions(single_label=False)``: the
  default before one-label mode), of the softmax head (``single_label=None``: detected from the
  labels) and of scikit-learn's multinomial ``LogisticRegression`` (C=1);
- what accept writes: sigmoid head with the per-class rule at 0.9 / 0.1 (the default before),
  softmax head with the one-label rule at 0.9, both with thresholds for precision 0.95 chosen
  from 5-fold out-of-fold predictions of the labeled rows
  (:func:`patchwork_widget.active.thresholds.choose_thresholds`). Figures: precision of the
  written "yes", share of accepted rows with at least one wrong entry, share of accepted rows
  written "no" on every class, and coverage (share of unlabeled rows accept writes on).

    python benchmarks/bench_single_label.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from _table import print_table
from bench_suggestions import DataSet, macro_auc, photo_set, table_for, table_set

from patchwork_widget.active.suggest import has_positive_labels, suggestions

COUNTS = (30, 60, 120)


def projected_photos(folder: Path, mixed: float) -> DataSet:
    x, y, classes = photo_set(folder, n_per_class=100, mixed=mixed)
    projection = np.random.default_rng(12345).standard_normal((x.shape[1], 24))
    z = x @ projection
    return ((z - z.mean(axis=0)) / z.std(axis=0)).astype(np.float32), y, classes


def sklearn_set(name: str) -> DataSet:
    from sklearn import datasets

    loader = {"wine": datasets.load_wine, "breast cancer": datasets.load_breast_cancer}[name]
    bunch = loader()
    x = (bunch.data - bunch.data.mean(axis=0)) / bunch.data.std(axis=0)
    classes = [str(c).replace(" ", "_") for c in bunch.target_names]
    return x.astype(np.float32), np.eye(len(classes))[bunch.target], classes


def fitted(x: np.ndarray, df, classes: List[str], single_label) -> np.ndarray:
    import keras

    from patchwork_widget.models import TrainOptions, build_models, fit, predict

    keras.utils.set_random_seed(0)
    models = build_models(classes, feature_shape=x.shape[1:])
    fit(models, df, features=x, options=TrainOptions(seed=0, single_label=single_label))
    assert models.single_label == (single_label is not False)
    return predict(models, df, features=x)[classes].to_numpy()


def multinomial_lr(x: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    target = truth[rows].argmax(axis=1)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x[rows], target)
    out = np.zeros((len(x), truth.shape[1]))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def accept_rows(p: np.ndarray, truth: np.ndarray, has_pos: np.ndarray, single_label: bool,
                yes=0.9, no=0.1) -> Dict[str, float]:
    s = suggestions(p, None, has_pos, yes, no, single_label=single_label)
    accepted = ~np.isnan(s).all(axis=1)
    yes_written = s == 1
    wrong_row = ((s != truth) & ~np.isnan(s)).any(axis=1)
    n = max(int(accepted.sum()), 1)
    return {"yes_precision": float((truth[yes_written] == 1).mean())
            if yes_written.any() else np.nan,
            "wrong_rows": float(wrong_row[accepted].sum() / n),
            "all_no": float((s == 0).all(axis=1).sum() / n),
            "coverage": float(accepted.mean())}


def target_thresholds(x: np.ndarray, truth: np.ndarray, known: np.ndarray, classes: List[str],
                      single_label: bool):
    """Thresholds for precision 0.95 from 5-fold out-of-fold predictions of the labels."""
    from patchwork_widget.active.thresholds import choose_thresholds
    from patchwork_widget.models.convex import out_of_fold

    oof = out_of_fold(x[known], truth[known], single_label=single_label)
    chosen = choose_thresholds(oof, truth[known], classes, 0.95, single_label)
    return chosen["yes_threshold"].tolist(), chosen["no_threshold"].tolist()


RULES = ("sigmoid, 0.9/0.1", "softmax, 0.9", "softmax, target 0.95", "sigmoid, target 0.95")


def rows_for(name: str, data: DataSet, seeds: int) -> Tuple[List[List], List[List]]:
    x, truth, classes = data
    one_label = bool(((truth == 1).sum(axis=1) == 1).all())
    rules = RULES if one_label else (RULES[0], RULES[3])
    aucs, accepts = [], []
    for count in COUNTS:
        runs: Dict[str, List] = {k: [] for k in ("auc_sig", "auc_soft", "auc_lr", *rules)}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            known = np.zeros(len(x), bool)
            known[rng.choice(len(x), count, replace=False)] = True
            df = table_for(truth, classes, known, np.zeros(len(x), bool))
            rest = ~known
            has_pos = has_positive_labels(truth, known)
            p_sig = fitted(x, df, classes, False)
            runs["auc_sig"].append(macro_auc(p_sig[rest], truth[rest]))
            runs[RULES[0]].append(accept_rows(p_sig[rest], truth[rest], has_pos, False))
            yes, no = target_thresholds(x, truth, known, classes, False)
            runs[RULES[3]].append(accept_rows(p_sig[rest], truth[rest], has_pos, False, yes, no))
            if one_label:
                p_soft = fitted(x, df, classes, None)
                p_lr = multinomial_lr(x, truth, np.flatnonzero(known))
                runs["auc_soft"].append(macro_auc(p_soft[rest], truth[rest]))
                runs["auc_lr"].append(macro_auc(p_lr[rest], truth[rest]))
                runs[RULES[1]].append(accept_rows(p_soft[rest], truth[rest], has_pos, True))
                yes, no = target_thresholds(x, truth, known, classes, True)
                runs[RULES[2]].append(accept_rows(p_soft[rest], truth[rest], has_pos, True,
                                                  yes, no))
        if one_label:
            soft, lr = np.mean(runs["auc_soft"]), np.mean(runs["auc_lr"])
            sd = np.std(np.subtract(runs["auc_soft"], runs["auc_sig"]))
            aucs.append([name, count, float(np.mean(runs["auc_sig"])), float(soft), float(lr),
                         float(soft - lr), float(soft - np.mean(runs["auc_sig"])), float(sd)])
        for rule in rules:
            accepts.append([name, count, rule] + [
                float(np.nanmean([r[k] for r in runs[rule]]))
                for k in ("yes_precision", "wrong_rows", "all_no", "coverage")])
    return aucs, accepts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"photos": projected_photos(Path(tmp), 0.0)}
        sets["photos, 15% two"] = projected_photos(Path(tmp), 0.15)
    sets["wine"] = sklearn_set("wine")
    sets["breast cancer"] = sklearn_set("breast cancer")
    sets["multi-hot table"] = table_set()
    for name, (x, y, classes) in sets.items():
        print(f"{name}: {len(x)} rows, {x.shape[1]} features, {len(classes)} classes, "
              f"{y.sum(axis=1).mean():.2f} labels per row")
    results = [rows_for(name, data, args.seeds) for name, data in sets.items()]
    print_table(f"Macro AUC on the unlabeled rows, one-label sets (mean of {args.seeds} seeds)",
                ["set", "labels", "sigmoid", "softmax", "multinomial LR", "softmax - LR",
                 "softmax - sigmoid", "sd of the gain"], [r for a, _ in results for r in a])
    print_table(f"What accept writes on the unlabeled rows (mean of {args.seeds} seeds)",
                ["set", "labels", "head, thresholds", "yes precision", "accepted rows wrong",
                 "accepted rows all no", "coverage (rows)"], [r for _, b in results for r in b])


if __name__ == "__main__":
    main()
