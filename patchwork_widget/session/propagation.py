"""The Session's label-propagation methods (A4): kNN graph, propagation, pseudo-labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patchwork_widget.active.propagate import Method
from patchwork_widget.labels.groups import excluded_mask
from patchwork_widget.session.events import EventKind

if TYPE_CHECKING:
    from patchwork_widget.session.core import Session


class PropagationMethods:
    """Mixed into :class:`~.core.Session`; uses its features and derived state."""

    @property
    def graph(self: Session) -> Any:
        """The symmetric, normalised kNN graph of the features (scipy sparse), once built."""
        return self.derived.graph

    @property
    def propagation(self: Session) -> pd.DataFrame | None:
        """Propagation scores in [0, 1] per row, one column per class they cover."""
        return self.derived.propagation

    def build_graph(self: Session, k: int = 10, temperature: float = 0.1, recall: float = 0.95) -> Any:
        """The symmetric, normalised kNN graph of the features (cosine; exp(-d / temperature)),
        its neighbours found with at least ``recall`` of the exact ones (measured while
        building: ``graph.search`` reports it)."""
        from patchwork_widget.active.graph import knn_graph

        if self.features is None:
            raise ValueError("label propagation needs pre-extracted features (features=...)")
        self.derived.graph = knn_graph(self.features, k=k, temperature=temperature, recall=recall)
        return self.derived.graph

    def propagate(self: Session, method: Method | str = Method.ZHOU, alpha: float = 0.9,
                  iterations: int = 20) -> pd.DataFrame:
        """Spread the current labels over the graph: a score in [0, 1] per row and class.

        ``method`` is ``"zhou"`` (closed form; ``alpha`` in (0, 1) weighs the graph against the
        labels) or ``"bai"`` (``iterations`` clamped steps). The defaults were chosen by
        measurement (docs/active_learning.md).
        """
        from patchwork_widget.active.propagate import propagate

        if self.derived.graph is None:
            raise ValueError("build the graph first (build_graph)")
        labels = self.df[self.classes].to_numpy(dtype=float, copy=True)
        labels[excluded_mask(self.df)] = np.nan
        scores = propagate(self.derived.graph, labels, method=method, alpha=alpha,
                           iterations=iterations)
        frame = pd.DataFrame(scores, columns=self.classes, index=self.df.index)
        self.derived.set_propagation(frame, self.derived.stamp(self.classes))
        self._emit(EventKind.DERIVED, source="propagate")
        return self.derived.propagation

    def pseudo_labels(self: Session, threshold: float = 0.9) -> pd.DataFrame:
        """Propagation scores as labels: 1 at >= threshold, 0 at <= 1 - threshold, else NaN;
        rows' own labels are kept. Only classes the scores cover."""
        from patchwork_widget.active.propagate import pseudo_label_frame

        scores = self.derived.propagation
        if scores is None:
            raise ValueError("no propagation scores yet: propagate first")
        covered = list(scores.columns)
        frame = pseudo_label_frame(scores.to_numpy(), covered, threshold,
                                   labels=self.df[covered].to_numpy(dtype=float), index=self.df.index)
        return pd.concat([self.df[["filepath"]], frame], axis=1)
