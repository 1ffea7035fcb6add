"""Stratified sampling of training rows for partial multi-hot labels (feature I4).

A stratum is a (class, value) pair: the training rows where class ``c`` is labelled ``v``
(0 or 1). Each draw picks a stratum, with probability uniform, proportional to its size, or
proportional to the square root of its size, then a row of that stratum uniformly, with
replacement. A row with several labels belongs to several strata; its missing labels are left
missing (the losses mask them), never guessed. Validation and excluded rows never enter a
stratum. NumPy only: no TensorFlow here.
"""

from __future__ import annotations

import logging
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .groups import train_mask
from patchwork_widget.options.training import Weighting

logger = logging.getLogger(__name__)

__all__ = ["StratifiedSampler", "Weighting"]


class StratifiedSampler:
    """Draw training rows stratified by (class, value).

    Parameters
    ----------
    labels : np.ndarray
        Shape (N, C): NaN (missing), 0 or 1.
    train_mask : np.ndarray, optional
        Bool (N,): rows allowed in training (default: all).
    weighting : {"uniform", "proportional", "sqrt"}
        Stratum probability as a function of its size.
    seed : int or np.random.Generator, optional
        Random source.
    classes : sequence of str, optional
        Names used in :attr:`strata` (default: column numbers).

    Raises
    ------
    ValueError
        For bad shapes or weighting, or when no training row has a label.
    """

    def __init__(
        self,
        labels: np.ndarray,
        train_mask: Optional[np.ndarray] = None,
        weighting: Union[str, Weighting] = Weighting.UNIFORM,
        seed: Union[int, np.random.Generator, None] = None,
        classes: Optional[Sequence[str]] = None,
    ) -> None:
        labels = np.asarray(labels, dtype=np.float64)
        if labels.ndim != 2:
            raise ValueError(f"labels must have shape (N, C); got {labels.shape}")
        n, c = labels.shape
        if train_mask is None:
            train_mask = np.ones(n, dtype=bool)
        train_mask = np.asarray(train_mask, dtype=bool)
        if train_mask.shape != (n,):
            raise ValueError(f"train_mask must have shape ({n},); got {train_mask.shape}")
        bad = ~(np.isnan(labels) | (labels == 0) | (labels == 1))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"labels must be NaN, 0 or 1; row {row}, column {col} holds {labels[row, col]!r}"
            )
        self.weighting = Weighting.parse(weighting)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        names = list(classes) if classes is not None else list(range(c))
        if len(names) != c:
            raise ValueError(f"classes has {len(names)} names for {c} label columns")

        strata: List[Tuple[Union[str, int], int]] = []
        members: List[np.ndarray] = []
        for j in range(c):
            for value in (0, 1):
                rows = np.flatnonzero(train_mask & (labels[:, j] == value))
                if len(rows):
                    strata.append((names[j], value))
                    members.append(rows)
        if not strata:
            raise ValueError(
                "no training labels: label at least one image that is neither excluded nor "
                "in validation"
            )
        self.strata = strata
        self.sizes = np.array([len(m) for m in members], dtype=np.int64)
        self._rows = np.concatenate(members)
        self._offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        if self.weighting is Weighting.UNIFORM:
            w = np.ones(len(strata))
        elif self.weighting is Weighting.PROPORTIONAL:
            w = self.sizes.astype(np.float64)
        else:
            w = np.sqrt(self.sizes)
        self.probabilities = w / w.sum()
        self.num_rows = int(len(np.unique(self._rows)))
        logger.debug("sampler: %d strata over %d training rows (%s)",
                     len(strata), self.num_rows, self.weighting.value)

    @classmethod
    def from_table(
        cls,
        df: pd.DataFrame,
        classes: Sequence[str],
        weighting: Union[str, Weighting] = Weighting.UNIFORM,
        seed: Union[int, np.random.Generator, None] = None,
    ) -> "StratifiedSampler":
        """Sampler over a label table: training rows are neither excluded nor validation."""
        return cls(df[list(classes)].to_numpy(dtype=np.float64), train_mask(df),
                   weighting=weighting, seed=seed, classes=classes)

    def row_probabilities(self, n_rows: int) -> np.ndarray:
        """Probability that one draw returns each row (length ``n_rows``)."""
        p = np.zeros(n_rows)
        for s, (off, size) in enumerate(zip(self._offsets, self.sizes)):
            np.add.at(p, self._rows[off:off + size], self.probabilities[s] / size)
        return p

    def sample_with_strata(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows; returns (row indices, stratum index of each draw), both int64."""
        strata = self.rng.choice(len(self.sizes), size=n, p=self.probabilities)
        within = np.floor(self.rng.random(n) * self.sizes[strata]).astype(np.int64)
        return self._rows[self._offsets[strata] + within], strata.astype(np.int64)

    def sample(self, n: int) -> np.ndarray:
        """Draw ``n`` training row indices (int64), with replacement."""
        return self.sample_with_strata(n)[0]

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Endless generator of index batches of ``batch_size`` rows."""
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
        while True:
            yield self.sample(batch_size)
