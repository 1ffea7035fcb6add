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
``scores``     N x C label-propagation scores in [0, 1] (:func:`~.propagate.propagate`)
============  =============================================================================

A missing array raises ``ValueError`` naming it and how to get it. Per-class orders also take
``cls``, a class column index; batch orders (BADGE, diversity, coreset) take ``count``, the batch
size, and return that many rows (:data:`DEFAULT_BATCH` without it), since choosing the k-th row
depends on the first k - 1. :data:`ORDER_INFO` says what each order needs; an
:class:`OrderChoice` (an order name plus, for per-class orders, a class *name*) is what a menu
offers, so a class called ``"maxent: x"`` works like any other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from patchwork_widget.active import diversity, uncertainty
from patchwork_widget.active._checks import HOW_TO_GET, check_class, check_probs, require
from patchwork_widget.active.badge import badge

Order = Callable[..., np.ndarray]

DEFAULT_BATCH = 100  # rows a batch order picks when no count is given
HARD_MINING_POWER = 4  # high / low sample with weights p^4 / (1 - p)^4


def _rows(candidates: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(candidates, dtype=bool))


def _by_score(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``rows`` by descending ``score`` (one value per row); ties keep row order."""
    return rows[np.argsort(-score, kind="stable")]


def _class_probs(name: str, arrays: Mapping[str, Any], cls: Any) -> np.ndarray:
    probs = check_probs(require(arrays, "probs", name))
    return probs[:, check_class(cls, probs.shape[1], name)]


def random_order(candidates: np.ndarray, *, rng: np.random.Generator, **_: Any) -> np.ndarray:
    """Candidates in uniformly random order."""
    return rng.permutation(_rows(candidates))


def max_entropy(candidates: np.ndarray, *, rng: np.random.Generator, **arrays: Any) -> np.ndarray:
    """Largest mean binary entropy over the classes first (uncertainty sampling; Settles 2009).

    With ``labels``, a row's already-labeled classes are left out of its mean (see
    :func:`~.uncertainty.mean_binary_entropy`).
    """
    rows = _rows(candidates)
    probs = require(arrays, "probs", "max entropy")
    score = uncertainty.mean_binary_entropy(probs, arrays.get("labels"))
    return _by_score(rows, score[rows])


def maxent(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
           **arrays: Any) -> np.ndarray:
    """Largest binary entropy of class ``cls`` first (p nearest 0.5)."""
    rows = _rows(candidates)
    p = _class_probs("maxent", arrays, cls)
    return _by_score(rows, uncertainty.binary_entropy(p[rows]))


def highest(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
            **arrays: Any) -> np.ndarray:
    """Highest p of class ``cls`` first (top-k)."""
    rows = _rows(candidates)
    return _by_score(rows, _class_probs("highest", arrays, cls)[rows])


def lowest(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
           **arrays: Any) -> np.ndarray:
    """Lowest p of class ``cls`` first (top-k)."""
    rows = _rows(candidates)
    return _by_score(rows, -_class_probs("lowest", arrays, cls)[rows])


def weighted_permutation(rows: np.ndarray, weights: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """``rows`` sampled without replacement with probability proportional to ``weights``.

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
    return rows[np.lexsort((tie, key))]


def high(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
         **arrays: Any) -> np.ndarray:
    """Sampled with weights ``p^4`` for class ``cls``: mostly high scores, some spread, for
    hard-negative mining among likely positives."""
    rows = _rows(candidates)
    p = _class_probs("high", arrays, cls)[rows]
    return weighted_permutation(rows, p ** HARD_MINING_POWER, rng)


def low(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
        **arrays: Any) -> np.ndarray:
    """Sampled with weights ``(1 - p)^4`` for class ``cls``."""
    rows = _rows(candidates)
    p = _class_probs("low", arrays, cls)[rows]
    return weighted_permutation(rows, (1.0 - p) ** HARD_MINING_POWER, rng)


def badge_order(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
                count: int | None = None, **arrays: Any) -> np.ndarray:
    """A BADGE batch (Ash et al. 2020; :func:`~.badge.badge`), optionally for class ``cls``;
    labeled classes carry no gradient when ``labels`` is given."""
    probs = check_probs(require(arrays, "probs", "badge"))
    embeddings = require(arrays, "embeddings", "badge")
    if cls is not None:
        check_class(cls, probs.shape[1], "badge")
    return badge(probs, embeddings, count or DEFAULT_BATCH, candidates=candidates,
                 labels=arrays.get("labels"), cls=cls, seed=rng)


def diversity_order(candidates: np.ndarray, *, rng: np.random.Generator,
                    count: int | None = None, **arrays: Any) -> np.ndarray:
    """A diverse batch by k-means++ seeding on normalised, projected ``features``."""
    features = require(arrays, "features", "diversity")
    return diversity.kmeanspp_select(features, count or DEFAULT_BATCH, candidates, seed=rng)


def coreset_order(candidates: np.ndarray, *, rng: np.random.Generator,
                  count: int | None = None, **arrays: Any) -> np.ndarray:
    """A core-set batch by greedy k-center (Sener and Savarese 2018) on ``features``; rows
    holding any label (from ``labels``) start as centres."""
    features = require(arrays, "features", "coreset")
    labels = arrays.get("labels")
    centres = None if labels is None else ~np.isnan(np.asarray(labels, dtype=float)).all(axis=1)
    return diversity.kcenter_greedy(features, count or DEFAULT_BATCH, candidates, centres,
                                    seed=rng)


def propagation_score(candidates: np.ndarray, *, rng: np.random.Generator, cls: int | None = None,
                      **arrays: Any) -> np.ndarray:
    """Highest label-propagation score of class ``cls`` first (Bai et al. 2021): the images
    the graph thinks most likely hold the class."""
    rows = _rows(candidates)
    scores = check_probs(require(arrays, "scores", "propagation score"), name="scores")
    return _by_score(rows, scores[rows, check_class(cls, scores.shape[1], "propagation score")])


def disagreement_scores(labels: np.ndarray, probs: np.ndarray | None = None,
                        scores: np.ndarray | None = None, cls: int | None = None) -> np.ndarray:
    """How strongly a row's label, the model and propagation disagree (B4); NaN = no evidence.

    Per (row, class): a labeled entry scores the mean of ``|label - p|`` over the predictions
    present (model ``probs``, propagation ``scores``); an unlabeled entry scores ``|p - s|``
    when both are present. A row scores its largest entry (only class ``cls`` if given).
    """
    y = np.asarray(labels, dtype=np.float64)
    preds = [np.asarray(q, dtype=np.float64) for q in (probs, scores) if q is not None]
    if not preds:
        raise ValueError("disagreement needs 'probs' or 'scores' (or both)")
    for q in preds:
        if q.shape != y.shape:
            raise ValueError(f"predictions have shape {q.shape}; labels have {y.shape}")
    known = ~np.isnan(y)
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
                 **arrays: Any) -> np.ndarray:
    """Label-error review (B4): candidates whose label disagrees most with the model and/or
    label propagation first (:func:`disagreement_scores`); rows with no evidence (unlabeled,
    and not both predictions present) are left out."""
    labels = require(arrays, "labels", "disagreement")
    probs, scores = arrays.get("probs"), arrays.get("scores")
    if probs is None and scores is None:
        raise ValueError("order 'disagreement' needs 'probs' or 'scores': "
                         f"{HOW_TO_GET['probs']}; or {HOW_TO_GET['scores']}")
    if cls is not None:
        check_class(cls, np.shape(labels)[1], "disagreement")
    rows = _rows(candidates)
    score = disagreement_scores(labels, probs, scores, cls)[rows]
    keep = ~np.isnan(score)
    return _by_score(rows[keep], score[keep])


class ClassUse(str, enum.Enum):
    """Whether an order is about one class."""

    NONE = "none"
    REQUIRED = "required"
    OPTIONAL = "optional"  # offered both for all classes and per class


@dataclass(frozen=True)
class OrderInfo:
    """What an order needs: arrays (all of ``needs``, at least one of ``any_of``) and a class."""

    needs: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()  # arrays it uses when present
    per_class: ClassUse = ClassUse.NONE
    batch: bool = False  # picks a batch of ``count`` rows rather than ranking every candidate

    def ready(self, arrays: Mapping[str, Any]) -> bool:
        """True when every needed array is present (not None)."""
        have = {name for name, value in arrays.items() if value is not None}
        return set(self.needs) <= have and (not self.any_of or bool(set(self.any_of) & have))


ORDERS: dict[str, Order] = {
    "random": random_order,
    "max entropy": max_entropy,
    "maxent": maxent,
    "highest": highest,
    "lowest": lowest,
    "high": high,
    "low": low,
    "badge": badge_order,
    "diversity": diversity_order,
    "coreset": coreset_order,
    "propagation score": propagation_score,
    "disagreement": disagreement,
}

ORDER_INFO: dict[str, OrderInfo] = {
    "random": OrderInfo(),
    "max entropy": OrderInfo(needs=("probs",), uses=("labels",)),
    "maxent": OrderInfo(needs=("probs",), per_class=ClassUse.REQUIRED),
    "highest": OrderInfo(needs=("probs",), per_class=ClassUse.REQUIRED),
    "lowest": OrderInfo(needs=("probs",), per_class=ClassUse.REQUIRED),
    "high": OrderInfo(needs=("probs",), per_class=ClassUse.REQUIRED),
    "low": OrderInfo(needs=("probs",), per_class=ClassUse.REQUIRED),
    "badge": OrderInfo(needs=("probs", "embeddings"), uses=("labels",),
                       per_class=ClassUse.OPTIONAL, batch=True),
    "diversity": OrderInfo(needs=("features",), batch=True),
    "coreset": OrderInfo(needs=("features",), uses=("labels",), batch=True),
    "propagation score": OrderInfo(needs=("scores",), per_class=ClassUse.REQUIRED),
    "disagreement": OrderInfo(needs=("labels",), any_of=("probs", "scores"),
                              per_class=ClassUse.OPTIONAL),
}


@dataclass(frozen=True)
class OrderChoice:
    """A menu entry: an order name and, for per-class orders, the class *name*."""

    name: str = "random"
    cls: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ORDERS:
            raise ValueError(f"unknown order {self.name!r}; available: {', '.join(ORDERS)}")
        use = ORDER_INFO[self.name].per_class
        if use is ClassUse.REQUIRED and not isinstance(self.cls, str):
            raise ValueError(f"order {self.name!r} needs a class name, got {self.cls!r}")
        if use is ClassUse.NONE and self.cls is not None:
            raise ValueError(f"order {self.name!r} takes no class, got {self.cls!r}")
        if self.cls is not None and not isinstance(self.cls, str):
            raise ValueError(f"a class name is a string, got {self.cls!r}")

    @property
    def title(self) -> str:
        """Text for a menu, e.g. ``maxent: cat``."""
        return f"{self.name}: {self.cls}" if self.cls is not None else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cls": self.cls, "title": self.title}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> OrderChoice:
        """Build from ``{"name": ..., "cls": ...}`` (the widget's message form)."""
        if not isinstance(value, Mapping) or "name" not in value:
            raise ValueError(f"an order is a mapping with a 'name' key, got {value!r}")
        return cls(value["name"], value.get("cls"))


def order_options(classes: Sequence[str], available: Iterable[str] | None = None
                  ) -> list[OrderChoice]:
    """Menu entries, in registry order, each per-class order once per class; only the
    ``available`` order names (e.g. from :func:`available_orders`) when given."""
    names = list(ORDERS) if available is None else [n for n in ORDERS if n in set(available)]
    options = []
    for name in names:
        use = ORDER_INFO[name].per_class
        if use is not ClassUse.REQUIRED:
            options.append(OrderChoice(name))
        if use is not ClassUse.NONE:
            options += [OrderChoice(name, c) for c in classes]
    return options


def available_orders(**arrays: Any) -> list[str]:
    """Names of the orders whose needed arrays are all present (not None)."""
    return [name for name, info in ORDER_INFO.items() if info.ready(arrays)]


def rank(
    order: str | OrderChoice | Mapping[str, Any],
    candidates: np.ndarray,
    count: int,
    *,
    rng: np.random.Generator,
    classes: Sequence[str] | None = None,
    **arrays: Any,
) -> np.ndarray:
    """The first ``count`` candidates under an order.

    ``order`` is a registry name (``"max entropy"``), an :class:`OrderChoice` or its dict form;
    a choice's class name is turned into the column index ``cls`` through ``classes``. A plain
    name may take ``cls`` (an index) among ``arrays`` instead.
    """
    if isinstance(order, Mapping):
        order = OrderChoice.from_dict(order)
    if isinstance(order, OrderChoice):
        if order.cls is not None:
            if classes is None or order.cls not in classes:
                raise ValueError(f"unknown class {order.cls!r}; classes are "
                                 f"{None if classes is None else list(classes)}")
            arrays["cls"] = list(classes).index(order.cls)
        order = order.name
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; available: {', '.join(ORDERS)}")
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if ORDER_INFO[order].batch:
        arrays["count"] = int(count)
    return ORDERS[order](np.asarray(candidates, dtype=bool), rng=rng, **arrays)[:count]
