"""The building blocks of every options module (TF-free): a choice enum with its dropdown
pairs, and the checks that name the bad value and what is allowed."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

C = TypeVar("C", bound="Choice")

__all__ = ["Choice", "check_fields", "check_int", "check_number", "plain"]


class Choice(str, enum.Enum):
    """A user choice: a string enum whose members compare equal to their values.

    ``parse`` turns a value or member into a member or raises ``ValueError`` listing the allowed
    values; ``choices()`` gives ``(label, value)`` pairs for a dropdown. A subclass may give
    human labels in ``_labels()``; the default label is the value with spaces for underscores.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {}

    @property
    def label(self) -> str:
        return self._labels().get(self.value, str(self.value).replace("_", " "))

    @classmethod
    def values(cls) -> List[str]:
        return [m.value for m in cls]

    @classmethod
    def choices(cls) -> List[Tuple[str, str]]:
        """``(label, value)`` pairs in definition order, e.g. for ``ipywidgets.Dropdown``."""
        return [(m.label, m.value) for m in cls]

    @classmethod
    def parse(cls: Type[C], value: Any, name: Optional[str] = None) -> C:
        """The member for ``value`` (a member or its string value)."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(v) for v in cls.values())
            raise ValueError(f"{name or cls.__name__.lower()} must be one of {allowed}; "
                             f"got {value!r}") from None


def check_int(name: str, value: Any, low: int, allow_none: bool = False) -> Optional[int]:
    """``value`` as an int, or ``ValueError`` unless it is an int >= ``low`` (or None when
    allowed). Booleans are refused."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {low}{extra}; got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf,
                 open_low: bool = False, open_high: bool = False,
                 allow_none: bool = False) -> Optional[float]:
    """``value`` as a float, or ``ValueError`` unless it is a finite number in the interval
    (NaN and infinities are always refused; booleans too)."""
    if allow_none and value is None:
        return None
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value)
          and (value > low if open_low else value >= low)
          and (value < high if open_high else value <= high))
    if not ok:
        if high == math.inf:
            interval = f"{'>' if open_low else '>='} {low:g}"
        else:
            interval = (f"in {'(' if open_low else '['}{low:g}, {high:g}"
                        f"{')' if open_high else ']'}")
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a finite number {interval}{extra}; got {value!r}")
    return float(value)


def check_fields(cls: type, values: Mapping[str, Any], what: str, hint: str = "") -> None:
    """Raise ``ValueError`` naming any key of ``values`` that is not a field of dataclass
    ``cls``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{what} options must be a {cls.__name__} or a dict of its fields; "
                         f"got {type(values).__name__}")
    unknown = set(values) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; valid: "
                         f"{sorted(cls.__dataclass_fields__)}{hint}")  # type: ignore[attr-defined]


def plain(value: Any) -> Any:
    """``value`` with every :class:`Choice` replaced by its string, inside dicts too (for
    JSON and ``as_dict``)."""
    if isinstance(value, Choice):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
