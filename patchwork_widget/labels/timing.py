"""Annotation-time accounting from a store's history (FEATURES L6).

Rules:

- Only ``annotate`` calls carry time: the ``seconds`` the image(s) were on screen.
- A call's seconds are split equally over its cell events (rows x fields), so a call
  that sets three classes on one image gives the image all its seconds and each class
  a third; a call on five selected images gives each image a fifth. Sums over images,
  over fields or over sessions therefore all add up to the same total.
- A *label* is a cell event of an ``annotate`` call on a class (not a flag) whose new
  value is 0 or 1 and differs from the old value, in a call not later undone.
- Labels per minute = labels / (seconds / 60), with the seconds of every annotate call
  (undone calls and calls that changed nothing included: that time was spent). NaN when
  no seconds were recorded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import FLAGS


def _annotations(history: pd.DataFrame) -> pd.DataFrame:
    """Annotate events with their share of seconds and whether each is a label."""
    events = history[history["kind"] == "annotate"].copy()
    per_action = events.groupby("action")["action"].transform("size")
    events["share"] = events["seconds"].fillna(0.0) / per_action
    new, old = events["new"], events["old"]
    changed = (new != old) & new.isin([0.0, 1.0])
    events["label"] = changed & ~events["field"].isin(FLAGS) & ~events["undone"]
    return events


def _per_minute(labels: pd.Series | float, seconds: pd.Series | float) -> pd.Series | float:
    minutes = np.asarray(seconds, dtype=float) / 60.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(minutes > 0, np.asarray(labels, dtype=float) / minutes, np.nan)
    return pd.Series(rate, index=labels.index) if isinstance(labels, pd.Series) else float(rate)


def time_per_image(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds spent on each image.

    Returns
    -------
    pandas.DataFrame
        Index ``row``; columns ``seconds`` (float) and ``annotations`` (number of
        annotate calls that touched the row).
    """
    events = _annotations(history)
    grouped = events.groupby("row")
    return pd.DataFrame(
        {"seconds": grouped["share"].sum(), "annotations": grouped["action"].nunique()}
    )


def time_per_class(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds and labels per field (classes, and the ``exclude`` / ``validation`` flags).

    Returns
    -------
    pandas.DataFrame
        Index ``field``; columns ``seconds`` (float) and ``labels`` (int).
    """
    events = _annotations(history)
    grouped = events.groupby("field")
    return pd.DataFrame({"seconds": grouped["share"].sum(), "labels": grouped["label"].sum()})


def time_per_session(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds, labels and labels per minute per session.

    Returns
    -------
    pandas.DataFrame
        Index ``session``; columns ``user``, ``start`` and ``end`` (UTC time of the first
        and last annotate call), ``seconds``, ``annotations`` (calls), ``labels`` and
        ``labels_per_minute``.
    """
    events = _annotations(history)
    grouped = events.groupby("session")
    out = pd.DataFrame(
        {
            "user": grouped["user"].first(),
            "start": grouped["time"].min(),
            "end": grouped["time"].max(),
            "seconds": grouped["share"].sum(),
            "annotations": grouped["action"].nunique(),
            "labels": grouped["label"].sum(),
        }
    )
    out["labels_per_minute"] = _per_minute(out["labels"], out["seconds"])
    return out


def time_per_annotator(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds, labels and labels per minute per annotator (``user``), e.g. on a team
    journal.

    Returns
    -------
    pandas.DataFrame
        Index ``user``; columns ``sessions``, ``seconds``, ``annotations`` (calls),
        ``labels`` and ``labels_per_minute``.
    """
    events = _annotations(history)
    grouped = events.groupby("user")
    out = pd.DataFrame(
        {
            "sessions": grouped["session"].nunique(),
            "seconds": grouped["share"].sum(),
            "annotations": grouped["action"].nunique(),
            "labels": grouped["label"].sum(),
        }
    )
    out["labels_per_minute"] = _per_minute(out["labels"], out["seconds"])
    return out


def labels_per_minute(history: pd.DataFrame) -> float:
    """Labels per minute of recorded screen time over the whole history (NaN if none)."""
    events = _annotations(history)
    return _per_minute(int(events["label"].sum()), float(events["share"].sum()))
