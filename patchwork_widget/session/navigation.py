"""Getting around a labeling project: the full-resolution view of one image, progress, jumping
to an image by file name, and "more like this" (its nearest neighbours in feature space).

Functions of a :class:`~patchwork_widget.session.Session`, called on its owner thread (the
widget's requests, or a script). What they keep between calls (file names, feature norms) is
held per session here, computed once.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patchwork_widget.active.neighbors import pooled_float32
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask
from patchwork_widget.images.thumbnails import FULL_MAX_SIDE, FullImage, encode_full

if TYPE_CHECKING:
    from patchwork_widget.session.core import Session

MAX_MATCHES_LISTED = 5  # file names quoted in the message of an ambiguous jump
SEARCH_CHUNK_ROWS = 65_536  # feature rows per matrix product of "more like this"

_names: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()
_norms: weakref.WeakKeyDictionary[Any, tuple[int, np.ndarray]] = weakref.WeakKeyDictionary()


def _check_row(session: Session, row: Any) -> int:
    n = len(session.df)
    if isinstance(row, bool) or not isinstance(row, numbers.Integral) or not 0 <= row < n:
        raise ValueError(f"row must be an integer 0..{n - 1}, got {row!r}")
    return int(row)


# ---------------------------------------------------------------------- full resolution
def full_view(
    session: Session,
    row: int,
    bands: Sequence[int] | None = None,
    stretch: Sequence[float] | None = None,
    max_side: int = FULL_MAX_SIDE,
) -> FullImage:
    """The image of ``row`` at its own resolution (long side capped to ``max_side``), shown
    through the session's display options with ``bands`` (one or three, zero-based) and
    ``stretch`` (low and high percentiles) in place of theirs when given."""
    row = _check_row(session, row)
    options = session.thumbnails.options
    if bands is not None:
        bands = tuple(bands)
        if not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) and b >= 0
                   for b in bands):
            raise ValueError(f"bands must be one or three band numbers >= 0, got {list(bands)!r}")
        options = dataclasses.replace(options, bands=tuple(int(b) for b in bands))
    if stretch is not None:
        stretch = tuple(stretch)
        if len(stretch) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                        for v in stretch):
            raise ValueError(f"stretch must be two percentiles [low, high], got {list(stretch)!r}")
        options = dataclasses.replace(options, stretch=(float(stretch[0]), float(stretch[1])))
    path = str(session.df["filepath"].to_numpy()[row])
    return encode_full(path, options, max_side, session.thumbnails.limits)


# ---------------------------------------------------------------------- progress
def progress(session: Session) -> dict[str, dict[str, int]]:
    """How many rows are labeled, in the queue and in the whole table: ``{"queue": {"labeled",
    "total"}, "all": {...}}``. A row is labeled when every class has a value (yes or no) or it
    is excluded (seen and set aside)."""
    done = _done_mask(session)
    queue = np.asarray(session.queue, dtype=np.intp)
    return {
        "queue": {"labeled": int(done[queue].sum()) if len(queue) else 0, "total": len(queue)},
        "all": {"labeled": int(done.sum()), "total": len(done)},
    }


def _done_mask(session: Session) -> np.ndarray:
    df = session.df
    done = df["exclude"].to_numpy(dtype=bool).copy()
    if not session.classes:
        return done
    full = np.ones(len(df), dtype=bool)
    for cls in session.classes:  # column by column: no N x C copy at 1M rows
        full &= ~np.isnan(df[cls].to_numpy(dtype=float))
    return done | full


# ---------------------------------------------------------------------- jump by file name
def _file_names(session: Session) -> np.ndarray:
    """Lower-cased base names of the table's files (the file paths never change)."""
    names = _names.get(session)
    if names is None or len(names) != len(session.df):
        paths = session.df["filepath"].astype(str)
        names = paths.str.rsplit("/", n=1).str[-1].str.rsplit("\\", n=1).str[-1].str.lower()
        names = names.to_numpy(dtype=object)
        _names[session] = names
    return names


def find_files(session: Session, text: str, limit: int = 20) -> tuple[list[int], int]:
    """Rows whose file name matches ``text`` (case-insensitive): the exact name first, then
    names starting with it, then names containing it; text with a ``/`` matches whole paths.
    Returns at most ``limit`` rows, best first, and how many matched in all."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty file name or part of one, got {text!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    needle = text.strip().lower()
    whole_paths = "/" in needle or os.sep in needle
    names = pd.Series(session.df["filepath"].astype(str).str.lower().to_numpy() if whole_paths
                      else _file_names(session))
    contains = names.str.contains(needle, regex=False).to_numpy()
    rows = np.flatnonzero(contains)
    if not len(rows):
        return [], 0
    matched = names.to_numpy()[rows]
    rank = np.where(matched == needle, 0, np.where([m.startswith(needle) for m in matched], 1, 2))
    order = np.argsort(rank, kind="stable")
    return [int(r) for r in rows[order][:limit]], len(rows)


def jump_to(session: Session, text: str) -> int:
    """Move the cursor to the image named ``text``: one file must match exactly (its name or
    path) or, failing that, be the only name that contains it. An image not in the queue is
    put in it just after the cursor. Returns its queue position; ``ValueError`` when no file
    or several match."""
    rows, total = find_files(session, text, limit=MAX_MATCHES_LISTED + 1)
    names = _file_names(session)
    needle = text.strip().lower()
    exact = [r for r in rows if names[r] == needle or
             str(session.df["filepath"].to_numpy()[r]).lower() == needle]
    if len(exact) == 1:
        row = exact[0]
    elif total == 1:
        row = rows[0]
    elif total == 0:
        raise ValueError(f"no file name contains {text.strip()!r}")
    else:
        shown = ", ".join(str(names[r]) for r in rows[:MAX_MATCHES_LISTED])
        more = f" and {total - MAX_MATCHES_LISTED:,} more" if total > MAX_MATCHES_LISTED else ""
        raise ValueError(f"{text.strip()!r} matches {total:,} files ({shown}{more}): "
                         "type more of the name")
    queue = list(session.queue)
    if row in queue:
        index = queue.index(row)
    else:
        index = min(session.cursor + 1, len(queue))
        queue.insert(index, row)
        session.set_queue(queue)
    session.cursor = index
    return index


# ---------------------------------------------------------------------- more like this
def more_like_this(session: Session, row: int, count: int | None = None) -> list[int]:
    """Fill the queue with ``row`` and then its ``count`` nearest neighbours in feature space
    (cosine, exact), nearest first, among the rows of the current queue's subset (labeled or
    excluded rows stay out where that subset leaves them out) that can be read. ``count``
    defaults to the size of the last sample. Returns the new queue; the cursor goes to ``row``.
    """
    row = _check_row(session, row)
    if session.features is None:
        raise ValueError("'more like this' needs features: open the session with "
                         "features=... (pre-extracted) or extract them first")
    if count is None:
        count = int(session.sampled.get("count", 50))
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    subset = Subset.from_dict(session.sampled["subset"]) if session.sampled.get("subset") \
        else Subset(SubsetKind.UNLABELED)
    candidates = subset_mask(session.df, session.classes, subset,
                             unreadable=session.unreadable_mask())
    if subset.kind is not SubsetKind.UNREADABLE:
        candidates &= ~session.unreadable_mask()
    candidates[row] = False
    similarity = cosine_to_row(session, row)
    rows = np.flatnonzero(candidates)
    if len(rows) > count:
        top = np.argpartition(-similarity[rows], count - 1)[:count]
        rows = rows[top]
    rows = rows[np.argsort(-similarity[rows], kind="stable")]
    session.set_queue([row, *(int(r) for r in rows)])
    session.cursor = 0
    return list(session.queue)


def cosine_to_row(session: Session, row: int) -> np.ndarray:
    """Cosine similarity of every row's features to ``row``'s (feature maps average-pooled),
    by chunked matrix products; the rows' norms are computed once per session."""
    features = session.features
    norms = _feature_norms(session)
    query = pooled_float32(features[row:row + 1])[0]
    query = query / (np.linalg.norm(query) or 1.0)
    out = np.empty(len(features), dtype=np.float32)
    for start in range(0, len(features), SEARCH_CHUNK_ROWS):
        chunk = pooled_float32(features[start:start + SEARCH_CHUNK_ROWS])
        out[start:start + len(chunk)] = chunk @ query
    return out / np.where(norms > 0, norms, 1.0)


def _feature_norms(session: Session) -> np.ndarray:
    features = session.features
    held = _norms.get(session)
    if held is not None and held[0] == id(features):
        return held[1]
    norms = np.empty(len(features), dtype=np.float32)
    for start in range(0, len(features), SEARCH_CHUNK_ROWS):
        chunk = pooled_float32(features[start:start + SEARCH_CHUNK_ROWS])
        norms[start:start + len(chunk)] = np.linalg.norm(chunk, axis=1)
    _norms[session] = (id(features), norms)
    return norms
