"""The headless controller: everything the widget can do, as methods usable from a script.

A :class:`Session` owns the label store (the one copy of the label table), the optional
features or feature extractor, display thumbnails, and a :class:`~.derived.DerivedState`
holding what is computed from the labels, all in one :class:`~.context.SessionContext`; and
four parts that receive that context: :class:`~.sampling.Sampling` (the queue),
:class:`~.modeling.Modeling` (the model), :class:`~.propagation.Propagation` and
:class:`~.online.OnlineLearner`. Its public methods are the parts' methods, delegated.
Background work follows the rule of :mod:`.background`. The widget calls these methods and
listens to the session's events (:meth:`Session.subscribe`); nothing else.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patchwork_widget.active.online import OnlineOptions
from patchwork_widget.active.propagate import Method
from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.active.suggest import accept_changes, strengths
from patchwork_widget.active.thresholds import DEFAULT_TARGET
from patchwork_widget.images.feature_cache import cache_folder
from patchwork_widget.images.guard import ImageReadError
from patchwork_widget.images.thumbnails import BandsError, DisplayOptions, ThumbnailCache
from patchwork_widget.labels import LabelStore, load_labels, one_label_per_row
from patchwork_widget.labels.errors import JournalUnavailableError
from patchwork_widget.labels.opening import default_export
from patchwork_widget.options import FineTuneOptions, FixMatchOptions, LossOptions, TrainOptions
from patchwork_widget.options.active import ClassEdit, ClassEditKind
from patchwork_widget.options.checks import (
    check_features,
    check_number,
    check_path,
)
from patchwork_widget.options.project import SESSION_FIELDS, ProjectOptions, takes_options
from patchwork_widget.session.arguments import check_open_arguments
from patchwork_widget.session.background import Dispatcher, Task
from patchwork_widget.session.claims import QueueClaims
from patchwork_widget.session.context import SessionContext
from patchwork_widget.session.derived import DerivedState
from patchwork_widget.session.extraction import in_background, is_resolvable, project_features
from patchwork_widget.session.extraction_worker import DONE, BackgroundExtraction
from patchwork_widget.session.events import EventKind, Listener, Listeners
from patchwork_widget.session.modeling import Modeling, Progress, Runner
from patchwork_widget.session.online import OnlineLearner, RoundRunner, online_options
from patchwork_widget.session.propagation import Propagation
from patchwork_widget.session.sampling import Sampling
from patchwork_widget.session.storage import use_project_storage

if TYPE_CHECKING:  # the models package imports TensorFlow: only when a model is built
    from patchwork_widget.models import PatchworkModels

logger = logging.getLogger(__name__)

FLAGS = ("exclude", "validation")
DEFAULT_OUTFILE = "patchwork_labels.csv"


_UNLABELED = Subset(SubsetKind.UNLABELED)


class Session:
    """Labels, sampling and display for one labeling project.

    Parameters
    ----------
    store : LabelStore
        The durable label table.
    display : DisplayOptions, optional
        The whole display (thumbnail size, bands, stretch, encoding); when given it replaces
        ``imshape``, ``bands`` and ``stretch``.
    options : ProjectOptions, optional
        What the session takes of the open-a-project parameters (``SESSION_FIELDS``:
        features, feature extractor, display, model input, seed, the suggestion rule,
        single_label, team claims), as keywords or as a whole; each is described in
        :class:`~patchwork_widget.options.project.ProjectOptions`. A ``feature_extractor``
        here is a Keras model used as is (a name or file is resolved by :meth:`open`, which
        extracts and caches its features). With ``suggest_target`` a class whose precision
        cannot be estimated gets no suggestion; ``single_label`` is the default of
        ``TrainOptions.single_label`` (an explicit value there wins); team sampling claims
        the rows it samples for ``claim_lease`` seconds, skipping rows other annotators hold,
        except the ``claim_overlap`` share.

    The thread that creates a Session owns it: call its methods from that thread (in a
    notebook, the kernel's). Background results are applied on it (see :mod:`.background`).
    ``annotate`` may also be called from other threads (it is as durable and ordered as the
    store); what it triggers (counts for online learning) is handed to the owner thread.
    """

    @takes_options(SESSION_FIELDS)
    def __init__(self, store: LabelStore, *, display: DisplayOptions | None = None,
                 options: ProjectOptions) -> None:
        features = options.features
        if features is not None:  # its values were checked by ProjectOptions (a memmap or Zarr
            # array by its shape only: it is read in chunks, images/feature_rows.py); the rows
            features = check_features("features", features, rows=len(store.df), finite=False)
        if display is None:
            display = DisplayOptions(size=options.imshape, bands=options.bands,
                                     stretch=options.stretch)
        self.options = options
        self.context = SessionContext(
            store=store, derived=DerivedState(), dispatcher=Dispatcher(), listeners=Listeners(),
            claims=QueueClaims(store, options.claim_lease, options.claim_overlap),
            thumbnails=ThumbnailCache(display), rng=np.random.default_rng(options.seed),
            features=features, feature_extractor=options.feature_extractor,
            num_channels=options.num_channels, model_imshape=options.model_imshape,
        )
        self.suggest_yes, self.suggest_no = options.suggest_yes, options.suggest_no
        self.suggest_target = options.suggest_target
        self._images_done = 0  # images given at least one class value, per annotate call
        self._cells_done = 0  # class values given (an image labeled for 11 classes: 11)
        self._seconds_spent = 0.0
        self._bookkeeping = threading.Lock()
        self._sampling = Sampling(self.context)
        self._modeling = Modeling(self.context, options.single_label)
        self._propagation = Propagation(self.context)
        self.online = OnlineLearner(self.context, self._sampling, self._modeling)
        store.on_remote_change(lambda change: self.dispatcher.post(lambda: self._remote_changed(change)))

    @classmethod
    @takes_options([name for name in ProjectOptions.names() if name != "keys"])
    def open(cls, source: pd.DataFrame | str | os.PathLike, *,
             display: DisplayOptions | None = None, options: ProjectOptions) -> Session:
        """Open a project from a table (DataFrame, CSV or Parquet path).

        Takes every field of :class:`~patchwork_widget.options.project.ProjectOptions` but
        ``keys`` (a view's), as keywords or as ``options=``. Labels are journaled beside
        ``outfile``; it defaults to the table's own path when ``source`` is a file, else to
        ``patchwork_labels.csv`` in the working directory, and with a team ``journal`` to the
        annotator's own file beside it (``patchwork_labels.ana.csv``). ``journal``,
        ``project``, ``annotator`` and ``resolution`` go to :meth:`LabelStore.open`
        (docs/team.md). A ``feature_extractor`` given by name (``"mobilenet_v3_small"``, a
        ``Backbone``, a ``.keras`` path) becomes the session's features, cached beside
        ``outfile`` (:mod:`.extraction`), extracted in the background by a worker process
        while the grid, keys and journal work (:attr:`extraction`; an
        :class:`~patchwork_widget.images.extractor.Extractor` object is extracted in this
        process before ``open`` returns). ``storage_options`` (fsspec options for image
        URLs) are kept beside ``outfile`` without their secrets and used again when a reopen
        gives none (:mod:`.storage`). ``display`` replaces ``imshape``, ``bands`` and
        ``stretch`` as in :class:`Session`.
        """
        check_open_arguments(source, "source", options)
        outfile = options.outfile
        is_path = isinstance(source, (str, os.PathLike))
        defaulted = outfile is None
        if defaulted:  # with a team journal, the annotator's own file
            outfile = default_export(source if is_path else DEFAULT_OUTFILE, options.journal,
                                     annotator=options.annotator)
        same_file = is_path and os.path.abspath(source) == os.path.abspath(outfile)
        if defaulted and not same_file:
            logger.warning("no outfile given: labels are saved to %s", os.path.abspath(outfile))
        df = None if same_file else load_labels(source)
        use_project_storage(outfile, options.storage_options)
        store = LabelStore.open(outfile, df=df, options=options)
        value = options.feature_extractor
        background = in_background(value)
        if is_resolvable(value) and not background:
            try:
                features, extractor = project_features(store.df["filepath"], outfile, value)
                options = options.replace(features=features, feature_extractor=extractor)
            except BaseException:
                store.close(export=False)
                raise
        if background:  # the extractor lives in the extraction's process
            options = options.replace(feature_extractor=None)
        try:
            session = cls(store, display=display, options=options)
        except BaseException:
            store.close(export=False)
            raise
        if background:
            try:
                session._extract_in_background(value, outfile)
            except BaseException:
                session.close()
                raise
        return session

    def _extract_in_background(self, value: Any, outfile: str | os.PathLike) -> None:
        """Start extracting the features of ``value`` (labeled rows first); they become
        :attr:`features` when every row has them (:mod:`.extraction_worker`)."""
        labels = self.df[self.classes].to_numpy(dtype=float)
        first = np.flatnonzero(~np.isnan(labels).all(axis=1)) if labels.size else []
        self.context.extraction.start(self.df["filepath"].tolist(), cache_folder(outfile), value,
                                      self.dispatcher, self._extraction_changed, first=first)

    def _extraction_changed(self, extraction: BackgroundExtraction) -> None:
        """Rows of features arrived, or the extraction ended (owner thread)."""
        if extraction.state == DONE:
            self.context.set_features(extraction.rows.array)
            self._emit(EventKind.DERIVED, source="features")
        self._emit(EventKind.PROGRESS, payload=extraction.status(), source="extract")

    # ------------------------------------------------------------------ what it holds
    @property
    def store(self) -> LabelStore:
        return self.context.store

    @property
    def derived(self) -> DerivedState:
        return self.context.derived

    @property
    def dispatcher(self) -> Dispatcher:
        return self.context.dispatcher

    @property
    def listeners(self) -> Listeners:
        return self.context.listeners

    @property
    def claims(self) -> QueueClaims:
        return self.context.claims

    @property
    def thumbnails(self) -> ThumbnailCache:
        return self.context.thumbnails

    @property
    def features(self) -> np.ndarray | None:
        return self.context.features

    @property
    def feature_extractor(self) -> Any:
        return self.context.feature_extractor

    @property
    def extraction(self) -> BackgroundExtraction:
        """The background extraction of a named extractor's features: ``status()`` (state,
        ``done`` of ``total`` rows), ``wait(timeout)`` for the features. Until it is done,
        :attr:`features` is None, orders that need features are refused (saying
        ``features N of M``) and training uses the labeled rows that have features."""
        self.dispatcher.drain()
        return self.context.extraction

    @property
    def num_channels(self) -> int:
        return self.context.num_channels

    # ------------------------------------------------------------------ events
    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` on every :class:`SessionEvent` (on the owner thread);
        returns a function that unsubscribes."""
        return self.listeners.add(callback)

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        self.context.emit(kind, **fields)

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
            suggest, labels, self._trained_positives(), *self._suggest_thresholds(),
            single_label=self.derived.single_label)
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
        """Set fields of one row or several; returns only once the change is durable (L4).

        The store checks the edit (rows, fields, values, ``seconds``, unreadable images;
        see :meth:`LabelStore.annotate`); this only turns one row into a list of one.
        Returns the rows written.
        """
        single = isinstance(rows, (int, np.integer)) and not isinstance(rows, bool)
        done = self.store.annotate_many([rows] if single else rows, changes, seconds=seconds)
        cells, images = done.cells, done.images
        with self._bookkeeping:
            self.derived.labels_changed()
            self._images_done += images
            self._cells_done += cells
            self._seconds_spent += seconds or 0.0
        self.claims.renew(self.queue[self.cursor:])
        if images:
            self.context.extraction.prioritize(done.rows)  # their features first, for training
            if self.dispatcher.on_owner_thread:
                self.online.images_labeled(images)
            else:
                self.dispatcher.post(lambda: self.online.images_labeled(images))
        return done.rows

    def pace(self) -> dict[str, float | int | None]:
        """This session's labeling pace over on-screen time (L6): ``images`` (an image counts
        once per annotate call that gave it a class value), ``cells`` (class values given),
        ``seconds``, ``images_per_minute``, ``cells_per_minute`` (None before any seconds),
        and ``labels_per_minute``, the same as ``images_per_minute`` (the older key, for scripts;
        it counted cells before)."""
        minutes = self._seconds_spent / 60.0

        def rate(count: int) -> float | None:
            return count / minutes if minutes > 0 else None

        return {"images": self._images_done, "cells": self._cells_done, "seconds": self._seconds_spent,
                "images_per_minute": rate(self._images_done), "cells_per_minute": rate(self._cells_done),
                "labels_per_minute": rate(self._images_done)}

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
                                 *self._suggest_thresholds(),
                                 single_label=self.derived.single_label)
        if changes:
            self.annotate(row, changes, seconds=seconds)
        return [row]

    def _suggest_thresholds(self) -> tuple[Any, Any]:
        """``(yes, no)`` of the suggestion rule: per class for ``suggest_target`` (NaN, no
        suggestion, before a model has chosen them), else the fixed thresholds."""
        if self.suggest_target is None:
            return self.suggest_yes, self.suggest_no
        chosen = self.derived.quality(self.classes, self.suggest_target)
        if chosen is None:
            return [math.nan] * len(self.classes), [math.nan] * len(self.classes)
        return chosen["yes_threshold"].tolist(), chosen["no_threshold"].tolist()

    def suggestion_quality(self, target: float | None = None) -> pd.DataFrame:
        """Per class: suggestion thresholds for a precision ``target`` per accepted row
        (default ``suggest_target``, else 0.95), their estimated precision and coverage, and
        the held-out rows behind them
        (:func:`patchwork_widget.active.thresholds.choose_thresholds`), from the model's
        held-out predictions: the validation rows' when 50 are labeled, else out-of-fold
        predictions of the training labels. ``suggest_target`` makes accept use them."""
        target = check_number("target", target, 0.5, 1.0, open_low=True, open_high=True,
                              allow_none=True)
        self.dispatcher.drain()
        chosen = self.derived.quality(self.classes, target or self.suggest_target or DEFAULT_TARGET)
        if chosen is None:
            raise ValueError("no held-out predictions yet: train a model (a pooling head on "
                             "features from 10 labeled rows, or with 50 labeled validation rows)")
        return chosen

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
        self._emit(EventKind.CLASSES, notices=tuple(notices), payload=edit, source=edit.kind.value)
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

    # ------------------------------------------------------------------ the queue (Sampling)
    @property
    def queue(self) -> list[int]:
        """The rows to label, in order."""
        return self._sampling.queue

    @queue.setter
    def queue(self, rows: list[int]) -> None:
        self._sampling.queue = rows

    @property
    def cursor(self) -> int:
        """Position in the queue of the image on screen (the view reports it)."""
        return self._sampling.cursor

    @cursor.setter
    def cursor(self, index: int) -> None:
        self._sampling.cursor = index

    @property
    def sampled(self) -> dict[str, Any]:
        """The subset, order and count of the current queue."""
        return self._sampling.sampled

    def sample(
        self, subset: Subset | Mapping[str, Any] = _UNLABELED,
        order: str | OrderChoice | Mapping[str, Any] = "random", count: int = 50,
    ) -> list[int]:
        """Fill the queue with ``count`` rows of ``subset`` in ``order`` (A1, A2).

        ``order`` is an order name, an ``OrderChoice`` (name and class) or its dict form.
        Sampling rows still to label (unlabeled, unlabeled for a class, partially labeled)
        claims them in the store (see ``claim_lease``): on a team journal, rows other
        annotators hold are replaced by the next ones in the order. The claims on the
        previous queue's rows that the new queue does not claim are given up. A
        ``near_duplicates`` sample holds whole groups of near-identical images, each group's
        rows consecutive, in the order of their best-ranked row (see ``queue_groups``).
        """
        return self._sampling.sample(subset, order, count)

    def claim_ranked(self, picked: Sequence[int], candidates: np.ndarray, count: int,
                     order: str | OrderChoice | Mapping[str, Any]) -> list[int]:
        """Claim ``count`` rows for this annotator (see ``claim_lease``): ``picked``, the
        ranked rows of the ``candidates`` mask, with rows another annotator holds replaced
        by the next ones ``order`` ranks. With the SQLite journal: ``picked`` itself."""
        return self._sampling.claim_ranked(picked, candidates, count, order)

    def set_queue(self, rows: Sequence[int]) -> None:
        """Replace the queue (e.g. re-ranked after an online round) and tell the views."""
        self._sampling.set_queue(rows)

    @property
    def orders(self) -> list[OrderChoice]:
        """The orders available now (model-based ones once their arrays cover every class)."""
        return self._sampling.orders

    @property
    def queue_groups(self) -> dict[int, int]:
        """For a sample of the ``near_duplicates`` subset: row -> the number (1, 2, ...) of its
        group of near-identical images; a group's rows are consecutive in the queue, so one
        multi-select labels it. Empty for other subsets."""
        return self._sampling.groups

    def near_duplicate_ids(self) -> np.ndarray:
        """Each row's near-duplicate group (-1: in none), from the features (issue 22; see
        :func:`patchwork_widget.active.duplicates.near_duplicate_groups`); computed once."""
        return self._sampling.duplicate_ids()

    # ------------------------------------------------------------------ the model (Modeling)
    @property
    def job(self) -> Task | None:
        """The latest training run (a background :class:`Task`), if any."""
        return self._modeling.job

    @property
    def loss(self) -> LossOptions | None:
        """The model's loss options, set by :meth:`build_model`."""
        return self._modeling.loss

    @property
    def fixmatch(self) -> FixMatchOptions | None:
        """The model's FixMatch options, set by :meth:`build_model`."""
        return self._modeling.fixmatch

    @property
    def single_label(self) -> bool | None:
        """The declared mode: True (one label per image), False (several), None (decided from
        the labels at every training run)."""
        return self._modeling.single_label

    def output_mode(self) -> str:
        """What the next training run's output will be, in words (the Model tab shows it)."""
        declared = self._modeling.single_label
        if declared is not None:
            return ("one label per image (softmax), declared" if declared
                    else "one or more labels per image (a sigmoid per class), declared")
        labels = self.df[self.classes].to_numpy(dtype=float)
        now = ("one label per image (softmax)" if one_label_per_row(labels)
               else "one or more labels per image (a sigmoid per class)")
        return f"{now}, from the labels (every labeled image has exactly one \"yes\" or not)"

    @property
    def model(self) -> PatchworkModels | None:
        return self._modeling.model

    @property
    def models(self) -> dict[str, Any]:
        """The Keras models built so far: feature_extractor, fine_tuning, output."""
        return self._modeling.models

    @property
    def predictions(self) -> pd.DataFrame | None:
        """Model outputs in [0, 1] per row, one column per class they cover (M5)."""
        return self._modeling.predictions

    @property
    def embeddings(self) -> np.ndarray | None:
        return self._modeling.embeddings

    @property
    def train_history(self) -> pd.DataFrame | None:
        """Per-epoch figures of the last training run."""
        return self._modeling.train_history

    def set_predictions(self, predictions: pd.DataFrame) -> None:
        """Use outputs in [0, 1] computed elsewhere: one row per table row, a column per class."""
        self._modeling.set_predictions(predictions)

    def build_model(
        self,
        finetune: FineTuneOptions | Mapping[str, Any] | None = None,
        loss: LossOptions | Mapping[str, Any] | None = None,
        fixmatch: FixMatchOptions | Mapping[str, Any] | None = None,
    ) -> PatchworkModels:
        """Build fine-tuning and output models for the current classes (the Model tab).

        ``finetune``, ``loss`` and ``fixmatch`` are options from :mod:`patchwork_widget.options`
        or dicts of their fields; None means the defaults.
        """
        return self._modeling.build_model(finetune, loss, fixmatch)

    def train(
        self,
        options: TrainOptions | Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        update_predictions: bool = True,
        update_embeddings: bool = False,
        on_done: Callable[[Task], None] | None = None,
        runner: Runner | None = None,
    ) -> Task:
        """Train the model in a background thread (M3); labeling goes on meanwhile.

        ``options`` is a ``TrainOptions`` or a dict of its fields (the model's loss and
        FixMatch choices are added). The run uses the labels as they are now. When it ends,
        predictions for every row (and, with ``update_embeddings``, BADGE embeddings) are put
        in place on this thread, then ``on_done(task)`` is called, also on this thread.
        ``progress(epoch, step, logs)`` is called on this thread too. ``task.result()`` waits
        for the :class:`~patchwork_widget.models.TrainResult` with everything in place.
        ``runner`` trains elsewhere (online mode's worker process, see
        :mod:`.round_worker`); by default :func:`~.modeling.train_and_predict` runs in the
        thread.
        """
        return self._modeling.train(options, progress=progress,
                                    update_predictions=update_predictions,
                                    update_embeddings=update_embeddings, on_done=on_done,
                                    runner=runner)

    def update_predictions(self) -> pd.DataFrame:
        """Predict every row with the current model and keep the result (M5)."""
        return self._modeling.update_predictions()

    def update_embeddings(self) -> np.ndarray:
        """Penultimate features of every row (the fine-tuning model's output), for BADGE."""
        return self._modeling.update_embeddings()

    def histograms(self, bins: int = 20) -> dict[str, dict[str, np.ndarray]]:
        """Output histograms per class the predictions cover, for train / validation positives
        and negatives and unlabeled rows (M5)."""
        return self._modeling.histograms(bins)

    # ------------------------------------------------------------------ propagation (A4)
    @property
    def graph(self) -> Any:
        """The symmetric, normalised kNN graph of the features (scipy sparse), once built."""
        return self._propagation.graph

    @property
    def propagation(self) -> pd.DataFrame | None:
        """Propagation scores in [0, 1] per row, one column per class they cover."""
        return self._propagation.propagation

    def build_graph(self, k: int = 10, temperature: float = 0.1, recall: float = 0.95) -> Any:
        """The symmetric, normalised kNN graph of the features (cosine; exp(-d / temperature)),
        its neighbours found with at least ``recall`` of the exact ones (measured while
        building: ``graph.search`` reports it)."""
        return self._propagation.build_graph(k, temperature, recall)

    def propagate(self, method: Method | str = Method.ZHOU, alpha: float = 0.9,
                  iterations: int = 20, balance: bool = False) -> pd.DataFrame:
        """Spread the current labels over the graph: a score in [0, 1] per row and class.

        ``method`` is ``"zhou"`` (closed form; ``alpha`` in (0, 1) weighs the graph against the
        labels) or ``"bai"`` (``iterations`` clamped steps). ``balance`` divides each class's
        "yes" and "no" channels by their numbers of labels (more "yes" pseudo-labels, less
        precise ones). The defaults were chosen by measurement (docs/active_learning.md).
        """
        return self._propagation.propagate(method, alpha, iterations, balance)

    def pseudo_labels(self, threshold: float = 0.9) -> pd.DataFrame:
        """Propagation scores as labels: 1 at >= threshold, 0 at <= 1 - threshold, else NaN;
        rows' own labels are kept. Only classes the scores cover."""
        return self._propagation.pseudo_labels(threshold)

    # ------------------------------------------------------------------ online learning (A6)
    def start_online(self, options: OnlineOptions | Mapping[str, Any] | None = None,
                     *, runner: RoundRunner | str = RoundRunner.AUTO, **fields: Any) -> dict[str, Any]:
        """Retrain in the background after every ``every`` newly labeled images and re-rank the
        queue (A6). Give :class:`~patchwork_widget.active.online.OnlineOptions` or its fields,
        e.g. ``start_online(every=20, order="margin", explore=0.2, stop={"macro_auc": 0.95})``.
        Without labeled validation rows, rounds hold out ``holdout`` of the labeled images.
        ``runner`` says where rounds train (:class:`~.online.RoundRunner`: by default in a
        worker process when the session has features, else in a thread). Builds a default
        model if there is none. Returns :meth:`online_status`."""
        options = online_options(options, fields)  # checked before the session is touched
        self.online.start(options, runner)
        return self.online.status()

    def pause_online(self) -> None:
        self.online.pause()

    def resume_online(self) -> None:
        self.online.resume()

    def stop_online(self) -> None:
        self.online.stop()

    def rerank_online(self) -> list[int]:
        """Re-rank the queue after the cursor now, with the last round's model, and let online
        mode re-rank it after later rounds (after "more like this", a jump or a new sample it
        keeps the user's queue until this is called). Returns the queue."""
        return self.online.rerank_now()

    def online_status(self) -> dict[str, Any]:
        """State (off / running / paused / stopped), rounds done, images labeled since the
        model was last updated (``images_since_update``), images the last round held out for
        validation (``held_out``), whether the user's queue is kept (``queue_kept``), whether a
        round is training, why it stopped, and every round's figures."""
        self.dispatcher.drain()
        return self.online.status()

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

    def thumbnail_page(self, rows: Sequence[int]) -> list[bytes | ImageReadError | BandsError]:
        """:meth:`thumbnail` of many rows read together (remote images download
        concurrently): each row's bytes, or the error it raised (an unreadable image is
        recorded as in :meth:`thumbnail`)."""
        paths = self.df["filepath"].to_numpy()
        results = self.thumbnails.get_many([str(paths[row]) for row in rows])
        for row, result in zip(rows, results):
            if isinstance(result, ImageReadError):
                self._record_unreadable(row, result.cause)
            elif not isinstance(result, BandsError):
                self._record_unreadable(row, None)
        return results

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
        return self.context.unreadable_mask()

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
        self.context.extraction.close()
        self.store.close()


def _json_number(value: float) -> float | None:
    """A float for JSON, None for NaN or infinity (which JSON cannot carry)."""
    return float(value) if math.isfinite(value) else None
