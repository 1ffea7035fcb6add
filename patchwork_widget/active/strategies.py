"""Query strategies for simulated active learning, and how to plug in your own (A5).

A strategy is any callable with the signature::

    strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray

returning ``k`` distinct row positions of the pool that are not labeled yet (``state.labeled``
is False there). :class:`PoolState` carries what a strategy may look at: the pool's features,
which rows are labeled, the current model's outputs and penultimate embeddings. Two helpers
wrap the common cases, as the reference framework's "scoring" and "diversity" functions do:

* :func:`from_scores` turns ``score(probs) -> one number per row`` (higher = label first) into
  a strategy that takes the k best unlabeled rows;
* :func:`from_diversity` turns ``select(features, k, candidates, rng) -> rows`` into one.

:func:`mixed` replaces a fraction of any strategy's picks by random ones (exploration).

Multi-class (softmax, one label per row) outputs use the classic scores; multi-hot (sigmoid,
one probability per class) outputs use their per-class analogues averaged over classes:
entropy -> mean binary entropy, least confidence -> mean ``1 - max(p, 1 - p)``, margin -> mean
``1 - |2p - 1|`` (the two outcomes of each class are the "top two").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from patchwork_widget.active import diversity, uncertainty
from patchwork_widget.active.badge import badge
from patchwork_widget.active.neighbors import knn_search

Strategy = Callable[["PoolState", int, np.random.Generator], np.ndarray]
ScoreFn = Callable[[np.ndarray], np.ndarray]
DiversityFn = Callable[[np.ndarray, int, np.ndarray, np.random.Generator], np.ndarray]

KNN_CONFIDENCE_K = 10  # neighbours averaged by the k-nearest-confidence strategy


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


def random_strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random unlabeled rows (passive learning)."""
    rows = np.flatnonzero(state.candidates)
    return rng.choice(rows, size=min(k, len(rows)), replace=False)


def _score_for(state: PoolState, kind: str) -> np.ndarray:
    p = state.probs
    if state.multilabel:
        per_class = {
            "entropy": uncertainty.binary_entropy(p),
            "least confidence": 1.0 - np.maximum(p, 1.0 - p),
            "margin": 1.0 - np.abs(2.0 * p - 1.0),
        }[kind]
        return per_class.mean(axis=1)
    return {"entropy": uncertainty.entropy, "least confidence": uncertainty.least_confidence,
            "margin": uncertainty.margin}[kind](p)


def _uncertainty(kind: str) -> Strategy:
    def strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        return _top_unlabeled(state, _score_for(state, kind), k)

    strategy.__name__ = kind.replace(" ", "_")
    return strategy


def badge_strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
    """BADGE (Ash et al. 2020) on the model's gradient embeddings; softmax or sigmoid by the
    label kind."""
    output = "sigmoid" if state.multilabel else "softmax"
    return badge(state.probs, state.embeddings, k, candidates=state.candidates, seed=rng,
                 output=output)


def coreset_strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-center over the features, labeled rows as the starting centres (Sener and
    Savarese 2018)."""
    return diversity.kcenter_greedy(state.features, k, state.candidates, state.labeled, seed=rng)


def knn_confidence_strategy(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-nearest confidence: a row's least confidence averaged with that of its
    ``KNN_CONFIDENCE_K`` nearest neighbours, so uncertain rows in uncertain *regions* come first
    (a density-weighted uncertainty in the spirit of Settles and Craven 2008)."""
    score = _score_for(state, "least confidence")
    neighbors = state.neighbors(min(KNN_CONFIDENCE_K, len(score) - 1))
    smooth = (score + np.where(neighbors >= 0, score[neighbors], 0.0).sum(axis=1)) / (
        1 + (neighbors >= 0).sum(axis=1))
    return _top_unlabeled(state, smooth, k)


def mixed(strategy: Strategy | str, random_fraction: float) -> Strategy:
    """``strategy`` with ``round(k * random_fraction)`` of its ``k`` picks made at random."""
    base = resolve(strategy)
    if not isinstance(random_fraction, (int, float)) or not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be a number in [0, 1], got {random_fraction!r}")

    def strategy_mix(state: PoolState, k: int, rng: np.random.Generator) -> np.ndarray:
        n_random = int(round(k * random_fraction))
        picks = np.asarray(base(state, k - n_random, rng), dtype=np.int64) if k > n_random else (
            np.empty(0, dtype=np.int64))
        rest = np.flatnonzero(state.candidates)
        rest = rest[~np.isin(rest, picks)]
        extra = rng.choice(rest, size=min(n_random, len(rest)), replace=False)
        return np.concatenate([picks, extra])

    strategy_mix.__name__ = f"{getattr(base, '__name__', 'strategy')}_mix"
    return strategy_mix


STRATEGIES: dict[str, Strategy] = {
    "random": random_strategy,
    "least confidence": _uncertainty("least confidence"),
    "entropy": _uncertainty("entropy"),
    "margin": _uncertainty("margin"),
    "badge": badge_strategy,
    "coreset": coreset_strategy,
    "knn confidence": knn_confidence_strategy,
}


def resolve(strategy: Strategy | str) -> Strategy:
    """A strategy from a registry name or a callable (returned as is)."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; available: "
                             f"{', '.join(STRATEGIES)}, or a callable (state, k, rng) -> rows")
        return STRATEGIES[strategy]
    if not callable(strategy):
        raise ValueError(f"a strategy is a name or a callable (state, k, rng) -> rows; got "
                         f"{strategy!r}")
    return strategy
