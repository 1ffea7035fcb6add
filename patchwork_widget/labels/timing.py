"""Annotation-time accounting from a store's history (FEATURES L6).

Rules:

- Only ``annotate`` calls carry time: the ``seconds`` the image(s) were on screen.
- A call's seconds are split equally over its cell events (rows x fields), so a call
  that sets three classes on one image gives the image all its seconds and each class
  a third; a call on five selected images gives each image a fifth. Sums over images,
  over fields or over sessions therefore all add up to the same total.
- A *cell* (one class entry of one image) is a cell event of an ``annotate`` call on a class
  (not a flag) whose new value is 0 or 1 and differs from the old value, in a call not later
  undone. With 11 classes, one image labeled by ``0`` ("no" for every class) is 11 cells.
- An *image* labeled is a row of an ``annotate`` call that gave it at least one cell; an image
  labeled again in a later call counts again (the work was done again). This is the pace
  people count in.
- Images (cells) per minute = images (cells) / (seconds / 60), with the seconds of every
  annotate call (undone calls and calls that changed nothing included: that time was spent).
  NaN when no seconds were recorded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .schema import FLAGS


def _annotations(history: pd.DataFrame) -> pd.DataFrame:
    """Annotate events with their share of seconds and whether each is a cell given."""
    events = history[history["kind"] == "annotate"].copy()
    per_action = events.groupby("action")["action"].transform("size")
    events["share"] = events["seconds"].fillna(0.0) / per_action
    new, old = events["new"], events["old"]
    changed = (new != old) & new.isin([0.0, 1.0])
    events["cell"] = changed & ~events["field"].isin(FLAGS) & ~events["undone"]
    return events


def _images(events: pd.DataFrame, by: str) -> pd.Series:
    """Images labeled per value of ``by``: (call, row) pairs with at least one cell."""
    labeled = events.loc[events["cell"]].drop_duplicates(["action", "row"])
    return labeled.groupby(by).size().reindex(events[by].unique(), fill_value=0)


def _per_minute(count: pd.Series | float, seconds: pd.Series | float) -> pd.Series | float:
    minutes = np.asarray(seconds, dtype=float) / 60.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(minutes > 0, np.asarray(count, dtype=float) / minutes, np.nan)
    return pd.Series(rate, index=count.index) if isinstance(count, pd.Series) else float(rate)


def _paced(events: pd.DataFrame, by: str, out: pd.DataFrame) -> pd.DataFrame:
    """``out`` (indexed by ``by``, with ``seconds``) plus ``images``, ``cells`` and their rates."""
    out["images"] = _images(events, by).astype(int)
    out["cells"] = events.groupby(by)["cell"].sum().astype(int)
    out["images_per_minute"] = _per_minute(out["images"], out["seconds"])
    out["cells_per_minute"] = _per_minute(out["cells"], out["seconds"])
    return out


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
    """Seconds and cells per field (classes, and the ``exclude`` / ``validation`` flags).

    Returns
    -------
    pandas.DataFrame
        Index ``field``; columns ``seconds`` (float) and ``cells`` (int: entries of that
        class given; 0 for the flags).
    """
    events = _annotations(history)
    grouped = events.groupby("field")
    return pd.DataFrame({"seconds": grouped["share"].sum(), "cells": grouped["cell"].sum()})


def time_per_session(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds, images and cells labeled, and their pace, per session.

    Returns
    -------
    pandas.DataFrame
        Index ``session``; columns ``user``, ``start`` and ``end`` (UTC time of the first
        and last annotate call), ``seconds``, ``annotations`` (calls), ``images``, ``cells``,
        ``images_per_minute`` and ``cells_per_minute``.
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
        }
    )
    return _paced(events, "session", out)


def time_per_annotator(history: pd.DataFrame) -> pd.DataFrame:
    """Seconds, images and cells labeled, and their pace, per annotator (``user``), e.g. on
    a team journal.

    Returns
    -------
    pandas.DataFrame
        Index ``user``; columns ``sessions``, ``seconds``, ``annotations`` (calls),
        ``images``, ``cells``, ``images_per_minute`` and ``cells_per_minute``.
    """
    events = _annotations(history)
    grouped = events.groupby("user")
    out = pd.DataFrame(
        {
            "sessions": grouped["session"].nunique(),
            "seconds": grouped["share"].sum(),
            "annotations": grouped["action"].nunique(),
        }
    )
    return _paced(events, "user", out)


def images_per_minute(history: pd.DataFrame) -> float:
    """Images labeled per minute of recorded screen time over the whole history (NaN if
    none)."""
    events = _annotations(history)
    images = len(events.loc[events["cell"]].drop_duplicates(["action", "row"]))
    return _per_minute(images, float(events["share"].sum()))


def cells_per_minute(history: pd.DataFrame) -> float:
    """Class cells given per minute of recorded screen time over the whole history (NaN if
    none)."""
    events = _annotations(history)
    return _per_minute(int(events["cell"].sum()), float(events["share"].sum()))


def labels_per_minute(history: pd.DataFrame) -> float:
    """Deprecated: the class cells per minute; use :func:`images_per_minute` (the pace people
    count in) or :func:`cells_per_minute`."""
    warnings.warn("labels_per_minute counts class cells (one per class of each image): use "
                  "images_per_minute, or cells_per_minute for the same figure",
                  DeprecationWarning, stacklevel=2)
    return cells_per_minute(history)
