"""Choices about what to label next and how the class list changes (TF-free).

Subsets (A1) and orders (A2) are defined beside the code that applies them and re-exported
here; class edits (L3) and the propagation method (A4) are defined here. Each is a value
validated when it is made, with a message naming the bad value and the allowed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from patchwork_widget.active.propagate import Method as PropagationMethod
from patchwork_widget.active.registry import ORDERS, OrderChoice, online_orders
from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.options.checks import Choice, check_int, check_number
from patchwork_widget.options.training import TrainOptions

__all__ = ["ClassEdit", "ClassEditKind", "OnlineOptions", "OrderChoice", "PropagationMethod",
           "StopRule", "Subset", "SubsetKind"]


class ClassEditKind(Choice):
    """A change of the class list (FEATURES L3)."""

    ADD = "add"
    RENAME = "rename"
    REMOVE = "remove"
    MERGE = "merge"


@dataclass(frozen=True)
class ClassEdit:
    """One class edit: ``add`` / ``remove`` take ``name``; ``rename`` renames ``name`` to
    ``new``; ``merge`` merges ``name`` and ``other`` into ``new`` (default ``name``)."""

    kind: ClassEditKind
    name: str
    new: str | None = None
    other: str | None = None

    def __post_init__(self) -> None:
        kind = ClassEditKind.parse(self.kind, "class edit kind")
        object.__setattr__(self, "kind", kind)
        for field, value in (("name", self.name), ("new", self.new), ("other", self.other)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"class edit {field} must be a class name (str); got {value!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"class edit name must be a class name (str); got {self.name!r}")
        if kind is ClassEditKind.RENAME and self.new is None:
            raise ValueError("a rename needs the new name: ClassEdit('rename', old, new=...)")
        if kind is ClassEditKind.MERGE and self.other is None:
            raise ValueError("a merge needs the second class: ClassEdit('merge', a, other=b)")
        if kind in (ClassEditKind.ADD, ClassEditKind.REMOVE) and (self.new or self.other):
            raise ValueError(f"class edit {kind.value!r} takes only a name")

    @property
    def result(self) -> str | None:
        """The class this edit leaves behind (None for a removal)."""
        return None if self.kind is ClassEditKind.REMOVE else self.new or self.name

    def column_map(self) -> dict[str, str | None]:
        """How columns of an array computed before this edit carry over: old class -> its new
        name, or None when the old values no longer mean anything for the new class list."""
        if self.kind is ClassEditKind.RENAME:
            return {self.name: self.new}
        if self.kind is ClassEditKind.REMOVE:
            return {self.name: None}
        if self.kind is ClassEditKind.MERGE:
            return {self.name: None, str(self.other): None}
        return {}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ClassEdit:
        """From the widget's message form ``{"kind": ..., "name": ..., "new": ..., "other": ...}``."""
        if not isinstance(value, Mapping) or "kind" not in value or "name" not in value:
            raise ValueError(f"a class edit is a mapping with 'kind' and 'name'; got {value!r}")
        unknown = set(value) - {"kind", "name", "new", "other"}
        if unknown:
            raise ValueError(f"unknown class edit field(s) {sorted(unknown)}; allowed: kind, "
                             "name, new, other")
        return cls(value["kind"], value["name"], value.get("new"), value.get("other"))


@dataclass(frozen=True)
class StopRule:
    """When online learning stops by itself (besides the user's stop).

    Attributes
    ----------
    macro_auc : float or None
        Stop once the validation macro AUC of a round reaches this.
    class_auc : mapping of class name to float
        Stop once every listed class's validation AUC reaches its threshold.
    all_labeled : bool
        Stop when the subset has no unlabeled row left.
    """

    macro_auc: float | None = None
    class_auc: Mapping[str, float] = field(default_factory=dict)
    all_labeled: bool = True

    def __post_init__(self) -> None:
        check_number("macro_auc", self.macro_auc, 0.0, 1.0, allow_none=True)
        if not isinstance(self.class_auc, Mapping):
            raise ValueError(f"class_auc must map class names to AUC thresholds; got "
                             f"{self.class_auc!r}")
        for name, value in self.class_auc.items():
            check_number(f"class_auc[{name!r}]", value, 0.0, 1.0)
        object.__setattr__(self, "class_auc", dict(self.class_auc))
        if not isinstance(self.all_labeled, bool):
            raise ValueError(f"all_labeled must be True or False; got {self.all_labeled!r}")


@dataclass(frozen=True)
class OnlineOptions:
    """How online active learning (A6) runs.

    Attributes
    ----------
    every : int
        Start a training round after this many new labels.
    order : OrderChoice or str or dict
        The order the unlabeled part of the queue is re-ranked by after each round: an online
        order of the registry (``registry.online_orders()``). The default, BADGE with
        ``explore=0.2``, was chosen by measurement (docs/active_learning.md, "Choosing the
        default order").
    explore : float
        Share of each re-ranked batch drawn at random from the subset instead (exploration).
    count : int
        Rows in the re-ranked part of the queue.
    subset : Subset or dict
        Where re-ranked rows come from (only its unlabeled rows are used).
    train : TrainOptions or dict
        Settings of each round; the model is warm-started from the previous round.
    stop : StopRule or dict
        When to stop by itself.
    """

    every: int = 20
    order: Any = "badge"
    explore: float = 0.2
    count: int = 50
    subset: Any = field(default_factory=lambda: Subset(SubsetKind.UNLABELED))
    train: Any = field(default_factory=TrainOptions)
    stop: Any = field(default_factory=StopRule)

    def __post_init__(self) -> None:
        check_int("every", self.every, 1)
        check_int("count", self.count, 1)
        check_number("explore", self.explore, 0.0, 1.0)
        base = OrderChoice.parse(self.order)
        if not ORDERS[base.name].online:
            raise ValueError(f"order: {base.name!r} cannot re-rank an online round (a round "
                             f"re-ranks unlabeled images); online orders: "
                             f"{', '.join(online_orders())}")
        object.__setattr__(self, "order", OrderChoice(base.name, base.cls, float(self.explore)))
        if not isinstance(self.subset, Subset):
            object.__setattr__(self, "subset", Subset.from_dict(self.subset))
        if isinstance(self.train, Mapping):
            object.__setattr__(self, "train", TrainOptions.from_dict(self.train))
        elif not isinstance(self.train, TrainOptions):
            raise ValueError(f"train must be TrainOptions or a dict of its fields; got {self.train!r}")
        if isinstance(self.stop, Mapping):
            object.__setattr__(self, "stop", StopRule(**self.stop))
        elif not isinstance(self.stop, StopRule):
            raise ValueError(f"stop must be a StopRule or a dict of its fields; got {self.stop!r}")
