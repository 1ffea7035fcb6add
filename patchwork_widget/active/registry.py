"""The one registry of sampling orders (A2, A5): everything about an order (what it needs and
uses, whether it is per class, what it is for, whether online rounds may re-rank by it, its
aliases), menu entries, and ranking.

The widget's order menu, ``Session.sample``, online rounds (:class:`OnlineOptions` and the
Online tab) and the strategy comparison (:func:`~.simulate.compare_strategies`) all choose from
:data:`ORDERS`, and read an order's properties from its :class:`OrderInfo`; nothing else names
an order by string. Aliases (:func:`canonical_order`) are the names the reference's
strategy-comparison framework used (``"entropy"``, ``"least_confidence"`` ...). An
:class:`OrderChoice` is a registry name, a class *name* for per-class orders (so a class called
``"maxent: x"`` works like any other) and a ``random_fraction`` of the picks drawn at random
instead (exploration, as in the mixes of the reference framework).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from patchwork_widget.active import orders as o
from patchwork_widget.options.checks import check_names, shown, too_large_for_memory
from patchwork_widget.options.legacy import take_renamed


class ClassUse(str, enum.Enum):
    """Whether an order is about one class."""

    NONE = "none"
    REQUIRED = "required"
    OPTIONAL = "optional"  # offered both for all classes and per class


class Purpose(str, enum.Enum):
    """What an order is for (shown beside it in the menu)."""

    GENERAL = "general"  # a better model everywhere
    POSITIVES = "find positives"  # of its class
    NEGATIVES = "find negatives"  # of its class
    LABEL_ERRORS = "label errors"  # labels worth a second look

    def describe(self, cls: str | None = None) -> str:
        """E.g. ``"general"`` or ``"find positives of cat"``."""
        if self in (Purpose.POSITIVES, Purpose.NEGATIVES) and cls is not None:
            return f"{self.value} of {cls}"
        return self.value


@dataclass(frozen=True)
class OrderInfo:
    """An order function and everything about it.

    Attributes
    ----------
    order : callable
        The order function (:mod:`.orders`).
    needs, any_of, uses : tuple of str
        Arrays it needs (all of ``needs``, at least one of ``any_of``) and uses when present.
    per_class : ClassUse
        Whether it ranks by one class.
    batch : bool
        Picks a batch of ``count`` rows rather than ranking every candidate.
    leaves_out : str
        Which candidates it cannot rank, if any (for messages).
    purpose : Purpose
        What it is for.
    online : bool
        Whether an online round may re-rank by it: a round re-ranks unlabeled rows, so an
        order that ranks labeled ones (disagreement) may not.
    aliases : tuple of str
        Other names accepted for it.
    neighbors : int
        The ``k`` nearest neighbours per row it reads (``"neighbors"``, N x k), 0 for none;
        a caller holding a kNN search may pass them instead of letting it search.
    """

    order: o.Order
    needs: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    per_class: ClassUse = ClassUse.NONE
    batch: bool = False
    leaves_out: str = ""
    purpose: Purpose = Purpose.GENERAL
    online: bool = True
    aliases: tuple[str, ...] = ()
    neighbors: int = 0

    def ready(self, arrays: Mapping[str, Any]) -> bool:
        """True when every needed array is present (not None) and nothing stops the order
        on these arrays (:meth:`obstacle`)."""
        have = {name for name, value in arrays.items() if value is not None}
        return (set(self.needs) <= have and (not self.any_of or bool(set(self.any_of) & have))
                and self.obstacle(arrays) is None)

    def obstacle(self, arrays: Mapping[str, Any]) -> str | None:
        """Why the order cannot run on ``arrays`` although they are present, or None. An
        order that searches the nearest neighbours of every row (``neighbors``) without
        given ``neighbors`` needs the features in memory (a kNN index holds every row):
        features read from storage (a memmap or Zarr array) larger than
        ``options.checks.IN_MEMORY_BYTES`` are refused."""
        features = arrays.get("features")
        if self.neighbors and arrays.get("neighbors") is None and \
                too_large_for_memory(features):
            return (f"it searches the {self.neighbors} nearest neighbours of every row, which "
                    f"needs the features in memory, and these are read from storage "
                    f"({type(features).__name__} of shape {tuple(features.shape)}) and larger "
                    "than IN_MEMORY_BYTES: choose another order, or pass 'neighbors'")
        return None


_PER_CLASS = {"per_class": ClassUse.REQUIRED}
ORDERS: dict[str, OrderInfo] = {
    "random": OrderInfo(o.random_order, aliases=("passive",)),
    "max entropy": OrderInfo(o.max_entropy, needs=("probs",), uses=("labels",),
                             aliases=("entropy",)),
    "least confidence": OrderInfo(o.least_confidence, needs=("probs",), uses=("labels",),
                                  aliases=("least_confidence",)),
    "margin": OrderInfo(o.margin, needs=("probs",), uses=("labels",)),
    "knn confidence": OrderInfo(o.knn_confidence, needs=("probs", "features"),
                                uses=("neighbors",), aliases=("knn_confidence",),
                                neighbors=o.KNN_CONFIDENCE_K),
    "maxent": OrderInfo(o.maxent, needs=("probs",), **_PER_CLASS),
    "highest": OrderInfo(o.highest, needs=("probs",), purpose=Purpose.POSITIVES, **_PER_CLASS),
    "lowest": OrderInfo(o.lowest, needs=("probs",), purpose=Purpose.NEGATIVES, **_PER_CLASS),
    "high": OrderInfo(o.high, needs=("probs",), purpose=Purpose.POSITIVES, **_PER_CLASS),
    "low": OrderInfo(o.low, needs=("probs",), purpose=Purpose.NEGATIVES, **_PER_CLASS),
    "badge": OrderInfo(o.badge_order, needs=("probs", "embeddings"), uses=("labels",),
                       per_class=ClassUse.OPTIONAL, batch=True),
    "diversity": OrderInfo(o.diversity_order, needs=("features",), batch=True),
    "coreset": OrderInfo(o.coreset_order, needs=("features",), uses=("labels",), batch=True),
    "propagation score": OrderInfo(o.propagation_score, needs=("propagation",),
                                   purpose=Purpose.POSITIVES, **_PER_CLASS),
    "disagreement": OrderInfo(o.disagreement, needs=("labels",), any_of=("probs", "propagation"),
                              uses=("heldout",),
                              per_class=ClassUse.OPTIONAL, purpose=Purpose.LABEL_ERRORS,
                              online=False,
                              leaves_out="it ranks labeled images, and unlabeled ones only once "
                                         "both model predictions and propagation scores exist"),
}

ALIASES: dict[str, str] = {alias: name for name, info in ORDERS.items()
                           for alias in info.aliases}


def canonical_order(name: Any) -> str:
    """The registry name of an order name or alias; ``ValueError`` for anything else."""
    if isinstance(name, str) and name in ORDERS:
        return name
    if isinstance(name, str) and name in ALIASES:
        return ALIASES[name]
    raise ValueError(f"unknown order {shown(name)}; {available_text()}")


def available_text() -> str:
    """The order names and aliases, for messages."""
    aliases = ", ".join(f"{a} = {n}" for a, n in ALIASES.items())
    return f"available: {', '.join(ORDERS)} (aliases: {aliases})"


def online_orders() -> list[str]:
    """The orders an online round may re-rank by, in registry order."""
    return [name for name, info in ORDERS.items() if info.online]


@dataclass(frozen=True)
class OrderChoice:
    """A menu entry: an order name, for per-class orders the class *name*, and the fraction
    of picks made at random instead."""

    name: str = "random"
    cls: str | None = None
    random_fraction: float = 0.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "name", canonical_order(self.name))
        except ValueError as e:
            raise ValueError(f"name: {e}") from None
        use = ORDERS[self.name].per_class
        if use is ClassUse.REQUIRED and not isinstance(self.cls, str):
            raise ValueError(f"order {self.name!r} needs a class name, got {self.cls!r}")
        if use is ClassUse.NONE and self.cls is not None:
            raise ValueError(f"order {self.name!r} takes no class, got {self.cls!r}")
        if self.cls is not None and not isinstance(self.cls, str):
            raise ValueError(f"a class name is a string, got {self.cls!r}")
        fraction = self.random_fraction
        if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                or not 0.0 <= fraction <= 1.0):
            raise ValueError(f"random_fraction must be a number in [0, 1], got {fraction!r}")

    @property
    def title(self) -> str:
        """Text for a menu, e.g. ``maxent: cat`` or ``margin + 20% random``."""
        title = f"{self.name}: {self.cls}" if self.cls is not None else self.name
        return f"{title} + {self.random_fraction:.0%} random" if self.random_fraction else title

    @property
    def purpose(self) -> str:
        """What the order is for, e.g. ``"general"`` or ``"find positives of cat"``."""
        return ORDERS[self.name].purpose.describe(self.cls)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cls": self.cls, "random_fraction": self.random_fraction,
                "title": self.title, "purpose": self.purpose}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> OrderChoice:
        """Build from ``{"name": ..., "cls": ..., "random_fraction": ...}`` (the widget's form)."""
        if not isinstance(value, Mapping) or "name" not in value:
            raise ValueError(f"an order is a mapping with a 'name' key, got {value!r}")
        unknown = set(value) - {"name", "cls", "random_fraction", "title", "purpose"}
        if unknown:
            raise ValueError(f"unknown order field(s) {sorted(unknown)}; allowed: name, cls, "
                             "random_fraction")
        return cls(value["name"], value.get("cls"), value.get("random_fraction", 0.0))

    @classmethod
    def parse(cls, value: str | OrderChoice | Mapping[str, Any]) -> OrderChoice:
        """A choice from a registry name, a choice, or its dict form."""
        if isinstance(value, OrderChoice):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, str):
            return cls(value)
        raise ValueError(f"an order is a name, an OrderChoice or a dict; got {value!r}")


def order_options(classes: Sequence[str], available: Iterable[str] | None = None
                  ) -> list[OrderChoice]:
    """Menu entries, in registry order, each per-class order once per class; only the
    ``available`` order names (e.g. from :func:`available_orders`) when given."""
    classes = check_names("classes", classes, allow_empty=True, what="class name")
    if available is not None:
        available = check_names("available", available, allow_empty=True, what="order")
    names = list(ORDERS) if available is None else [n for n in ORDERS if n in set(available)]
    options = []
    for name in names:
        use = ORDERS[name].per_class
        if use is not ClassUse.REQUIRED:
            options.append(OrderChoice(name))
        if use is not ClassUse.NONE:
            options += [OrderChoice(name, c) for c in classes]
    return options


# Every array an order reads, with the order's other keyword inputs: what ``rank`` and
# ``available_orders`` accept as keyword arguments.
ARRAY_NAMES = frozenset(
    {n for info in ORDERS.values() for n in (*info.needs, *info.any_of, *info.uses)}
    | {"cls", "output", "cache"}
)


def _order_inputs(where: str, arrays: Mapping[str, Any]) -> dict[str, Any]:
    """``arrays`` with the inputs' old names (``scores``: ``propagation``) taken as their new
    ones, with a ``DeprecationWarning``; ``TypeError`` for any name that is no order input."""
    arrays = dict(arrays)
    renamed = take_renamed(where, {"propagation": arrays.pop("propagation", None)}, arrays,
                           others=True, depth=1)
    if renamed["propagation"] is not None:
        arrays["propagation"] = renamed["propagation"]
    unknown = sorted(set(arrays) - ARRAY_NAMES)
    if unknown:
        raise TypeError(f"unknown keyword argument(s) {unknown}; the order inputs are "
                        f"{sorted(ARRAY_NAMES)}")
    return arrays


def available_orders(**arrays: Any) -> list[str]:
    """Names of the orders whose needed arrays are all present (not None)."""
    arrays = _order_inputs("available_orders", arrays)
    return [name for name, info in ORDERS.items() if info.ready(arrays)]


def mix_random(picks: np.ndarray, candidates: np.ndarray, n_random: int,
               rng: np.random.Generator) -> np.ndarray:
    """``picks`` with ``n_random`` other candidates drawn uniformly and spread among them at
    random positions (no duplicates)."""
    picks = np.asarray(picks, dtype=np.int64)
    rest = np.flatnonzero(np.asarray(candidates, dtype=bool))
    rest = rest[~np.isin(rest, picks)]
    extra = rng.choice(rest, size=min(n_random, len(rest)), replace=False).astype(np.int64)
    merged = np.concatenate([picks, extra])
    slots = np.sort(rng.choice(len(merged), size=len(extra), replace=False))
    out = np.empty_like(merged)
    is_extra = np.zeros(len(merged), dtype=bool)
    is_extra[slots] = True
    out[is_extra], out[~is_extra] = extra, picks
    return out


def _check_candidates(candidates: Any, arrays: Mapping[str, Any]) -> np.ndarray:
    """``candidates`` as a boolean row mask, as long as every row-wise array given."""
    mask = np.asarray(candidates) if not isinstance(candidates, str) else None
    if mask is None or mask.ndim != 1 or mask.dtype != bool:
        raise ValueError(f"candidates must be a 1-d boolean mask over the rows; got "
                         f"{shown(candidates)}")
    for name in ("probs", "features", "embeddings", "labels", "propagation"):
        value = arrays.get(name)
        if value is not None and np.shape(value)[0] != len(mask):
            raise ValueError(f"candidates has {len(mask)} rows but {name} has "
                             f"{np.shape(value)[0]}")
    return mask


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
    name may take ``cls`` (an index) among ``arrays`` instead. With a ``random_fraction``, that
    share of the ``count`` rows is drawn uniformly from the other candidates.
    """
    arrays = _order_inputs("rank", arrays)
    if isinstance(order, str):  # a bare name: any class comes as an index in ``arrays``
        name, fraction = canonical_order(order), 0.0
    else:
        choice = OrderChoice.parse(order)
        name, fraction = choice.name, choice.random_fraction
        if choice.cls is not None:
            if classes is None or choice.cls not in classes:
                raise ValueError(f"unknown class {choice.cls!r}; classes are "
                                 f"{None if classes is None else list(classes)}")
            arrays["cls"] = list(classes).index(choice.cls)
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); "
                         f"got {shown(rng)}")
    info = ORDERS[name]
    obstacle = info.obstacle(arrays)
    if obstacle is not None:
        raise ValueError(f"order {name!r} cannot run here: {obstacle}")
    candidates = _check_candidates(candidates, arrays)
    n_random = int(round(count * fraction))
    n_ranked = int(count) - n_random
    if n_ranked == 0:
        picks = np.empty(0, dtype=np.int64)
    else:  # every order may use ``count``: batch orders pick that many, others stop sorting there
        picks = info.order(candidates, rng=rng, **dict(arrays, count=n_ranked))[:n_ranked]
    return mix_random(picks, candidates, n_random, rng) if n_random else picks
