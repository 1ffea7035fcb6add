"""Checks of the arguments of LabelStore calls: rows, changes, seconds, user."""

from __future__ import annotations

import getpass
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from patchwork_widget.options.checks import shown

from .schema import FLAGS, check_flag_value, check_label_value


#: Seconds on screen one annotate call may report at most (a day: more is a tab left open).
MAX_SECONDS = 86_400


def check_seconds(seconds: float | None) -> float | None:
    """``seconds`` on screen: None or a number >= 0 and under :data:`MAX_SECONDS` (as float)."""
    if seconds is None:
        return None
    if isinstance(seconds, (int, float, np.integer, np.floating)) and not isinstance(
        seconds, (bool, np.bool_)
    ):
        if 0 <= seconds < MAX_SECONDS:
            return float(seconds)
    raise ValueError(f"seconds must be None or a finite number >= 0 and under {MAX_SECONDS} "
                     f"(a day on screen); got {shown(seconds)}")


def check_rows(rows: Iterable[int], n: int, name: str = "rows") -> np.ndarray:
    """Distinct integer row labels in ``0 .. n - 1``, as an intp array; errors name the
    argument ``name``."""
    if isinstance(rows, (str, bytes, Mapping)) or not hasattr(rows, "__iter__"):
        raise ValueError(f"{name} must be a list of integer row labels; got {shown(rows)}")
    rows = list(rows)
    if not rows:
        raise ValueError(f"{name}: no rows given")
    for row in rows:
        if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
            raise ValueError(f"{name}: row {shown(row)} is not an integer row label")
        if not 0 <= row < n:
            raise ValueError(f"{name}: unknown row {row}; rows are 0 to {n - 1}")
    if len(set(rows)) != len(rows):
        raise ValueError(f"{name}: rows {shown(rows)} repeat a row")
    return np.array(rows, dtype=np.intp)


def check_changes(changes: Mapping[str, object], classes: list[str]) -> dict[str, float | bool]:
    """Field -> value, each field a class or flag and each value allowed for it."""
    if not isinstance(changes, Mapping) or not changes:
        raise ValueError(f"changes must be a non-empty mapping of field to value; got "
                         f"{shown(changes)}")
    checked: dict[str, float | bool] = {}
    for field, value in changes.items():
        if field in FLAGS:
            checked[field] = _named("changes", check_flag_value, field, value)
        elif field in classes:
            checked[field] = _named("changes", check_label_value, field, value)
        else:
            raise ValueError(f"changes: unknown field {field!r}; fields are "
                             f"{classes + list(FLAGS)}")
    return checked


def _named(name: str, check: Callable[..., Any], *args: object) -> Any:
    """``check(*args)``, its ``ValueError`` prefixed with the argument ``name``."""
    try:
        return check(*args)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def check_wait(wait: float) -> float:
    """``wait`` for another writer: a finite number of seconds >= 0."""
    if isinstance(wait, (int, float)) and not isinstance(wait, bool):
        if math.isfinite(wait) and wait >= 0:
            return float(wait)
    raise ValueError(f"wait must be a number of seconds >= 0; got {wait!r}")


def default_user() -> str:
    """The login name, or ``"unknown"``."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def is_server_url(journal: object) -> bool:
    """Whether ``journal`` (the ``journal`` argument of ``LabelStore.open``) names a server."""
    return isinstance(journal, str) and journal.startswith(("postgresql://", "postgres://"))


def check_project(project: object) -> str:
    """``project``: a non-empty name of at most 200 characters."""
    if isinstance(project, str) and project.strip() and len(project) <= 200:
        return project
    raise ValueError(
        f"project must be a non-empty name of at most 200 characters (a team journal "
        f"holds several projects); got {project!r}"
    )


def check_claim(n: object, lease: object, overlap: object) -> tuple[int, float, float]:
    """``claim``'s ``n`` (int >= 0), ``lease`` (seconds > 0) and ``overlap`` (0 to 1)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}")
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not (
        math.isfinite(lease) and lease > 0
    ):
        raise ValueError(f"lease must be a number of seconds > 0; got {lease!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not (
        0 <= overlap <= 1
    ):
        raise ValueError(f"overlap must be a fraction from 0 to 1; got {overlap!r}")
    return int(n), float(lease), float(overlap)
