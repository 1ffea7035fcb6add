"""The options of online active learning (A6): how often rounds run, the order the queue is
re-ranked by, where its rows come from, when it stops (TF-free; the loop itself is
:mod:`patchwork_widget.session.online`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.options.checks import check_int, check_number
from patchwork_widget.options.training import TrainOptions

__all__ = ["OnlineOptions", "StopRule"]


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
        The order the unlabeled part of the queue is re-ranked by after each round.
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
    order: Any = "max entropy"
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
