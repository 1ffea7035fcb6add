"""Argument limits declared once, as data (TF-free).

An options dataclass lists what each of its fields may hold in a class attribute
``CONSTRAINTS`` (field name -> :class:`Param`), as scikit-learn's ``_param_validation`` does for
estimators: an :class:`Interval` for numbers, a :class:`OneOf` for a
:class:`~patchwork_widget.options.checks.Choice`, :class:`Flag`, :class:`Shape`, :class:`Text`,
:class:`AugmentSpec`, :class:`InstanceOf` (a nested options dataclass), :class:`Parsed` (a value
its owner parses, such as an order), :class:`Checked` (a value a ``check_*`` function takes)
and :class:`AnyOf`. The same declaration is read by

- the dataclass itself: :func:`validate` (called first thing in ``__post_init__``) checks every
  field against it and stores the parsed value (a Choice member for a string, a tuple for a
  shape), with the message of :mod:`patchwork_widget.options.checks` naming the field, the
  value and what is allowed;
- the widget's forms: :func:`form_bounds` gives the ``min`` / ``max`` of a bounded text box, so
  the Train tab and a script accept the same values;
- the API sweep (``tests/unit/test_api_sweep.py``): :meth:`Param.invalid` gives values each
  field must refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from patchwork_widget.options.checks import Choice, check_bool, check_int, check_number, check_shape, shown

__all__ = ["AnyOf", "AugmentSpec", "Checked", "Constraint", "Flag", "InstanceOf", "Interval",
           "OneOf", "Param", "Parsed", "Shape", "Text", "form_bounds", "validate"]


class Constraint(Protocol):
    """What one kind of declaration does."""

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        """``value`` parsed, or ``ValueError`` naming ``name``, the value and what is allowed."""

    def invalid(self) -> list[Any]:
        """Values this constraint refuses (for the API sweep)."""


_CLOSED = ("both", "left", "right", "neither")


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]``; ``closed`` says which ends belong to it.

    Parameters
    ----------
    kind : type
        ``int`` (an integral number, booleans refused) or ``float`` (any finite real number).
    low, high : float
        The ends; ``-inf`` / ``inf`` for none.
    closed : {"both", "left", "right", "neither"}
    """

    kind: type
    low: float = -math.inf
    high: float = math.inf
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise ValueError(f"Interval kind must be int or float; got {self.kind!r}")
        if self.closed not in _CLOSED:
            raise ValueError(f"Interval closed must be one of {_CLOSED}; got {self.closed!r}")
        if self.kind is int and (self.closed != "both" or math.isinf(self.low)):
            raise ValueError("an int Interval is closed and has a lower end")

    @property
    def open_low(self) -> bool:
        return self.closed in ("right", "neither")

    @property
    def open_high(self) -> bool:
        return self.closed in ("left", "neither")

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if self.kind is int:
            return check_int(name, value, int(self.low), allow_none=allow_none,
                             high=None if math.isinf(self.high) else int(self.high))
        if allow_none and value is None:
            return None
        return check_number(name, value, self.low, self.high, self.open_low, self.open_high)

    def invalid(self) -> list[Any]:
        out: list[Any] = ["1", True, math.nan]
        if self.kind is int:
            out += [1.5, int(self.low) - 1]
            if not math.isinf(self.high):
                out.append(int(self.high) + 1)
            return out
        out.append(math.inf)
        if not math.isinf(self.low):
            out.append(self.low if self.open_low else self.low - max(1.0, abs(self.low)))
        if not math.isinf(self.high):
            out.append(self.high if self.open_high else self.high + max(1.0, abs(self.high)))
        return out


@dataclass(frozen=True)
class OneOf:
    """One value of a :class:`Choice` enum (or one of its aliases)."""

    choice: type[Choice]

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        return self.choice.parse(value, name)

    def invalid(self) -> list[Any]:
        return [3, "no such " + self.choice.__name__.lower(), ["a"]]


@dataclass(frozen=True)
class Flag:
    """True or False."""

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        if allow_none and not isinstance(value, bool):
            raise ValueError(f"{name} must be True, False or None; got {value!r}")
        return check_bool(name, value)

    def invalid(self) -> list[Any]:
        return ["yes", 2, 1.5]


@dataclass(frozen=True)
class Shape:
    """A (height, width) of ints in ``[1, max_side]``."""

    max_side: int = 16384

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        shape = check_shape(name, value)
        if max(shape) > self.max_side:
            raise ValueError(f"{name} must be (height, width) of at most {self.max_side} pixels "
                             f"each; got {shown(value)}")
        return shape

    def invalid(self) -> list[Any]:
        return [(0, 8), (8,), "64", 64, (8.5, 8), (-1, 8), (8, 8, 8), (8, self.max_side + 1)]


@dataclass(frozen=True)
class Text:
    """A string, of at most ``max_length`` characters (``nonempty``: at least one); ``what``
    names it in messages (``"name"``: "a non-empty name")."""

    max_length: int = 100_000
    nonempty: bool = False
    what: str = "string"

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        if not isinstance(value, str) or (self.nonempty and not value) or \
                len(value) > self.max_length:
            least = f"a non-empty {self.what}" if self.nonempty else f"a {self.what}"
            raise ValueError(f"{name} must be {least} of at most {self.max_length} characters; "
                             f"got {shown(value)}")
        return value

    def invalid(self) -> list[Any]:
        return [3, ["a"], 1.5, "x" * (self.max_length + 1)] + ([""] if self.nonempty else [])


@dataclass(frozen=True)
class AugmentSpec:
    """``augment``: True, False or a dict of the augmentation vocabulary
    (:func:`patchwork_widget.options.augment.validate_augment`)."""

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        from patchwork_widget.options.augment import validate_augment

        if allow_none and value is None:
            return None
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be True, False or a dict of augmentation parameters; "
                             f"got {shown(value)}")
        try:
            validate_augment(value)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        return value

    def invalid(self) -> list[Any]:
        return ["yes", 1, {"flipp": True}, {"zoom_scale": 2.0}]


@dataclass(frozen=True)
class InstanceOf:
    """An instance of ``cls`` (an options dataclass); a dict of its fields is turned into one
    when ``cls`` has ``from_dict``."""

    cls: type

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        if isinstance(value, self.cls):
            return value
        if isinstance(value, Mapping) and hasattr(self.cls, "from_dict"):
            return self.cls.from_dict(value)
        raise ValueError(f"{name} must be a {self.cls.__name__} or a dict of its fields; "
                         f"got {shown(value)}")

    def invalid(self) -> list[Any]:
        return [3, "x", {"no_such_field": 1}]


@dataclass(frozen=True)
class Parsed:
    """A value ``parse(value)`` turns into the stored one, raising ``ValueError`` when it
    cannot (an order name, a subset, ...); ``bad`` lists values it refuses, for the sweep."""

    parse: Callable[[Any], Any]
    bad: tuple[Any, ...] = (3, ["a"])

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        try:
            return self.parse(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from None

    def invalid(self) -> list[Any]:
        return list(self.bad)


@dataclass(frozen=True)
class Checked:
    """A value ``check(name, value)`` accepts (one of the ``check_*`` functions of
    :mod:`patchwork_widget.options.checks`, whose messages name the argument), stored as it
    returns it; ``bad`` lists values it refuses, for the sweep."""

    check_fn: Callable[[str, Any], Any]
    bad: tuple[Any, ...] = (3, ["a"])

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        return self.check_fn(name, value)

    def invalid(self) -> list[Any]:
        return list(self.bad)


@dataclass(frozen=True)
class AnyOf:
    """A value any of ``constraints`` accepts; ``what`` says what that is in messages."""

    constraints: tuple[Constraint, ...]
    what: str

    def check(self, name: str, value: Any, allow_none: bool) -> Any:
        if allow_none and value is None:
            return None
        for constraint in self.constraints:
            try:
                return constraint.check(name, value, False)
            except ValueError:
                continue
        raise ValueError(f"{name} must be {self.what}; got {shown(value)}")

    def invalid(self) -> list[Any]:
        return [3, ["a"], 1.5]


@dataclass(frozen=True)
class Param:
    """One field's declaration: its constraint, whether None is allowed, and other values
    taken as they are (``also``, e.g. -1 for "let tf.data choose")."""

    constraint: Constraint
    none: bool = False
    also: tuple[Any, ...] = ()

    def check(self, name: str, value: Any) -> Any:
        if any(value is v or (type(value) is type(v) and value == v) for v in self.also):
            return value
        try:
            return self.constraint.check(name, value, self.none)
        except ValueError as e:
            if not self.also:
                raise
            raise ValueError(f"{e} (also allowed: {', '.join(map(repr, self.also))})") from None

    def invalid(self) -> list[Any]:
        """Values the field refuses: the constraint's, and None unless it is allowed."""
        bad = [v for v in self.constraint.invalid() if v not in self.also]
        return bad if self.none else [*bad, None]


def validate(obj: Any, prefix: str = "") -> None:
    """Check every field of dataclass ``obj`` against ``type(obj).CONSTRAINTS`` and store the
    parsed values (the dataclass may be frozen). ``prefix`` starts each message (e.g.
    ``"fixmatch "``)."""
    declared: Mapping[str, Param] = type(obj).CONSTRAINTS
    for f in fields(obj):
        param = declared[f.name]
        value = param.check(prefix + f.name, getattr(obj, f.name))
        object.__setattr__(obj, f.name, value)


def form_bounds(cls: Any, name: str, step: float = 0.0) -> dict[str, float]:
    """``{"min": ..., "max": ...}`` of field ``name`` of ``cls`` for a bounded form field; an
    open end moves inwards by ``step``, and an unbounded end becomes a large finite number."""
    constraint = cls.CONSTRAINTS[name].constraint
    if not isinstance(constraint, Interval):
        raise ValueError(f"{cls.__name__}.{name} is not declared as a number interval")
    low = constraint.low + (step if constraint.open_low else 0)
    high = constraint.high - (step if constraint.open_high else 0)
    big = float(np.finfo(np.float32).max)
    low, high = max(low, -big), min(high, big)
    if constraint.kind is int:
        return {"min": int(low), "max": int(high)}
    return {"min": float(low), "max": float(high)}

