"""The headless controller: everything the widget can do, as methods usable from a script.

A :class:`Session` owns the label store (the one copy of the label table), the optional
features or feature extractor, the sample queue, display thumbnails, and a
:class:`~.derived.DerivedState` holding what is computed from the labels. Background work
follows the rule of :mod:`.background`. The widget calls these methods and listens to the
session's events (:meth:`Session.subscribe`); nothing else.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.active.suggest import DEFAULT_NO, DEFAULT_YES, accept_changes, strengths
from patchwork_widget.images.guard import ImageReadError
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache
from patchwork_widget.labels import LabelStore, load_labels
from patchwork_widget.labels.arguments import check_changes, check_rows
from patchwork_widget.labels.errors import JournalUnavailableError
from patchwork_widget.labels.opening import default_export
from patchwork_widget.options.active import ClassEdit, ClassEditKind
from patchwork_widget.options.checks import (
    check_array,
    check_int,
    check_number,
    check_path,
    check_seed,
)
from patchwork_widget.session.arguments import check_open_arguments
from patchwork_widget.session.background import Dispatcher
from patchwork_widget.session.claims import DEFAULT_LEASE, DEFAULT_OVERLAP, QueueClaims
from patchwork_widget.session.derived import DerivedState
from patchwork_widget.session.events import EventKind, Listener, Listeners, SessionEvent
from patchwork_widget.session.modeling import ModelMethods
from patchwork_widget.session.online import OnlineLearner, OnlineMethods
from patchwork_widget.session.propagation import PropagationMethods
from patchwork_widget.session.sampling import SamplingMethods

logger = logging.getLogger(__name__)

FLAGS = ("exclude", "validation")
DEFAULT_OUTFILE = "patchwork_labels.csv"


class Session(SamplingMethods, ModelMethods, PropagationMethods, OnlineMethods):
    """Labels, sampling and display for one labeling project.

    Parameters
    ----------
    store : LabelStore
        The durable label table.
    features : np.ndarray, optional
        Pre-extracted features, one row per table row (N x d or N x h x w x c).
    feature_extractor : keras.Model, optional
        Model that maps images to features; used by the training tools.
    display : DisplayOptions, optional
        Thumbnail size, bands and stretch; its size is also the model input size when
        training on images.
    num_channels : int
        Channels of the model input when training on images.
    seed : int, optional
        Seed of the sampling random generator.
    suggest_yes, suggest_no : float
        The suggestion rule (B10): accepting a row's suggestions writes "yes" for an unlabeled
        class where the model's p >= ``suggest_yes`` (in (0.5, 1]) and the training rows hold
        a positive of that class, "no" where p <= ``suggest_no`` (in [0, 0.5)), nothing else.
    claim_lease, claim_overlap : float
        Team labeling (docs/team.md): sampling a subset of rows still to label claims the
        rows for ``claim_lease`` seconds (> 0; renewed while labeling), skipping rows other
        annotators hold, except that up to the ``claim_overlap`` share (0 to 1) of a sample
        may be rows one other annotator holds (labeled by two, for agreement).

    The thread that creates a Session owns it: call its methods from that thread (in a
    notebook, the kernel's). Background results are applied on it (see :mod:`.background`).
    ``annotate`` may also be called from other threads (it is as durable and ordered as the
    store); what it triggers (counts for online learning) is handed to the owner thread.
    """

    def __init__(
        self,
        store: LabelStore,
        *,
        features: np.ndarray | None = None,
        feature_extractor: Any = None,
        display: DisplayOptions | None = None,
        num_channels: int = 3,
        seed: int | None = None,
        suggest_yes: float = DEFAULT_YES,
        suggest_no: float = DEFAULT_NO,
        claim_lease: float = DEFAULT_LEASE,
        claim_overlap: float = DEFAULT_OVERLAP,
    ) -> None:
        check_number("suggest_yes", suggest_yes, 0.5, 1.0, open_low=True)
        check_number("suggest_no", suggest_no, 0.0, 0.5, open_high=True)
        if features is not None:  # a memmap is not scanned (it may be larger than memory)
            features = check_array("features", features, (2, 4), rows=len(store.df),
                                   finite=not isinstance(features, np.memmap))
        check_seed("seed", seed)
        check_int("num_channels", num_channels, 1)
        self.store = store
        self.claims = QueueClaims(store, claim_lease, claim_overlap)
        self.features = features
        self.feature_extractor = feature_extractor
        self.thumbnails = ThumbnailCache(display)
        self.queue: list[int] = []
        self.cursor = 0  # position in the queue of the image on screen (the view reports it)
        self.sampled: dict[str, Any] = {}  # the subset, order and count of the current queue
        self.num_channels = num_channels
        self.suggest_yes, self.suggest_no = float(suggest_yes), float(suggest_no)
        self.derived = DerivedState()
        self.dispatcher = Dispatcher()
        self.listeners = Listeners()
        self._labels_done = 0
        self._seconds_spent = 0.0
        self._bookkeeping = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self.online = OnlineLearner(self)
        store.on_remote_change(lambda change: self.dispatcher.post(lambda: self._remote_changed(change)))

    @classmethod
    def open(
        cls,
        source: pd.DataFrame | str | os.PathLike,
        *,
        outfile: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        journal: str | None = None,
        project: str | None = None,
        annotator: str | None = None,
        resolution: str = "latest",
        **kwargs: Any,
    ) -> Session:
        """Open a project from a table (DataFrame, CSV or Parquet path).

        Labels are journaled beside ``outfile``; it defaults to the table's own path when
        ``source`` is a file, else to ``patchwork_labels.csv`` in the working directory, and
        with a team ``journal`` to the annotator's own file beside it
        (``patchwork_labels.ana.csv``).
        ``journal``, ``project`` and ``annotator`` choose a team journal on a PostgreSQL
        server, and ``resolution`` which value a cell several annotators labeled shows
        (see :meth:`LabelStore.open` and docs/team.md). Other keyword arguments go
        to :class:`Session`.
        """
        check_open_arguments(source, "source", features=kwargs.get("features"),
                             outfile=outfile, classes=classes, seed=kwargs.get("seed"))
        is_path = isinstance(source, (str, os.PathLike))
        if outfile is None:  # with a team journal, the annotator's own file
            outfile = default_export(source if is_path else DEFAULT_OUTFILE, journal,
                                     annotator=annotator)
            if not is_path:
                logger.warning("no outfile given: labels are saved to %s", os.path.abspath(outfile))
        same_file = is_path and os.path.abspath(source) == os.path.abspath(outfile)
        df = None if same_file else load_labels(source)
        store = LabelStore.open(
            outfile, df=df, classes=classes, journal=journal, project=project,
            annotator=annotator, resolution=resolution,
        )
        return cls(store, **kwargs)

    # ------------------------------------------------------------------ events
    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` on every :class:`SessionEvent` (on the owner thread);
        returns a function that unsubscribes."""
        return self.listeners.add(callback)

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        self.listeners.emit(SessionEvent(kind, **fields))

    # ------------------------------------------------------------------ the table
    @property
    def df(self) -> pd.DataFrame:
        """The live label table (the store's own DataFrame)."""
        return self.store.df

    @property
    def classes(self) -> list[str]:
        return list(self.store.classes)

    @property
    def counts(self) -> pd.DataFrame:
        """Positives / negatives / missing per class for training and validation (L5)."""
        return self.store.counts

    @property
    def history(self) -> pd.DataFrame:
        """Every recorded event (annotations and class edits)."""
        return self.store.history()

    def _cells(self, rows: Sequence[int], fields: Sequence[str]) -> np.ndarray:
        """Values of ``fields`` at ``rows`` (rows x fields), read column by column.

        Indexing each column's array is ~100x faster than ``df.loc`` on large tables.
        """
        rows = np.asarray(rows, dtype=np.intp)
        return np.stack([self.df[f].to_numpy()[rows] for f in fields], axis=1)

    def row_values(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        """Labels of ``rows`` as plain JSON-ready values: ``None`` for unlabeled (and for a
        class the predictions do not cover, or a NaN prediction, in ``suggest``); ``strength``
        says per class what accepting would do: ``solid`` (writes it), ``faint`` (leaves it)
        or ``none``."""
        rows = np.asarray(rows, dtype=np.intp)
        labels = self._cells(rows, self.classes).astype(float)
        flags = self._cells(rows, FLAGS).astype(bool)
        paths = self.df["filepath"].to_numpy()[rows]
        suggest = self.derived.partial(self.derived.predictions, self.classes, rows)
        strength = None if suggest is None else strengths(
            suggest, labels, self._trained_positives(), self.suggest_yes, self.suggest_no)
        return [
            {
                "row": int(row),
                "name": os.path.basename(str(path)),
                "labels": [_json_number(v) for v in labels[i]],
                "exclude": bool(flags[i, 0]),
                "validation": bool(flags[i, 1]),
                "suggest": None if suggest is None else [_json_number(p) for p in suggest[i]],
                "strength": None if strength is None else list(strength[i]),
            }
            for i, (row, path) in enumerate(zip(rows, paths))
        ]

    # ------------------------------------------------------------------ labeling
    def annotate(
        self, rows: int | Sequence[int], changes: Mapping[str, Any], seconds: float | None = None
    ) -> list[int]:
        """Set fields of one row or several; returns only once the change is durable (L4)."""
        single = isinstance(rows, (int, np.integer)) and not isinstance(rows, bool)
        rows = check_rows([rows] if single else rows, len(self.df)).tolist()
        changes = check_changes(changes, self.classes)
        classes = [c for c in changes if c in self.classes]
        unreadable = self.store.unreadable if set(changes) - {"exclude"} else {}
        blocked = [r for r in rows if r in unreadable]
        if blocked:
            raise ValueError(f"row {blocked[0]}'s image cannot be read ({unreadable[blocked[0]]}): "
                             "only 'exclude' can be set on it")
        before = self._cells(rows, classes).astype(float) if classes else None
        if len(rows) == 1:
            self.store.annotate(rows[0], changes, seconds=seconds)
        else:
            self.store.annotate_many(rows, changes, seconds=seconds)
        given = 0
        if before is not None:
            after = self._cells(rows, classes).astype(float)
            given = int(np.sum(~np.isnan(after) & (after != before)))
        with self._bookkeeping:
            self.derived.labels_changed()
            self._labels_done += given
            self._seconds_spent += seconds or 0.0
        self.claims.renew(self.queue[self.cursor:])
        if given:
            if self.dispatcher.on_owner_thread:
                self.online.labels_changed(given)
            else:
                self.dispatcher.post(lambda: self.online.labels_changed(given))
        return rows

    def pace(self) -> dict[str, float | int | None]:
        """Labels given in this session and labels per minute of on-screen time (L6)."""
        minutes = self._seconds_spent / 60.0
        rate = self._labels_done / minutes if minutes > 0 else None
        return {"labels": self._labels_done, "seconds": self._seconds_spent, "labels_per_minute": rate}

    def undo(self) -> list[int]:
        """Revert the latest annotation; returns the rows it touched (empty if none)."""
        reverted = self.store.undo()
        if reverted:
            self.derived.labels_changed()
        return sorted(reverted["rows"]) if reverted else []

    def accept_suggestions(self, row: int, seconds: float | None = None) -> list[int]:
        """Write the model's confident suggestions for the unlabeled classes of ``row`` (the
        rule of ``suggest_yes`` / ``suggest_no``); a class without a prediction (not covered,
        or NaN) gets nothing."""
        if self.derived.predictions is None:
            raise ValueError("no predictions yet: train a model before accepting suggestions")
        rows = np.asarray([row], dtype=np.intp)
        probs = self.derived.partial(self.derived.predictions, self.classes, rows)[0]
        labels = self._cells(rows, self.classes).astype(float)[0]
        changes = accept_changes(probs, labels, self.classes, self._trained_positives(),
                                 self.suggest_yes, self.suggest_no)
        if changes:
            self.annotate(row, changes, seconds=seconds)
        return [row]

    def _trained_positives(self) -> np.ndarray:
        """Which classes the model saw a positive of among its training rows (no "yes"
        suggestion for the others)."""
        return self.derived.positives_for(self.classes)



    # ------------------------------------------------------------------ classes (L3)
    def edit_classes(self, edit: ClassEdit | Mapping[str, Any]) -> list[str]:
        """Apply one class edit to the table (journaled) and carry every derived array over
        it; returns what happened to them, as sentences for the user."""
        if not isinstance(edit, ClassEdit):
            edit = ClassEdit.from_dict(edit)
        store = self.store
        if edit.kind is ClassEditKind.ADD:
            store.add_class(edit.name)
        elif edit.kind is ClassEditKind.RENAME:
            store.rename_class(edit.name, str(edit.new))
        elif edit.kind is ClassEditKind.REMOVE:
            store.remove_class(edit.name)
        else:
            store.merge_classes(edit.name, str(edit.other), edit.new)
        notices = self.derived.class_edited(edit, self.classes)
        for notice in notices:
            logger.info("%s", notice)
        self._emit(EventKind.CLASSES, notices=tuple(notices), source=edit.kind.value)
        return notices

    def add_class(self, name: str) -> list[str]:
        return self.edit_classes(ClassEdit(ClassEditKind.ADD, name))

    def rename_class(self, old: str, new: str) -> list[str]:
        return self.edit_classes(ClassEdit(ClassEditKind.RENAME, old, new=new))

    def remove_class(self, name: str) -> list[str]:
        return self.edit_classes(ClassEdit(ClassEditKind.REMOVE, name))

    def merge_classes(self, a: str, b: str, into: str | None = None) -> list[str]:
        return self.edit_classes(ClassEdit(ClassEditKind.MERGE, a, new=into, other=b))

    def _remote_changed(self, change: Any) -> None:
        """Other annotators' changes reached the table (a team journal; owner thread)."""
        self.derived.labels_changed()
        if change.class_edits:
            notices = self.derived.classes_replaced(self.classes)
            self._emit(EventKind.CLASSES, notices=tuple(notices), source="remote")
        else:
            self._emit(EventKind.LABELS, payload=list(change.annotators), source="remote")

    # ------------------------------------------------------------------ images and files
    def thumbnail(self, row: int) -> bytes:
        """Encoded display image of ``row``; raises ``ImageReadError`` and records the row as
        unreadable in the journal (a row that reads again is no longer)."""
        try:
            data = self.thumbnails.get(str(self.df.at[row, "filepath"]))
        except ImageReadError as err:
            self._record_unreadable(row, err.cause)
            raise
        self._record_unreadable(row, None)
        return data

    def _record_unreadable(self, row: int, cause: str | None) -> None:
        try:
            self.store.record_unreadable(row, cause)
        except JournalUnavailableError as err:  # the image error matters more; retried next read
            logger.warning("could not record row %d as %s: %s", row,
                           "readable" if cause is None else "unreadable", err)

    @property
    def unreadable(self) -> pd.DataFrame:
        """Rows whose image could not be read, with the cause: columns ``row``, ``filepath``,
        ``cause``. Recorded in the journal, so they survive a restart. They get no class
        labels (only ``exclude``), no training, no predictions."""
        causes = self.store.unreadable
        rows = sorted(causes)
        return pd.DataFrame({"row": rows, "filepath": self.df["filepath"].to_numpy()[rows],
                             "cause": [causes[r] for r in rows]})

    def unreadable_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.df), dtype=bool)
        mask[list(self.store.unreadable)] = True
        return mask

    def save(self, path: str | os.PathLike | None = None) -> str:
        """Write the table atomically now (CSV or Parquet by extension); returns the path.
        The outfile is also kept current in the background (``store.export_state``)."""
        check_path("path", path, allow_none=True)
        self.store.export(path)
        return str(self.store.path if path is None else path)

    def close(self) -> None:
        """Stop online learning, write the outfile if it is behind, release the journal (a
        later open of the same outfile, here or elsewhere, takes it over)."""
        self.online.stop("the session was closed")
        self.store.close()


def _json_number(value: float) -> float | None:
    """A float for JSON, None for NaN or infinity (which JSON cannot carry)."""
    return float(value) if math.isfinite(value) else None
