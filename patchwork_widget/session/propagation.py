"""The Session's label-propagation part (A4): kNN graph, propagation, pseudo-labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.active.propagate import Method
from patchwork_widget.labels.groups import excluded_mask
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.events import EventKind


class Propagation:
    """Label propagation of a Session; uses the context's features and derived state (which
    holds the graph and the scores)."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context

    @property
    def graph(self) -> Any:
        """The symmetric, normalised kNN graph of the features (scipy sparse), once built."""
        return self.context.derived.graph

    @property
    def propagation(self) -> pd.DataFrame | None:
        """Propagation scores in [0, 1] per row, one column per class they cover."""
        return self.context.derived.propagation

    def build_graph(self, k: int = 10, temperature: float = 0.1, recall: float = 0.95) -> Any:
        """Implements ``Session.build_graph`` (documented there)."""
        from patchwork_widget.active.graph import knn_graph

        ctx = self.context
        if ctx.features is None:
            raise ValueError("label propagation needs pre-extracted features (features=...)")
        ctx.derived.graph = knn_graph(ctx.features, k=k, temperature=temperature, recall=recall)
        return ctx.derived.graph

    def propagate(self, method: Method | str = Method.ZHOU, alpha: float = 0.9,
                  iterations: int = 20, balance: bool = False) -> pd.DataFrame:
        """Implements ``Session.propagate`` (documented there)."""
        from patchwork_widget.active.propagate import propagate

        ctx = self.context
        if ctx.derived.graph is None:
            raise ValueError("build the graph first (build_graph)")
        labels = ctx.df[ctx.classes].to_numpy(dtype=float, copy=True)
        labels[excluded_mask(ctx.df)] = np.nan
        scores = propagate(ctx.derived.graph, labels, method=method, alpha=alpha,
                           iterations=iterations, balance=balance)
        frame = pd.DataFrame(scores, columns=ctx.classes, index=ctx.df.index)
        ctx.derived.set_propagation(frame, ctx.derived.stamp(ctx.classes))
        ctx.emit(EventKind.DERIVED, source="propagate")
        return ctx.derived.propagation

    def pseudo_labels(self, threshold: float = 0.9) -> pd.DataFrame:
        """Implements ``Session.pseudo_labels`` (documented there)."""
        from patchwork_widget.active.propagate import pseudo_label_frame

        ctx = self.context
        scores = ctx.derived.propagation
        if scores is None:
            raise ValueError("no propagation scores yet: propagate first")
        covered = list(scores.columns)
        frame = pseudo_label_frame(scores.to_numpy(), covered, threshold,
                                   labels=ctx.df[covered].to_numpy(dtype=float), index=ctx.df.index)
        return pd.concat([ctx.df[["filepath"]], frame], axis=1)
