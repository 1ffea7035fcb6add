"""The building blocks of every options module (TF-free): a choice enum with its dropdown
pairs, and the checks that name the bad value and what is allowed."""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
import os
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

import numpy as np

C = TypeVar("C", bound="Choice")

__all__ = ["Choice", "check_array", "check_bool", "check_fields", "check_int", "check_names", "check_number",
           "check_path", "check_paths", "check_seed", "check_shape", "check_storage_options",
           "field_names", "plain", "shown"]


class Choice(str, enum.Enum):
    """A user choice: a string enum whose members compare equal to their values.

    ``parse`` turns a value or member into a member or raises ``ValueError`` listing the allowed
    values; ``choices()`` gives ``(label, value)`` pairs for a dropdown. A subclass may give
    human labels in ``_labels()``; the default label is the value with spaces for underscores.
    It may also give other spellings ``parse`` takes in ``_aliases()`` (e.g. Keras' or the
    original project's name of a value), so that no other module names them.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {}

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
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
        if isinstance(value, str) and value in cls._aliases():
            return cls(cls._aliases()[value])
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(v) for v in cls.values())
            aliases = ", ".join(repr(a) for a in cls._aliases())
            also = f" (also accepted: {aliases})" if aliases else ""
            raise ValueError(f"{name or cls.__name__.lower()} must be one of {allowed}; "
                             f"got {shown(value)}{also}") from None


def check_int(name: str, value: Any, low: int, allow_none: bool = False,
              high: int | None = None) -> Optional[int]:
    """``value`` as an int, or ``ValueError`` unless it is an int >= ``low`` (and <= ``high``
    when given; or None when allowed). Booleans are refused."""
    if allow_none and value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
            or (high is not None and value > high)):
        extra = " or None" if allow_none else ""
        what = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {what}{extra}; got {shown(value)}")
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


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool, or ``ValueError`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {shown(value)}")
    return bool(value)


def check_seed(name: str, value: Any) -> int | None:
    """A random seed: None or an int >= 0 (booleans refused)."""
    return check_int(name, value, 0, allow_none=True)


def check_shape(name: str, value: Any, lengths: tuple[int, ...] = (2,),
                what: str = "(height, width)") -> tuple[int, ...]:
    """``value`` as a tuple of positive ints whose length is one of ``lengths``."""
    ok = (isinstance(value, (tuple, list)) and len(value) in lengths
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                  for v in value))
    if not ok:
        raise ValueError(f"{name} must be {what}: positive ints; got {shown(value)}")
    return tuple(int(v) for v in value)


def check_path(name: str, value: Any, allow_none: bool = False) -> str | None:
    """``value`` as a path string, or ``ValueError`` unless it is a non-empty ``str`` or
    ``os.PathLike`` (or None when allowed)."""
    if allow_none and value is None:
        return None
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(path, str) or not path:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a non-empty path (str or os.PathLike){extra}; "
                         f"got {shown(value)}")
    return path


def check_paths(name: str, value: Any, allow_empty: bool = False) -> list[str]:
    """``value`` as a list of path strings (non-empty unless ``allow_empty``); a single string
    is refused (it would be read one character at a time)."""
    if isinstance(value, (str, bytes, os.PathLike)) or not _is_sequence(value):
        raise ValueError(f"{name} must be a list of paths, not {shown(value)}")
    paths = list(value)
    if not paths and not allow_empty:
        raise ValueError(f"{name} must hold at least one path; got an empty list")
    for i, path in enumerate(paths):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValueError(f"{name}[{i}] must be a non-empty path (str or os.PathLike); "
                             f"got {shown(path)}")
    return [os.fspath(p) for p in paths]


def check_storage_options(name: str, value: Any) -> dict[str, Any]:
    """``value`` as a dict of fsspec filesystem keyword arguments (str keys), for image URLs
    (``storage_options``: ``endpoint_url``, ``profile``, ``anon``, ...)."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must be a dict of fsspec filesystem options with str keys "
                         f"(e.g. {{'endpoint_url': 'http://...', 'anon': True}}) or None; "
                         f"got {shown(value)}")
    return dict(value)


def check_names(name: str, value: Any, allow_empty: bool = False,
                what: str = "name") -> list[str]:
    """``value`` as a list of distinct non-empty strings; a single string is refused. ``what``
    says what one item is in messages (e.g. ``"class name"``)."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a list of names, not the string {shown(value)}")
    if not _is_sequence(value):
        raise ValueError(f"{name} must be a list of names; got {shown(value)}")
    names = list(value)
    if not names and not allow_empty:
        noun = what.removesuffix(" name") or what
        raise ValueError(f"{name} must name at least one {noun}; got an empty list")
    seen: set = set()
    for item in names:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name} must hold non-empty strings; got {shown(item)}")
        if item in seen:
            raise ValueError(f"{name}: duplicate {what} {item!r}")
        seen.add(item)
    return names


def check_array(name: str, value: Any, ndim: int | tuple[int, ...], rows: int | None = None,
                low: float = -math.inf, high: float = math.inf, allow_nan: bool = False,
                values: tuple[float, ...] | None = None, finite: bool = True) -> np.ndarray:
    """``value`` as a numeric array of ``ndim`` dimensions (one of them, for a tuple) and
    ``rows`` rows when given. With ``finite`` (the default) its values must be finite (NaN
    allowed when ``allow_nan``: it means "missing") and in ``[low, high]`` (only ``values``
    when given), and a float array is returned as it is (others as float64); without
    ``finite``, an array (or memmap) is returned as it is, unscanned."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a numeric array; got {shown(value)}")
    arr = value if isinstance(value, np.ndarray) else None
    if arr is None or arr.dtype.kind not in "biuf":
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a numeric array; got {shown(value)}") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        want = " or ".join(f"{d}-d" for d in dims)
        raise ValueError(f"{name} must be a {want} array; got shape {arr.shape}")
    if rows is not None and len(arr) != rows:
        raise ValueError(f"{name} must have {rows} rows; got {len(arr)}")
    if not finite:
        return arr
    if arr.dtype.kind != "f":
        arr = arr.astype(float)
    bad = _count_nonfinite(arr, allow_nan)
    if bad:
        what = "infinite" if allow_nan else "NaN or infinite"
        raise ValueError(f"{name} must be finite; got {bad} {what} value(s)")
    if values is None and low == -math.inf and high == math.inf:
        return arr
    present = arr[~np.isnan(arr)]
    if values is not None:
        other = present[~np.isin(present, values)]
        if other.size:
            raise ValueError(f"{name} may hold only {list(values)}{' or NaN' * allow_nan}; got "
                             f"{other[0]:g}")
    elif present.size and (present.min() < low or present.max() > high):
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}]; got values from "
                         f"{present.min():g} to {present.max():g}")
    return arr


def is_out_of_core(features: Any) -> bool:
    """Whether ``features`` is read from storage rather than held in memory: a NumPy memmap,
    or an array-like that is not a NumPy array (a Zarr array, an h5py dataset...)."""
    if isinstance(features, np.memmap):
        return True
    return not isinstance(features, np.ndarray) and _array_like(features)


#: A feature array read from storage (:func:`is_out_of_core`) of at most this many bytes (as
#: float32) is read into memory where a step needs every row at once (a kNN index, BADGE
#: embeddings); a larger one is refused there (:func:`too_large_for_memory`).
IN_MEMORY_BYTES = 1 << 30


def too_large_for_memory(features: Any) -> bool:
    """Whether a step that holds every row of ``features`` in memory must refuse them: they
    are read from storage and larger than :data:`IN_MEMORY_BYTES` as float32."""
    if not is_out_of_core(features):
        return False
    return 4 * int(np.prod([int(s) for s in features.shape], dtype=np.int64)) > IN_MEMORY_BYTES


def _array_like(value: Any) -> bool:
    return (hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__getitem__")
            and not isinstance(value, (str, bytes)))


def check_features(name: str, value: Any, ndim: int | tuple[int, ...] = (2, 4),
                   rows: int | None = None, finite: bool = True) -> Any:
    """``value`` as a feature array of ``ndim`` dimensions and ``rows`` rows (when given).

    An in-memory array goes through :func:`~patchwork_widget.options.checks.check_array`
    (finite values checked when ``finite``); an out-of-core one (:func:`is_out_of_core`) is
    checked by its shape and numeric dtype only and returned as it is, never read whole.
    """
    if not is_out_of_core(value):
        return check_array(name, value, ndim, rows=rows, finite=finite)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    shape = tuple(int(s) for s in value.shape)
    try:
        kind = np.dtype(value.dtype).kind
    except TypeError:  # a dtype NumPy does not know (another library's tensor)
        kind = ""
    if kind not in "biuf" or not kind:
        raise ValueError(f"{name} must be a numeric array; got {type(value).__name__} of dtype "
                         f"{value.dtype}")
    if len(shape) not in dims:
        want = " or ".join(f"{d}-d" for d in dims)
        raise ValueError(f"{name} must be a {want} array; got shape {shape}")
    if rows is not None and shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows; got {shape[0]}")
    return value


def _count_nonfinite(arr: np.ndarray, allow_nan: bool, rows: int = 65536) -> int:
    """Infinite (and, unless ``allow_nan``, NaN) values of a float array, counted in chunks of
    rows so that a large array needs no full-size temporary."""
    if not arr.size:
        return 0
    flat = arr.reshape(len(arr), -1) if arr.ndim else arr.reshape(1, 1)
    count = 0
    for start in range(0, len(flat), rows):
        chunk = flat[start:start + rows]
        count += int(np.isinf(chunk).sum() if allow_nan else (~np.isfinite(chunk)).sum())
    return count


def _is_sequence(value: Any) -> bool:
    """Whether ``value`` is an iterable of items (a list, tuple, array, Series, generator...):
    not a string, bytes or a mapping."""
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))


def check_fields(cls: type, values: Mapping[str, Any], what: str, hint: str = "") -> None:
    """Raise ``ValueError`` naming any key of ``values`` that is not a field of dataclass
    ``cls``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{what} options must be a {cls.__name__} or a dict of its fields; "
                         f"got {type(values).__name__}")
    valid = field_names(cls)
    unknown = set(values) - valid
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; valid: "
                         f"{sorted(valid)}{hint}")


def field_names(cls: type) -> set[str]:
    """The fields of dataclass ``cls`` (not its class variables, such as ``CONSTRAINTS``)."""
    return {f.name for f in dataclasses.fields(cls)}


def plain(value: Any) -> Any:
    """``value`` with every :class:`Choice` replaced by its string, inside dicts too (for
    JSON and ``as_dict``)."""
    if isinstance(value, Choice):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
