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

from patchwork_widget.active.neighbors import pooled_float32
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask
from patchwork_widget.images.feature_rows import map_chunks, take_rows
from patchwork_widget.images.thumbnails import FULL_MAX_SIDE, FullImage, encode_full

if TYPE_CHECKING:
    from patchwork_widget.session.core import Session

MAX_MATCHES_LISTED = 5  # file names quoted in the message of an ambiguous jump

MAX_COUNTED = 10_000  # matching files counted at most (the message says "over")
_done: weakref.WeakKeyDictionary[Any, tuple[tuple[str, ...], int, np.ndarray]] = \
    weakref.WeakKeyDictionary()
_indexes: weakref.WeakKeyDictionary[Any, dict[bool, Any]] = weakref.WeakKeyDictionary()
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
def progress(session: Session, rows: Sequence[int] | None = None) -> dict[str, dict[str, int]]:
    """How many rows are labeled, in the queue and in the whole table: ``{"queue": {"labeled",
    "total"}, "all": {...}}``. A row is labeled when every class has a value (yes or no) or it
    is excluded (seen and set aside).

    ``rows``: the rows the one annotation (or undo) since the last call touched, if known: only
    they are looked at again (the whole table otherwise; 1M rows x 11 classes take ~25 ms)."""
    done = _done_mask(session, rows)
    queue = np.asarray(session.queue, dtype=np.intp)
    return {
        "queue": {"labeled": int(done[queue].sum()) if len(queue) else 0, "total": len(queue)},
        "all": {"labeled": int(done.sum()), "total": len(done)},
    }


def _done_mask(session: Session, rows: Sequence[int] | None) -> np.ndarray:
    """Which rows are labeled, kept per session with the classes and label revision it was
    computed for; brought up to date row by row when exactly one annotation came since."""
    classes, revision = tuple(session.classes), session.derived.revision
    held = _done.get(session)
    if held is not None and held[0] == classes and len(held[2]) == len(session.df):
        if held[1] == revision:
            return held[2]
        if rows is not None and held[1] + 1 == revision:
            index = np.asarray(rows, dtype=np.intp)
            done = held[2]
            done[index] = _done_rows(session, index)
            _done[session] = (classes, revision, done)
            return done
    done = _done_rows(session, slice(None))
    _done[session] = (classes, revision, done)
    return done


def _done_rows(session: Session, index: np.ndarray | slice) -> np.ndarray:
    df = session.df
    done = df["exclude"].to_numpy(dtype=bool)[index].copy()
    full = np.ones(len(done), dtype=bool)
    for cls in session.classes:  # column by column: no N x C copy at 1M rows
        full &= ~np.isnan(df[cls].to_numpy(dtype=float)[index])
    return done | full if session.classes else done


# ---------------------------------------------------------------------- jump by file name
class NameIndex:
    """Lower-cased names, one per row, searchable by substring in one pass over one string:
    ``str.find`` over the names joined by newlines, so a search costs one scan of the text,
    not a Python call per row (figures in docs/widget.md)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = [str(n).lower().replace("\n", " ") for n in names]
        self.blob = "\n" + "\n".join(self.names) + "\n"
        lengths = np.fromiter(map(len, self.names), dtype=np.int64, count=len(self.names)) + 1
        self.starts = np.concatenate([[1], 1 + np.cumsum(lengths)[:-1]]) if len(lengths) else lengths

    def rows_of(self, pattern: str, cap: int) -> tuple[list[int], bool]:
        """Rows whose name holds ``pattern`` (a literal; a leading newline anchors it to the
        start of the name, a trailing one to its end), in row order, at most ``cap``; and
        whether there were more."""
        rows: list[int] = []
        anchored = pattern.startswith("\n")
        at = self.blob.find(pattern)
        while at >= 0:
            row = int(np.searchsorted(self.starts, at + anchored, side="right")) - 1
            if len(rows) == cap:
                return rows, True
            rows.append(row)
            # on from the next name: one row is listed once, and "\nname\n" of two neighbours
            # (which share a newline) is found twice
            at = self.blob.find(pattern, int(self.starts[row + 1]) - 1 if row + 1 < len(self.starts) else len(self.blob))
        return rows, False


def _index(session: Session, whole_paths: bool) -> NameIndex:
    """The session's index of base names (or of whole paths), built once: paths never change."""
    held = _indexes.setdefault(session, {})
    index = held.get(whole_paths)
    if index is None or len(index.names) != len(session.df):
        paths = [str(p) for p in session.df["filepath"].tolist()]
        if not whole_paths:
            paths = [p.rpartition("/")[2].rpartition("\\")[2] for p in paths]
        index = held[whole_paths] = NameIndex(paths)
    return index


@dataclasses.dataclass(frozen=True)
class FileMatches:
    """Rows whose file name matches, best first; ``total`` of them, or at least that many when
    ``more`` (the search stops counting at :data:`MAX_COUNTED`)."""

    rows: list[int]
    total: int
    more: bool


def find_files(session: Session, text: str, limit: int = 20) -> FileMatches:
    """Rows whose file name matches ``text`` (case-insensitive): the exact name first, then
    names starting with it, then names containing it, each in table order; text with a ``/``
    matches whole paths. At most ``limit`` rows."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty file name or part of one, got {text!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    needle = text.strip().lower()
    index = _index(session, whole_paths="/" in needle or os.sep in needle)
    anywhere, more = index.rows_of(needle, MAX_COUNTED)
    best = index.rows_of(f"\n{needle}\n", limit)[0]
    best += [r for r in index.rows_of("\n" + needle, limit)[0] if r not in best]
    best += [r for r in anywhere[:limit + len(best)] if r not in best]
    return FileMatches(best[:limit], len(anywhere), more)


def jump_to(session: Session, text: str) -> int:
    """Move the cursor to the image named ``text``: one file must match exactly (its name or
    path) or, failing that, be the only name that contains it. An image not in the queue is
    put in it just after the cursor. Returns its queue position; ``ValueError`` when no file
    or several match."""
    found = find_files(session, text, limit=MAX_MATCHES_LISTED)
    needle = text.strip().lower()
    exact = _index(session, whole_paths="/" in needle or os.sep in needle).rows_of(f"\n{needle}\n", 2)[0]
    if len(exact) == 1:
        row = exact[0]
    elif found.total == 1:
        row = found.rows[0]
    elif found.total == 0:
        raise ValueError(f"no file name contains {text.strip()!r}")
    else:
        names = _index(session, whole_paths=False).names
        shown = ", ".join(names[r] for r in found.rows)
        left = found.total - len(found.rows)
        more = f" and {'over ' if found.more else ''}{left:,} more" if left or found.more else ""
        total = f"over {found.total:,}" if found.more else f"{found.total:,}"
        raise ValueError(f"{text.strip()!r} matches {total} files ({shown}{more}): "
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
    if session.features is None and session.context.extraction.running:
        raise ValueError(f"'more like this' needs the features: "
                         f"{session.context.extraction.progress_text()} are extracted so far")
    if session.features is None:
        raise ValueError("'more like this' needs features: open the session with "
                         "features=... (pre-extracted) or extract them first")
    if count is None:
        count = int(session.sampled.get("count", 50))
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    subset = Subset.from_dict(session.sampled["subset"]) if session.sampled.get("subset") \
        else Subset(SubsetKind.UNLABELED)
    duplicates = session.near_duplicate_ids() if subset.kind is SubsetKind.NEAR_DUPLICATES else None
    candidates = subset_mask(session.df, session.classes, subset,
                             unreadable=session.unreadable_mask(), duplicates=duplicates)
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
    a chunk of rows at a time (:func:`~patchwork_widget.images.feature_rows.map_chunks`, so
    features in a memmap or Zarr array are never read whole); the rows' norms are computed
    once per session (which also checks, once, that the features are finite)."""
    features = session.features
    norms = _feature_norms(session)
    query = pooled_float32(take_rows(features, np.array([row])))[0]
    query = query / (np.linalg.norm(query) or 1.0)
    out = map_chunks(lambda block: block @ query, features, pooled=True)
    return out / np.where(norms > 0, norms, 1.0)


def _feature_norms(session: Session) -> np.ndarray:
    features = session.features
    held = _norms.get(session)
    if held is not None and held[0] == id(features):
        return held[1]
    norms = map_chunks(lambda block: np.linalg.norm(pooled_float32(block), axis=1), features,
                       pooled=True)
    _norms[session] = (id(features), norms)
    return norms
