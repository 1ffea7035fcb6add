"""Sampling orders: pure functions that rank candidate rows (FEATURES A2, A3, B4).

Every order has one signature::

    order(candidates, *, rng, **arrays) -> np.ndarray

``candidates`` is a boolean mask over all N rows; the result holds candidate row positions,
best first. Arrays come by keyword, each optional until an order needs it:

============  =============================================================================
``probs``      N x C model outputs in [0, 1] (sigmoid, one column per class)
``features``   N x d (or N x h x w x c) features, e.g. the pre-extracted ones
``embeddings`` N x d penultimate-layer features of the trained model (for BADGE)
``labels``     N x C labels: 1.0, 0.0, NaN for missing (the table's class columns)
``propagation`` N x C label-propagation scores in [0, 1] (:func:`~.propagate.propagate`)
``heldout``    N x C out-of-fold model outputs of the labeled rows, NaN elsewhere (disagreement)
============  =============================================================================

A missing array raises ``ValueError`` naming it and how to get it. Per-class orders also take
``cls``, a class column index; batch orders (BADGE, diversity, coreset) take ``count``, the batch
size, and return that many rows (:data:`DEFAULT_BATCH` without it), since choosing the k-th row
depends on the first k - 1. Uncertainty orders take ``output``: ``"sigmoid"`` (multi-hot, one
probability per class; the default) or ``"softmax"`` (one label per row).

:mod:`.registry` names every order and says what it needs; the widget's menus, ``Session.sample``
and the strategy comparison all choose from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from patchwork_widget.active import diversity, uncertainty
from patchwork_widget.active._checks import HOW_TO_GET, check_class, check_probs, require
from patchwork_widget.active.badge import badge
from patchwork_widget.active.neighbors import knn_search

Order = Callable[..., np.ndarray]

DEFAULT_BATCH = 100  # rows a batch order picks when no count is given
HARD_MINING_POWER = 4  # high / low sample with weights p^4 / (1 - p)^4
KNN_CONFIDENCE_K = 10  # neighbours averaged by the k-nearest-confidence order


def _rows(candidates: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(candidates, dtype=bool))


def _by_score(rows: np.ndarray, score: np.ndarray, count: int | None = None) -> np.ndarray:
    """``rows`` by descending ``score`` (one value per row), only the first ``count`` when
    given; ties keep row order; rows scoring NaN (no model output) are left out.

    With ``count`` it selects in linear time (a partition) and sorts only what it keeps: the
    result is the first ``count`` rows of the full sort.
    """
    keep = ~np.isnan(score)
    if not keep.all():
        rows, score = rows[keep], score[keep]
    key = -score
    if count is None or count >= len(rows):
        return rows[np.argsort(key, kind="stable")]
    kth = np.partition(key, count - 1)[count - 1]
    better = np.flatnonzero(key < kth)
    tied = np.flatnonzero(key == kth)[: count - len(better)]
    chosen = np.sort(np.concatenate([better, tied]))
    return rows[chosen[np.argsort(key[chosen], kind="stable")]]


def _scored_rows(candidates: np.ndarray, arrays: Mapping[str, Any]) -> np.ndarray:
    """Candidate rows that have model outputs (no NaN in ``probs``)."""
    rows = _rows(candidates)
    probs = arrays.get("probs")
    if probs is not None:
        rows = rows[~np.isnan(np.asarray(probs)[rows]).any(axis=1)]
    return rows


def _class_probs(name: str, arrays: Mapping[str, Any], cls: Any) -> np.ndarray:
    probs = _cached(arrays, ("checked probs",), lambda: check_probs(require(arrays, "probs", name)))
    return probs[:, check_class(cls, probs.shape[1], name)]


def _cached(arrays: Mapping[str, Any], key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()``, memoised in ``arrays["cache"]`` when the caller gives one: a dict it
    empties whenever the arrays change (a Session does, when predictions change)."""
    cache = arrays.get("cache")
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def random_order(candidates: np.ndarray, *, rng: np.random.Generator, count: int | None = None,
                 **_: Any) -> np.ndarray:
    """Candidates in uniformly random order (``count`` of them when given)."""
    rows = _rows(candidates)
    if count is None or count >= len(rows):
        return rng.permutation(rows)
    return rng.choice(rows, size=count, replace=False)


def _uncertainty_order(name: str, kind: str) -> Order:
    """The order ``name``: descending uncertainty score ``kind`` (:func:`~.uncertainty.score`)."""

    def order(candidates: np.ndarray, *, rng: np.random.Generator, output: str = "sigmoid",
              count: int | None = None, **arrays: Any) -> np.ndarray:
        rows = _rows(candidates)
        probs = require(arrays, "probs", name)
        per_class = _cached(arrays, ("per class", kind, output),
                            lambda: uncertainty.per_class(kind, probs, output))
        score = uncertainty.score(kind, probs, output, arrays.get("labels"), class_scores=per_class)
        return _by_score(rows, score[rows], count)

    order.__name__ = name.replace(" ", "_")
    order.__doc__ = (f"Largest {kind} first (uncertainty sampling; Settles 2009). Multi-hot "
                     "outputs score the mean over a row's classes not labeled yet.")
    return order


max_entropy = _uncertainty_order("max entropy", "entropy")
least_confidence = _uncertainty_order("least confidence", "least confidence")
margin = _uncertainty_order("margin", "margin")


def knn_confidence(candidates: np.ndarray, *, rng: np.random.Generator, output: str = "sigmoid",
                   **arrays: Any) -> np.ndarray:
    """k-nearest confidence: a row's least confidence averaged with that of its
    ``KNN_CONFIDENCE_K`` nearest neighbours in ``features`` (or the given ``neighbors``, N x k
    indices, -1 for none), so uncertain rows in uncertain regions come first (a
    density-weighted uncertainty in the spirit of Settles and Craven 2008)."""
    rows = _rows(candidates)
    probs = require(arrays, "probs", "knn confidence")
    score = uncertainty.score("least confidence", probs, output)
    neighbors = arrays.get("neighbors")
    if neighbors is None:
        features = require(arrays, "features", "knn confidence")
        neighbors = knn_search(features, min(KNN_CONFIDENCE_K, len(score) - 1))[0]
    neighbors = np.asarray(neighbors)
    known = neighbors >= 0
    smooth = (score + np.where(known, score[neighbors], 0.0).sum(axis=1)) / (1 + known.sum(axis=1))
    return _by_score(rows, smooth[rows], arrays.get("count"))


def maxent(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
           count: int | None = None, **arrays: Any) -> np.ndarray:
    """Largest binary entropy of class ``cls`` first (p nearest 0.5)."""
    rows = _rows(candidates)
    p = _class_probs("maxent", arrays, cls)
    return _by_score(rows, uncertainty.binary_entropy(p[rows]), count)


def highest(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
            count: int | None = None, **arrays: Any) -> np.ndarray:
    """Highest p of class ``cls`` first (top-k)."""
    rows = _rows(candidates)
    return _by_score(rows, _class_probs("highest", arrays, cls)[rows], count)


def lowest(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
           count: int | None = None, **arrays: Any) -> np.ndarray:
    """Lowest p of class ``cls`` first (top-k)."""
    rows = _rows(candidates)
    return _by_score(rows, -_class_probs("lowest", arrays, cls)[rows], count)


def weighted_permutation(rows: np.ndarray, weights: np.ndarray,
                         rng: np.random.Generator, count: int | None = None) -> np.ndarray:
    """``rows`` sampled without replacement with probability proportional to ``weights``
    (the first ``count`` of them when given).

    Efraimidis and Spirakis 2006 ("Weighted random sampling with a reservoir"): sort by
    ``E_i / w_i`` with ``E_i`` standard exponential; each prefix is a weighted sample without
    replacement. Zero-weight rows come last, in uniformly random order.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != rows.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite, non-negative, one per row")
    key = rng.exponential(size=len(rows))
    tie = rng.random(len(rows))
    with np.errstate(divide="ignore"):
        key = np.where(w > 0, key / np.where(w > 0, w, 1.0), np.inf)
    if count is not None and count < len(rows):
        keep = np.argpartition(key, count - 1)[:count]
        kth = key[keep].max()
        keep = np.flatnonzero(key <= kth)  # every row tied at the boundary, then the tie-break
        rows, key, tie = rows[keep], key[keep], tie[keep]
    return rows[np.lexsort((tie, key))][:count]


def high(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
         **arrays: Any) -> np.ndarray:
    """Sampled with weights ``p^4`` for class ``cls``: mostly high scores, some spread, for
    hard-negative mining among likely positives."""
    rows = _scored_rows(candidates, arrays)
    p = _class_probs("high", arrays, cls)[rows]
    return weighted_permutation(rows, p ** HARD_MINING_POWER, rng, arrays.get("count"))


def low(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
        **arrays: Any) -> np.ndarray:
    """Sampled with weights ``(1 - p)^4`` for class ``cls``."""
    rows = _scored_rows(candidates, arrays)
    p = _class_probs("low", arrays, cls)[rows]
    return weighted_permutation(rows, (1.0 - p) ** HARD_MINING_POWER, rng, arrays.get("count"))


def badge_order(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
                count: int | None = None, **arrays: Any) -> np.ndarray:
    """A BADGE batch (Ash et al. 2020; :func:`~.badge.badge`), optionally for class ``cls``;
    labeled classes carry no gradient when ``labels`` is given."""
    probs = check_probs(require(arrays, "probs", "badge"))
    embeddings = require(arrays, "embeddings", "badge")
    if cls is not None:
        check_class(cls, probs.shape[1], "badge")
    output = arrays.get("output", "sigmoid")
    labels = arrays.get("labels") if output == "sigmoid" else None
    missing = np.isnan(probs).any(axis=1)  # rows without model outputs are not candidates
    candidates = np.asarray(candidates, dtype=bool) & ~missing
    return badge(np.where(missing[:, None], 0.5, probs), embeddings, count or DEFAULT_BATCH,
                 candidates=candidates, labels=labels, cls=cls, seed=rng, output=output)


def _prepared_features(name: str, arrays: Mapping[str, Any]) -> np.ndarray:
    """``features`` pooled, normalised and projected (:func:`~.diversity.prepare_features`),
    kept in the cache for as long as the same ``features`` array comes."""
    features = require(arrays, "features", name)
    cache = arrays.get("cache")
    held = None if cache is None else cache.get(("prepared features",))
    if held is not None and held[0] is features:
        return held[1]
    prepared = diversity.prepare_features(features)
    if cache is not None:
        cache[("prepared features",)] = (features, prepared)
    return prepared


def diversity_order(candidates: np.ndarray, *, rng: np.random.Generator,
                    count: int | None = None, **arrays: Any) -> np.ndarray:
    """A diverse batch by k-means++ seeding on normalised, projected ``features``."""
    features = _prepared_features("diversity", arrays)
    return diversity.kmeanspp_select(features, count or DEFAULT_BATCH, candidates, seed=rng,
                                     dim=None, normalise=False)


def coreset_order(candidates: np.ndarray, *, rng: np.random.Generator,
                  count: int | None = None, **arrays: Any) -> np.ndarray:
    """A core-set batch by greedy k-center (Sener and Savarese 2018) on ``features``; rows
    holding any label (from ``labels``) start as centres."""
    features = _prepared_features("coreset", arrays)
    labels = arrays.get("labels")
    centres = None if labels is None else ~np.isnan(np.asarray(labels, dtype=float)).all(axis=1)
    return diversity.kcenter_greedy(features, count or DEFAULT_BATCH, candidates, centres,
                                    seed=rng, dim=None, normalise=False)


def propagation_score(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
                      count: int | None = None, **arrays: Any) -> np.ndarray:
    """Highest label-propagation score of class ``cls`` first (Bai et al. 2021): the images
    the graph thinks most likely hold the class."""
    rows = _rows(candidates)
    scores = check_probs(require(arrays, "propagation", "propagation score"), name="propagation")
    return _by_score(rows, scores[rows, check_class(cls, scores.shape[1], "propagation score")], count)


def disagreement_scores(labels: np.ndarray, probs: np.ndarray | None = None,
                        propagation: np.ndarray | None = None, cls: int | None = None,
                        heldout: np.ndarray | None = None) -> np.ndarray:
    """How strongly a row's label, the model and propagation disagree (B4); NaN = no evidence.

    Per (row, class): a labeled entry scores the mean of ``|label - p|`` over the predictions
    present (model ``probs``, label-propagation scores ``propagation``); an unlabeled entry
    scores ``|p - s|``
    when both are present. A row scores its largest entry (only class ``cls`` if given).
    ``heldout`` (N x C, NaN where absent) replaces ``probs`` on the labeled entries it covers:
    out-of-fold predictions, from a model that never saw the row's label. A model fitted on a
    flipped label has learned it, so in-sample predictions hide the errors this order looks
    for (``benchmarks/bench_disagreement.py``).
    """
    y = np.asarray(labels, dtype=np.float64)
    known = ~np.isnan(y)
    if heldout is not None:
        held = np.asarray(heldout, dtype=np.float64)
        if held.shape != y.shape:
            raise ValueError(f"heldout predictions have shape {held.shape}; labels have {y.shape}")
        if probs is None:
            raise ValueError("heldout predictions replace 'probs' on labeled rows: pass 'probs' "
                             "too")
        probs = np.where(known & ~np.isnan(held), held, np.asarray(probs, dtype=np.float64))
    preds = [np.asarray(q, dtype=np.float64) for q in (probs, propagation) if q is not None]
    if not preds:
        raise ValueError("disagreement needs 'probs' or 'propagation' (or both)")
    for q in preds:
        if q.shape != y.shape:
            raise ValueError(f"predictions have shape {q.shape}; labels have {y.shape}")
    entry = np.mean([np.abs(np.where(known, y, 0.0) - q) for q in preds], axis=0)
    if len(preds) == 2:
        entry = np.where(known, entry, np.abs(preds[0] - preds[1]))
    else:
        entry = np.where(known, entry, np.nan)
    if cls is not None:
        entry = entry[:, [cls]]
    defined = ~np.isnan(entry).all(axis=1)
    out = np.full(len(y), np.nan)
    out[defined] = np.nanmax(entry[defined], axis=1)
    return out


def disagreement(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
                 count: int | None = None, **arrays: Any) -> np.ndarray:
    """Label-error review (B4): candidates whose label disagrees most with the model and/or
    label propagation first (:func:`disagreement_scores`; the model's out-of-fold predictions
    ``heldout`` on the labeled rows they cover, when given); rows with no evidence (unlabeled,
    and not both predictions present) are left out."""
    labels = require(arrays, "labels", "disagreement")
    probs, propagation = arrays.get("probs"), arrays.get("propagation")
    heldout = arrays.get("heldout") if probs is not None else None
    if probs is None and propagation is None:
        raise ValueError("order 'disagreement' needs 'probs' or 'propagation': "
                         f"{HOW_TO_GET['probs']}; or {HOW_TO_GET['propagation']}")
    if cls is not None:
        check_class(cls, np.shape(labels)[1], "disagreement")
    rows = _rows(candidates)
    return _by_score(rows, disagreement_scores(labels, probs, propagation, cls, heldout)[rows],
                     count)
