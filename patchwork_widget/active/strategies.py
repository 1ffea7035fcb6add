"""Query strategies for simulated active learning, and how to plug in your own (A5).

Built-in strategies are the orders of :mod:`.registry`, the same ones the widget offers, named
by registry name or :class:`~.registry.OrderChoice` (e.g. ``OrderChoice("margin",
random_fraction=0.2)`` for margin with 20% random picks): :func:`order_strategy` runs an order
on the simulation's pool. Your own strategy is any callable with the signature::

    strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray

returning ``k`` distinct row positions of the pool that are not labeled yet (``state.labeled``
is False there). :class:`PoolState` carries what a strategy may look at: the pool's features,
which rows are labeled, the current model's outputs and penultimate embeddings. Two helpers
wrap the common cases, as the reference framework's "scoring" and "diversity" functions do:

* :func:`from_scores` turns ``score(probs) -> one number per row`` (higher = label first) into
  a strategy that takes the k best unlabeled rows;
* :func:`from_diversity` turns ``select(features, k, candidates, rng) -> rows`` into one.

:func:`mixed` replaces a fraction of any strategy's picks by random ones (exploration).

Multi-class (softmax, one label per row) outputs use the classic uncertainty scores;
multi-hot (sigmoid) outputs their per-class analogues (:func:`~.uncertainty.score`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from patchwork_widget.active.neighbors import knn_search
from patchwork_widget.active.registry import (
    ALIASES,
    ORDERS,
    OrderChoice,
    available_text,
    mix_random,
    rank,
)

Strategy = Callable[["PoolState", int, np.random.Generator], np.ndarray]
ScoreFn = Callable[[np.ndarray], np.ndarray]
DiversityFn = Callable[[np.ndarray, int, np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class PoolState:
    """What a strategy sees in one round of a simulation.

    Attributes
    ----------
    features : np.ndarray
        Pool features, N x d (the inputs of the model).
    labeled : np.ndarray
        Boolean mask over the pool: True where the simulated labeler has given labels.
    probs : np.ndarray
        N x C current model outputs: softmax rows (multi-class) or sigmoid columns (multi-hot).
    embeddings : np.ndarray
        N x e penultimate features of the model (the features for a linear model).
    multilabel : bool
        True for multi-hot labels.
    known_labels : np.ndarray
        N x C labels given so far (0/1, one-hot for multi-class), NaN on unlabeled rows.
    class_names : list of str
        Names of the columns of ``probs``: the class values as text (multi-class) or the
        column numbers ``"0"``, ``"1"``, ... (multi-hot); per-class orders name one of them.
    model : object
        The fitted model, for strategies that need more.
    shared : dict
        A cache that lives for one simulation repeat (e.g. the kNN of the pool).
    """

    features: np.ndarray
    labeled: np.ndarray
    probs: np.ndarray
    embeddings: np.ndarray
    multilabel: bool
    known_labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    model: Any = None
    shared: dict = field(default_factory=dict, repr=False)  # cache kept across rounds

    @property
    def candidates(self) -> np.ndarray:
        """Boolean mask of the rows a strategy may pick."""
        return ~self.labeled

    def neighbors(self, k: int) -> np.ndarray:
        """Indices (N x k) of each pool row's k nearest other rows (cosine), computed once per
        simulation repeat and shared by every round and strategy."""
        key = ("knn", k)
        if key not in self.shared:
            self.shared[key] = knn_search(self.features, k)[0]
        return self.shared[key]

    def propagation(self) -> np.ndarray:
        """Label-propagation scores (N x C) of the labels given so far over the pool's kNN
        graph (built once per simulation repeat with the defaults of :func:`~.graph.knn_graph`)."""
        from patchwork_widget.active.graph import knn_graph
        from patchwork_widget.active.propagate import propagate

        if "graph" not in self.shared:
            self.shared["graph"] = knn_graph(self.features)
        return propagate(self.shared["graph"], self.known_labels)


def _top_unlabeled(state: PoolState, score: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(state.candidates)
    return rows[np.argsort(-score[rows], kind="stable")[:k]]


def from_scores(score: ScoreFn) -> Strategy:
    """A strategy taking the ``k`` unlabeled rows with the highest ``score(probs)``."""

    def strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        values = np.asarray(score(state.probs), dtype=np.float64)
        if values.shape != (len(state.labeled),):
            raise ValueError(f"a score function must return one number per row; got shape "
                             f"{values.shape} for {len(state.labeled)} rows")
        return _top_unlabeled(state, values, k)

    strategy.__name__ = getattr(score, "__name__", "score")
    return strategy


def from_diversity(select: DiversityFn) -> Strategy:
    """A strategy calling ``select(features, k, candidates, rng)`` on the unlabeled rows."""

    def strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(select(state.features, k, state.candidates, rng), dtype=np.int64)

    strategy.__name__ = getattr(select, "__name__", "diversity")
    return strategy


def order_strategy(choice: str | OrderChoice | dict) -> Strategy:
    """A registry order as a strategy: it sees the pool's model outputs, features, the
    model's embeddings, the labels given so far (NaN elsewhere) and, for the orders that use
    them, label-propagation scores of those labels. Per-class orders name a column of
    ``probs`` as in :attr:`PoolState.class_names`."""
    choice = OrderChoice.parse(choice)
    info = ORDERS[choice.name]

    def strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        arrays = {"probs": state.probs, "features": state.features,
                  "embeddings": state.embeddings, "labels": state.known_labels,
                  "output": "sigmoid" if state.multilabel else "softmax"}
        if "propagation" in info.needs + info.any_of:
            arrays["propagation"] = state.propagation()
        if info.neighbors:  # one kNN search per simulation repeat, shared by every round
            arrays["neighbors"] = state.neighbors(min(info.neighbors, len(state.labeled) - 1))
        return rank(choice, state.candidates, k, rng=rng, classes=state.class_names, **arrays)

    strategy.__name__ = choice.title.replace(" ", "_")
    return strategy


def mixed(strategy: Strategy | str, random_fraction: float) -> Strategy:
    """``strategy`` with ``round(k * random_fraction)`` of its ``k`` picks made at random."""
    base = resolve(strategy)
    if not isinstance(random_fraction, (int, float)) or not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be a number in [0, 1], got {random_fraction!r}")

    def strategy_mix(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        n_random = int(round(k * random_fraction))
        picks = np.asarray(base(state, k - n_random, rng), dtype=np.int64) if k > n_random else (
            np.empty(0, dtype=np.int64))
        return mix_random(picks, state.candidates, n_random, rng)

    strategy_mix.__name__ = f"{getattr(base, '__name__', 'strategy')}_mix"
    return strategy_mix


def resolve(strategy: Strategy | str | OrderChoice | dict) -> Strategy:
    """A strategy from a registry order (name, :class:`OrderChoice` or its dict) or a
    callable (returned as is)."""
    if isinstance(strategy, (str, OrderChoice, dict)):
        if isinstance(strategy, str) and strategy not in ORDERS and strategy not in ALIASES:
            raise ValueError(f"unknown strategy {strategy!r}; {available_text()}, or a callable "
                             "(state, k, rng) -> rows")
        return order_strategy(strategy)
    if not callable(strategy):
        raise ValueError(f"a strategy is an order name or a callable (state, k, rng) -> rows; "
                         f"got {strategy!r}")
    return strategy
