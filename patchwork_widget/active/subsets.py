"""Subsets of the label table to sample from (FEATURES A1).

A subset is a structured value, never a string parsed by prefix, so a class called
``"contains: x"`` works like any other. Every subset except ``ALL`` and ``EXCLUDED`` leaves out
excluded rows: an excluded image has been seen and set aside, and should not come back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.labels.groups import excluded_mask, labeled_classes, validation_mask
from patchwork_widget.labels.schema import check_table
from patchwork_widget.options.checks import check_names, shown


class SubsetKind(str, enum.Enum):
    """Which rows a subset holds; the ``*_CLASS`` kinds need a class name."""

    ALL = "all"
    UNLABELED = "unlabeled"
    PARTIAL = "partial"
    FULLY_LABELED = "fully_labeled"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    UNLABELED_FOR = "unlabeled_for"
    VALIDATION = "validation"
    EXCLUDED = "excluded"
    UNREADABLE = "unreadable"
    DISAGREEMENTS = "disagreements"
    NEAR_DUPLICATES = "near_duplicates"

    @property
    def needs_class(self) -> bool:
        return self in (SubsetKind.CONTAINS, SubsetKind.NOT_CONTAINS, SubsetKind.UNLABELED_FOR)


_TITLES = {
    SubsetKind.ALL: "all images",
    SubsetKind.UNLABELED: "unlabeled",
    SubsetKind.PARTIAL: "partially labeled",
    SubsetKind.FULLY_LABELED: "fully labeled",
    SubsetKind.CONTAINS: "contains",
    SubsetKind.NOT_CONTAINS: "doesn't contain",
    SubsetKind.UNLABELED_FOR: "unlabeled for",
    SubsetKind.VALIDATION: "validation",
    SubsetKind.EXCLUDED: "excluded",
    SubsetKind.UNREADABLE: "unreadable images",
    SubsetKind.DISAGREEMENTS: "annotators disagree",
    SubsetKind.NEAR_DUPLICATES: "near-duplicates",
}


@dataclass(frozen=True)
class Subset:
    """A subset of rows: a kind and, for the per-class kinds, the class name."""

    kind: SubsetKind = SubsetKind.UNLABELED
    cls: str | None = None

    def __post_init__(self) -> None:
        try:
            kind = SubsetKind(self.kind)
        except ValueError:
            allowed = ", ".join(k.value for k in SubsetKind)
            raise ValueError(f"unknown subset kind {self.kind!r}; allowed: {allowed}") from None
        object.__setattr__(self, "kind", kind)
        if kind.needs_class and not isinstance(self.cls, str):
            raise ValueError(f"subset {kind.value!r} needs a class name, got {self.cls!r}")
        if not kind.needs_class and self.cls is not None:
            raise ValueError(f"subset {kind.value!r} takes no class, got {self.cls!r}")

    @property
    def title(self) -> str:
        """Text for a menu, e.g. ``contains: cat``."""
        base = _TITLES[self.kind]
        return f"{base}: {self.cls}" if self.cls is not None else base

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "cls": self.cls, "title": self.title}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Subset:
        """Build from ``{"kind": ..., "cls": ...}`` (the widget's message form)."""
        if not isinstance(value, Mapping) or "kind" not in value:
            raise ValueError(f"a subset is a mapping with a 'kind' key, got {value!r}")
        return cls(value["kind"], value.get("cls"))


def subset_options(classes: Sequence[str], features: bool = False) -> list[Subset]:
    """Every subset the table supports, in menu order; ``features``: whether the rows have
    features (the near-duplicates subset needs them)."""
    plain = [SubsetKind.UNLABELED, SubsetKind.PARTIAL, SubsetKind.FULLY_LABELED, SubsetKind.ALL]
    options = [Subset(kind) for kind in plain]
    for kind in (SubsetKind.UNLABELED_FOR, SubsetKind.CONTAINS, SubsetKind.NOT_CONTAINS):
        options += [Subset(kind, c) for c in classes]
    return options + [Subset(SubsetKind.VALIDATION), Subset(SubsetKind.EXCLUDED),
                      Subset(SubsetKind.UNREADABLE), Subset(SubsetKind.DISAGREEMENTS),
                      *([Subset(SubsetKind.NEAR_DUPLICATES)] if features else [])]


def subset_mask(df: pd.DataFrame, classes: Sequence[str], subset: Subset,
                labels: np.ndarray | None = None, unreadable: np.ndarray | None = None,
                disagreements: np.ndarray | None = None,
                duplicates: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask over the rows of ``df`` that belong to ``subset``; ``labels`` may give
    ``df[classes]`` as an N x C float array already at hand (saves a pass at 1M rows);
    ``unreadable`` marks the rows whose image could not be read (the ``unreadable`` subset);
    ``disagreements`` the rows where annotators' values differ for some class (the
    ``disagreements`` subset, from the label history: required for it); ``duplicates`` each
    row's near-duplicate group (-1: none; from :func:`~.duplicates.duplicate_group_ids`,
    required for the ``near_duplicates`` subset, which holds every row that is not excluded of
    each group that still has a row with a class unlabeled: the labeled ones come with it)."""
    check_table(df)
    classes = check_names("classes", classes, allow_empty=True, what="class name")
    missing = [c for c in classes if c not in df.columns]
    if missing:
        raise ValueError(f"classes: {missing} are not columns of df")
    if not isinstance(subset, Subset):
        raise TypeError(f"subset must be a Subset (see Subset.from_dict); got {shown(subset)}")
    excluded = excluded_mask(df)
    kind = subset.kind
    if kind is SubsetKind.DISAGREEMENTS:
        if disagreements is None:
            raise ValueError("the 'disagreements' subset needs the rows where annotators "
                             "disagree: pass disagreements= (see labels.disagreeing_rows)")
        return np.asarray(disagreements, dtype=bool) & ~excluded
    if kind is SubsetKind.NEAR_DUPLICATES:
        if duplicates is None:
            raise ValueError("the 'near_duplicates' subset needs each row's group: pass "
                             "duplicates= (see active.duplicates.duplicate_group_ids)")
        group = np.asarray(duplicates)
        if group.shape != (len(df),):
            raise ValueError(f"duplicates must hold one group id per row ({len(df)}); got shape "
                             f"{group.shape}")
        member = (group >= 0) & ~excluded
        values = labels if labels is not None else df[list(classes)].to_numpy(dtype=float)
        open_rows = member & np.isnan(values).any(axis=1)
        return member & np.isin(group, group[open_rows])
    if kind is SubsetKind.UNREADABLE:
        return np.zeros(len(df), dtype=bool) if unreadable is None else np.asarray(unreadable, bool).copy()
    if kind is SubsetKind.ALL:
        return np.ones(len(df), dtype=bool)
    if kind is SubsetKind.EXCLUDED:
        return excluded.copy()
    if kind is SubsetKind.VALIDATION:
        return validation_mask(df)
    if kind.needs_class:
        if subset.cls not in classes:
            raise ValueError(f"unknown class {subset.cls!r}; classes are {list(classes)}")
        values = df[subset.cls].to_numpy(dtype=float)
        if kind is SubsetKind.CONTAINS:
            inside = values == 1.0
        elif kind is SubsetKind.NOT_CONTAINS:
            inside = values == 0.0
        else:
            inside = np.isnan(values)
        return inside & ~excluded
    if labels is None:
        labeled = labeled_classes(df, list(classes))
        none, every = labeled == 0, labeled == len(classes)
    else:  # all / any of a boolean mask: no per-row count (a third of a sample at 1M rows)
        missing = np.isnan(labels)
        none = missing.all(axis=1)
        every = ~missing.any(axis=1) if kind is not SubsetKind.UNLABELED else None
    if kind is SubsetKind.UNLABELED:
        inside = none
    elif kind is SubsetKind.PARTIAL:
        inside = ~none & ~every
    else:
        inside = every
    return inside & ~excluded
