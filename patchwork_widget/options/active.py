"""How the class list changes (FEATURES L3; TF-free): a class edit, validated when it is
made, with a message naming the bad value and the allowed ones.

The choices about what to label next live beside the code that applies them, one layer up:
subsets (A1) in :mod:`patchwork_widget.active.subsets`, orders (A2) in
:mod:`patchwork_widget.active.registry`, the propagation method (A4) in
:mod:`patchwork_widget.active.propagate`, online learning's options (A6) in
:mod:`patchwork_widget.active.online`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchwork_widget.options.checks import Choice

__all__ = ["ClassEdit", "ClassEditKind"]


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
