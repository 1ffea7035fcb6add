"""The headless demo: build the demo images, label a few from ground truth, report (B7)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from patchwork_widget.datasets import demo_classes, load_demo_dataset
from patchwork_widget.labels import LabelStore, journal_path, prep_label_dataframe


@dataclass
class DemoResult:
    """What the headless demo did and where its files are."""

    images: Path
    labels: Path
    journal: Path
    annotated: int
    counts: pd.DataFrame


def run_headless_demo(workdir: str | os.PathLike, n_annotate: int = 20, seed: int = 0) -> DemoResult:
    """Label ``n_annotate`` random demo images from their ground truth, durably.

    The demo images are built (once) under ``workdir/data``; the labels go to
    ``workdir/labels.csv`` with the journal beside it.
    """
    workdir = Path(workdir)
    truth = load_demo_dataset(workdir / "data")
    classes = demo_classes()
    outfile = workdir / "labels.csv"
    df = prep_label_dataframe(truth["filepath"].tolist(), classes)
    rng = np.random.default_rng(seed)
    with LabelStore.open(outfile, df=df) as store:
        unlabeled = store.df.index[store.df[classes].isna().all(axis=1)].to_numpy()
        rows = rng.choice(unlabeled, size=min(n_annotate, len(unlabeled)), replace=False)
        for row in rows:
            changes = {c: float(truth.at[row, c]) for c in classes}
            store.annotate(int(row), changes, seconds=float(rng.uniform(1.0, 4.0)))
        counts = store.counts
    return DemoResult(workdir / "data", outfile, Path(journal_path(outfile)), len(rows), counts)
