"""Issue 11 / FEATURES M3, B10, A4: is the default model worth trusting from 30 labels?

Three sets: the demo (``patchwork_widget.datasets``, 11 classes, its hand-made features), held-out
image patches (8 scikit-image photos the demo does not use, 15% of patches hold two halves of
different photos, same feature recipe) and a scikit-learn table
(``make_multilabel_classification``, 8 classes, 30 features). For 30 / 60 / 120 / 240 random
fully-labeled rows (5 seeds), on the remaining rows:

- macro AUC of the default model (``build_models`` + ``fit(TrainOptions())``), of the minibatch
  solver with its defaults (``solver="minibatch"``) and of scikit-learn's
  ``LogisticRegression`` (C=1, one per class; the base rate for a class with one label value),
  and seconds per fit;
- what accept writes (``patchwork_widget.active.suggest``, thresholds 0.9 / 0.1, no "yes" for a
  class without positives) with the default model: precision of all written labels, share of
  the unlabeled entries written, precision and recall of the written "yes";
- the same with a quarter of the labeled rows flagged validation (Platt calibration on them).

Then label propagation with 5% of the rows labeled (5 seeds): accuracy (threshold 0.5) and macro
AUC on the other rows, and the precision and coverage of 0.9-threshold pseudo-labels, for Zhou
(alpha 0.99, 0.9, 0.5), Bai (20 steps) and scikit-learn's ``LabelSpreading`` (kNN kernel, k=10,
one binary problem per class).

    python benchmarks/bench_suggestions.py              # all (about 10 minutes on 2 cores)
    python benchmarks/bench_suggestions.py --quick      # 2 seeds, demo only
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pandas as pd
from _table import print_table

from patchwork_widget.active.suggest import has_positive_labels, suggestions

COUNTS = (30, 60, 120, 240)
PHOTOS = ("camera", "moon", "page", "text", "coins", "clock", "cell", "colorwheel")
DataSet = Tuple[np.ndarray, np.ndarray, List[str]]


# ----------------------------------------------------------------------------- data sets
def demo_set() -> DataSet:
    from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset

    df = load_demo_dataset()
    classes = demo_classes()
    return demo_features(df["filepath"].tolist()), df[classes].to_numpy(float), classes


def _patch(rng: np.random.Generator, src: np.ndarray, size: int) -> np.ndarray:
    h, w = src.shape[:2]
    side = int(rng.integers(size, min(h, w) // 2 + 1))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = src[top:top + side, left:left + side]
    from PIL import Image

    img = Image.fromarray(crop).resize((size, size), Image.BILINEAR)
    out = np.asarray(img)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.rot90(out, int(rng.integers(0, 4))).copy()


def photo_set(folder: Path, n_per_class: int = 100, seed: int = 0,
              mixed: float = 0.15) -> DataSet:
    """Patches of scikit-image photos the demo does not use, written as PNGs and turned into
    features by the demo's own recipe; a share ``mixed`` of the patches holds two halves of
    different photos (two labels), the rest one label."""
    import skimage.data
    from PIL import Image

    from patchwork_widget.datasets import demo_features

    rng = np.random.default_rng(seed)
    sources = {}
    for name in PHOTOS:
        img = np.asarray(getattr(skimage.data, name)())
        img = img[..., :3] if img.ndim == 3 else np.stack([img] * 3, axis=-1)
        sources[name] = img.astype(np.uint8)
    images, labels = [], []
    for j, name in enumerate(PHOTOS):
        for _ in range(n_per_class):
            images.append(_patch(rng, sources[name], 32))
            labels.append(np.eye(len(PHOTOS))[j])
    for _ in range(int(mixed / (1.0 - mixed) * len(images))):
        a, b = rng.choice(len(PHOTOS), 2, replace=False)
        left, right = _patch(rng, sources[PHOTOS[a]], 32), _patch(rng, sources[PHOTOS[b]], 32)
        images.append(np.concatenate([left[:, :16], right[:, 16:]], axis=1))
        labels.append(np.eye(len(PHOTOS))[a] + np.eye(len(PHOTOS))[b])
    paths = []
    for i, img in enumerate(images):
        path = folder / f"photo_{i:05d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    order = rng.permutation(len(paths))
    feats = demo_features([paths[i] for i in order])
    return feats, np.asarray(labels, float)[order], list(PHOTOS)


def table_set(seed: int = 0) -> DataSet:
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=1200, n_features=30, n_classes=8,
                                          n_labels=1, allow_unlabeled=False, random_state=seed)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    return x.astype(np.float32), y.astype(float), [f"class_{j}" for j in range(8)]


# ----------------------------------------------------------------------------- models
def table_for(labels: np.ndarray, classes: List[str], train: np.ndarray,
              validation: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"filepath": [f"{i}.png" for i in range(len(labels))], "exclude": False,
                       "validation": validation})
    known = train | validation
    for j, c in enumerate(classes):
        df[c] = np.where(known, labels[:, j], np.nan)
    return df


def ours(x: np.ndarray, df: pd.DataFrame, classes: List[str], **options) -> np.ndarray:
    import keras

    from patchwork_widget.models import TrainOptions, build_models, fit, predict

    keras.utils.set_random_seed(0)
    models = build_models(classes, feature_shape=x.shape[1:])
    fit(models, df, features=x, options=TrainOptions(seed=0, **options))
    return predict(models, df, features=x).to_numpy()


def sklearn_lr(x: np.ndarray, df: pd.DataFrame, classes: List[str]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    rows = df["validation"].to_numpy() == False  # noqa: E712
    out = np.empty((len(x), len(classes)))
    for j, c in enumerate(classes):
        y = df[c].to_numpy()
        keep = rows & ~np.isnan(y)
        if len(np.unique(y[keep])) < 2:
            out[:, j] = (y[keep].mean() if keep.any() else 0.5)
            continue
        out[:, j] = LogisticRegression(C=1.0, max_iter=1000).fit(x[keep], y[keep]) \
            .predict_proba(x)[:, 1]
    return out


def macro_auc(p: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1])
            if len(np.unique(y[:, j])) == 2]
    return float(np.mean(aucs))


def accept_figures(p: np.ndarray, truth: np.ndarray, has_pos: np.ndarray) -> Dict[str, float]:
    s = suggestions(p, None, has_pos)
    written = ~np.isnan(s)
    yes = s == 1
    return {"precision": float((s[written] == truth[written]).mean()) if written.any() else 1.0,
            "written": float(written.mean()),
            "yes_precision": float((truth[yes] == 1).mean()) if yes.any() else np.nan,
            "yes_recall": float((yes & (truth == 1)).sum() / max((truth == 1).sum(), 1))}


def model_rows(name: str, data: DataSet, seeds: int) -> List[List]:
    x, truth, classes = data
    rows = []
    for count in COUNTS:
        runs: Dict[str, List] = {k: [] for k in ("ours", "mini", "lr", "acc", "acc_val",
                                                 "t_ours", "t_mini", "t_lr")}
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            chosen = rng.choice(len(x), count, replace=False)
            train = np.zeros(len(x), bool)
            train[chosen] = True
            rest = ~train
            df = table_for(truth, classes, train, np.zeros(len(x), bool))
            has_pos = has_positive_labels(truth, train)
            fits: Dict[str, Callable[[], np.ndarray]] = {
                "ours": lambda: ours(x, df, classes),
                "mini": lambda: ours(x, df, classes, solver="minibatch"),
                "lr": lambda: sklearn_lr(x, df, classes)}
            for key, run in fits.items():
                start = time.perf_counter()
                p = run()
                runs[f"t_{key}"].append(time.perf_counter() - start)
                runs[key].append(macro_auc(p[rest], truth[rest]))
                if key == "ours":
                    runs["acc"].append(accept_figures(p[rest], truth[rest], has_pos))
            # a quarter of the labeled rows in validation: Platt calibration on them
            val = train & (rng.random(len(x)) < 0.25)
            df_val = table_for(truth, classes, train & ~val, val)
            p = ours(x, df_val, classes)
            runs["acc_val"].append(accept_figures(p[rest], truth[rest],
                                                  has_positive_labels(truth, train & ~val)))
        acc, acc_val = pd.DataFrame(runs["acc"]).mean(), pd.DataFrame(runs["acc_val"]).mean()
        rows.append([name, count, np.mean(runs["ours"]), np.mean(runs["mini"]),
                     np.mean(runs["lr"]), acc["precision"], acc["written"],
                     acc["yes_precision"], acc["yes_recall"], acc_val["precision"],
                     acc_val["written"], np.mean(runs["t_ours"]), np.mean(runs["t_mini"]),
                     np.mean(runs["t_lr"])])
    return rows


# ----------------------------------------------------------------------------- propagation
def label_spreading(x: np.ndarray, known: np.ndarray, truth: np.ndarray) -> np.ndarray:
    from sklearn.semi_supervised import LabelSpreading

    out = np.empty(truth.shape)
    for j in range(truth.shape[1]):
        target = np.where(known, truth[:, j], -1).astype(int)
        model = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(x, target)
        classes = list(model.classes_)
        out[:, j] = model.label_distributions_[:, classes.index(1)] if 1 in classes else 0.0
    return out


def propagation_rows(name: str, data: DataSet, seeds: int) -> List[List]:
    from patchwork_widget.active.graph import knn_graph
    from patchwork_widget.active.propagate import propagate

    x, truth, _ = data
    graph = knn_graph(x, k=10)
    methods: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "zhou 0.99": lambda y: propagate(graph, y, "zhou", alpha=0.99),
        "zhou 0.9": lambda y: propagate(graph, y, "zhou", alpha=0.9),
        "zhou 0.5": lambda y: propagate(graph, y, "zhou", alpha=0.5),
        "bai": lambda y: propagate(graph, y, "bai"),
    }
    results: Dict[str, List[Tuple[float, ...]]] = {m: [] for m in [*methods, "LabelSpreading"]}
    for seed in range(seeds):
        rng = np.random.default_rng(2000 + seed)
        known = rng.random(len(x)) < 0.05
        y = np.where(known[:, None], truth, np.nan)
        rest = ~known
        for method, run in [*methods.items(),
                            ("LabelSpreading", lambda y: label_spreading(x, known, truth))]:
            s = run(y)[rest]
            t = truth[rest]
            sure = (s >= 0.9) | (s <= 0.1)
            results[method].append((float(((s >= 0.5) == (t == 1)).mean()), macro_auc(s, t),
                                    float(((s[sure] >= 0.5) == (t[sure] == 1)).mean()),
                                    float(sure.mean()), float((s >= 0.9).sum() / len(s))))
    return [[name, m, *np.mean(v, axis=0)] for m, v in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, the demo only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    seeds = 2 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"demo": demo_set()}
        if not args.quick:
            sets["photos"] = photo_set(Path(tmp))
            sets["table"] = table_set()
    for name, (x, y, classes) in sets.items():
        print(f"{name}: {len(x)} rows, {x.shape[1]} features, {len(classes)} classes, "
              f"{y.sum(axis=1).mean():.2f} labels per row")
    rows = [r for name, data in sets.items() for r in model_rows(name, data, seeds)]
    print_table(
        f"Default model vs logistic regression, and what accept writes (mean of {seeds} seeds)",
        ["set", "labels", "AUC default", "AUC minibatch", "AUC sklearn LR", "accept precision",
         "written", "yes precision", "yes recall", "precision (val)", "written (val)",
         "s default", "s minibatch", "s LR"], rows)
    prop = [r for name, data in sets.items() for r in propagation_rows(name, data, seeds)]
    print_table(f"Label propagation with 5% labeled (mean of {seeds} seeds)",
                ["set", "method", "accuracy", "macro AUC", "pseudo precision",
                 "pseudo coverage", "pseudo yes per row"], prop)


if __name__ == "__main__":
    main()
