"""Shared check of the options dataclasses' ``from_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_fields(cls: type, values: Mapping[str, Any], what: str, hint: str = "") -> None:
    """Raise ``ValueError`` naming any key of ``values`` that is not a field of ``cls``."""
    unknown = set(values) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; valid: "
                         f"{sorted(cls.__dataclass_fields__)}{hint}")
