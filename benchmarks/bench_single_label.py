"""Issue 22: one label per image. What ``a`` writes per row, and the softmax head against
multinomial logistic regression, on held-out one-label sets (nothing downloaded):

- ``photos``: patches of 8 scikit-image photos the demo does not use (one photo per patch),
  the demo's feature recipe through a fixed random projection to 24 dimensions (a mediocre
  extractor: macro AUC about 0.75 at 60 labels);
- ``wine`` (3 classes) and ``breast cancer`` (2 classes) from scikit-learn, standardised.

For 30 / 60 / 120 random labeled rows (3 seeds), on the other rows:

- macro AUC of the sigmoid head (``TrainOptions(single_label=False)``: today's default on such a
  table), of the softmax head (``single_label=None``: detected from the labels) and of
  scikit-learn's multinomial ``LogisticRegression`` (C=1);
- what accept writes at ``yes=0.9, no=0.1`` with the sigmoid head and the per-class rule
  ("sigmoid") and with the softmax head and the one-label rule ("softmax"): precision of the
  written "yes", share of accepted rows with at least one wrong entry, share of accepted rows
  written "no" on every class, and coverage (share of unlabeled rows accept writes something on).

    python benchmarks/bench_single_label.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np
from _table import print_table
from bench_suggestions import DataSet, macro_auc, photo_set, table_for

from patchwork_widget.active.suggest import has_positive_labels, suggestions

COUNTS = (30, 60, 120)


def projected_photos(folder: Path) -> DataSet:
    x, y, classes = photo_set(folder, n_per_class=100, mixed=0.0)
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


def accept_rows(p: np.ndarray, truth: np.ndarray, has_pos: np.ndarray,
                single_label: bool) -> Dict[str, float]:
    s = suggestions(p, None, has_pos, 0.9, 0.1, single_label=single_label)
    accepted = ~np.isnan(s).all(axis=1)
    yes = s == 1
    wrong_row = ((s != truth) & ~np.isnan(s)).any(axis=1)
    all_no = accepted & ~yes.any(axis=1)
    n = max(int(accepted.sum()), 1)
    return {"yes_precision": float((truth[yes] == 1).mean()) if yes.any() else np.nan,
            "wrong_rows": float(wrong_row[accepted].sum() / n),
            "all_no": float(all_no.sum() / n),
            "coverage": float(accepted.mean())}


def rows_for(name: str, data: DataSet, seeds: int) -> List[List]:
    x, truth, classes = data
    out = []
    for count in COUNTS:
        runs: Dict[str, List] = {k: [] for k in ("auc_sig", "auc_soft", "auc_lr", "sig", "soft")}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            known = np.zeros(len(x), bool)
            known[rng.choice(len(x), count, replace=False)] = True
            df = table_for(truth, classes, known, np.zeros(len(x), bool))
            rest = ~known
            has_pos = has_positive_labels(truth, known)
            p_sig = fitted(x, df, classes, False)
            p_soft = fitted(x, df, classes, None)
            p_lr = multinomial_lr(x, truth, np.flatnonzero(known))
            runs["auc_sig"].append(macro_auc(p_sig[rest], truth[rest]))
            runs["auc_soft"].append(macro_auc(p_soft[rest], truth[rest]))
            runs["auc_lr"].append(macro_auc(p_lr[rest], truth[rest]))
            runs["sig"].append(accept_rows(p_sig[rest], truth[rest], has_pos, False))
            runs["soft"].append(accept_rows(p_soft[rest], truth[rest], has_pos, True))
        row = [name, count] + [float(np.mean(runs[k])) for k in ("auc_sig", "auc_soft",
                                                                 "auc_lr")]
        row.append(float(np.mean(runs["auc_soft"]) - np.mean(runs["auc_lr"])))
        for rule in ("sig", "soft"):
            row += [float(np.nanmean([r[k] for r in runs[rule]]))
                    for k in ("yes_precision", "wrong_rows", "all_no", "coverage")]
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"photos": projected_photos(Path(tmp))}
    sets["wine"] = sklearn_set("wine")
    sets["breast cancer"] = sklearn_set("breast cancer")
    for name, (x, y, classes) in sets.items():
        print(f"{name}: {len(x)} rows, {x.shape[1]} features, {len(classes)} classes")
    rows = [r for name, data in sets.items() for r in rows_for(name, data, args.seeds)]
    print_table(
        f"One label per image: macro AUC and what accept writes at 0.9 / 0.1 "
        f"(mean of {args.seeds} seeds)",
        ["set", "labels", "AUC sigmoid", "AUC softmax", "AUC multinomial LR", "softmax - LR",
         "sig: yes prec", "sig: wrong rows", "sig: all-no rows", "sig: coverage",
         "soft: yes prec", "soft: wrong rows", "soft: all-no rows", "soft: coverage"], rows)


if __name__ == "__main__":
    main()
