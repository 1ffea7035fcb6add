"""The rows one training run uses, shared by both solvers: labels, the row groups of
:mod:`patchwork_widget.labels.groups` and the stratified sampler (I4) over the training rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from patchwork_widget.labels.sampler import StratifiedSampler
from patchwork_widget.labels.groups import train_mask, validation_mask
from patchwork_widget.options.training import TrainOptions


@dataclass(frozen=True, eq=False)
class TrainingRows:
    """Attributes
    ----------
    labels : np.ndarray
        float32 (N, C): 1, 0 or NaN, copied from the table when training starts.
    train_rows : np.ndarray
        Training rows (neither excluded nor validation) with at least one label.
    val_rows : np.ndarray
        Validation rows (not excluded) with at least one label.
    unlabeled_rows : np.ndarray
        Training rows with at least one missing label (FixMatch's unlabelled rows).
    sampler : StratifiedSampler
        Over the training rows' labels, with ``options.sampling``.
    """

    labels: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    unlabeled_rows: np.ndarray
    sampler: StratifiedSampler

    @classmethod
    def from_table(cls, df: pd.DataFrame, classes: Sequence[str],
                   options: TrainOptions) -> "TrainingRows":
        missing = [c for c in classes if c not in df.columns]
        if missing:
            raise ValueError(f"the label table has no column for class(es) {missing}")
        labels = df[list(classes)].to_numpy(dtype=np.float32)
        train, val = train_mask(df), validation_mask(df)
        labelled = ~np.isnan(labels).all(axis=1)
        sampler = StratifiedSampler(labels, train, options.sampling, options.seed, classes)
        return cls(labels, np.flatnonzero(train & labelled), np.flatnonzero(val & labelled),
                   np.flatnonzero(train & np.isnan(labels).any(axis=1)), sampler)

    def row_weights(self) -> np.ndarray:
        """Weights of :attr:`train_rows` proportional to the sampler's chance of drawing each,
        mean 1: the full-batch loss equals the minibatch solver's expected loss."""
        p = self.sampler.row_probabilities(len(self.labels))[self.train_rows]
        return p * (len(p) / p.sum())

    @property
    def num_train_entries(self) -> int:
        """Labels present on training rows."""
        return int((~np.isnan(self.labels[self.train_rows])).sum())
