"""The options of online active learning (A6): how often rounds run, the order the queue is
re-ranked by, where its rows come from, when it stops (TF-free; the loop itself is
:mod:`patchwork_widget.session.online`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from patchwork_widget.active.registry import ORDERS, OrderChoice, online_orders
from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.options.checks import check_fields, check_number
from patchwork_widget.options.params import Flag, InstanceOf, Interval, Param, Parsed, validate
from patchwork_widget.options.training import TrainOptions

__all__ = ["OnlineOptions", "StopRule"]


def _auc_thresholds(value: Any) -> dict[str, float]:
    """``class_auc``: class name -> AUC threshold in [0, 1]."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must map class names to AUC thresholds; got {value!r}")
    for name, threshold in value.items():
        check_number(f"class_auc[{name!r}]", threshold, 0.0, 1.0)
    return dict(value)


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

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "macro_auc": Param(Interval(float, 0.0, 1.0), none=True),
        "class_auc": Param(Parsed(_auc_thresholds, bad=(3, "cat", {"cat": 1.5}))),
        "all_labeled": Param(Flag()),
    }

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StopRule:
        check_fields(cls, d, "stop rule")
        return cls(**d)


@dataclass(frozen=True)
class OnlineOptions:
    """How online active learning (A6) runs.

    Attributes
    ----------
    every : int
        Start a training round after this many newly labeled images (an image counts once
        however many of its classes were set; before this was counted in class cells).
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
    holdout : float
        When no validation row holds a label, the share of the labeled training images each
        round holds out as validation rows (chosen by a fixed hash of the row, so the same
        images every round; the table is not changed), so the rounds have validation figures
        and the AUC stop rules can fire. 0 turns it off (the figures are then missing). At most
        0.5.
    """

    every: int = 20
    order: Any = "badge"
    explore: float = 0.2
    count: int = 50
    subset: Any = field(default_factory=lambda: Subset(SubsetKind.UNLABELED))
    train: Any = field(default_factory=TrainOptions)
    stop: Any = field(default_factory=StopRule)
    holdout: float = 0.2

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "every": Param(Interval(int, 1, 100_000)),
        "order": Param(Parsed(OrderChoice.parse, bad=(3, "no such order", ["random"]))),
        "explore": Param(Interval(float, 0.0, 1.0)),
        "count": Param(Interval(int, 1, 100_000)),
        "subset": Param(Parsed(lambda v: v if isinstance(v, Subset) else Subset.from_dict(v),
                               bad=(3, "unlabeled", {"kind": "nope"}))),
        "train": Param(InstanceOf(TrainOptions)),
        "stop": Param(InstanceOf(StopRule)),
        "holdout": Param(Interval(float, 0.0, 0.5)),
    }

    def __post_init__(self) -> None:
        validate(self)
        base = self.order
        if not ORDERS[base.name].online:
            raise ValueError(f"order: {base.name!r} cannot re-rank an online round (a round "
                             f"re-ranks unlabeled images); online orders: "
                             f"{', '.join(online_orders())}")
        object.__setattr__(self, "order", OrderChoice(base.name, base.cls, float(self.explore)))
