"""The one owner of what is computed from the labels: predictions, BADGE embeddings, the kNN
graph, propagation scores, the model and its training history.

Each per-class array is kept with a :class:`Stamp`: the class list and label revision it was
computed for. Every class edit goes through :meth:`DerivedState.class_edited`, which renames,
keeps or drops each column the same way for every array and returns what the view should say.
A result computed in the background for an older class list is carried through the edits made
since (:meth:`DerivedState.translate`) before it is kept, so a class renamed while a model
trains gets its predictions under the new name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.active.suggest import has_positive_labels
from patchwork_widget.labels.groups import train_mask
from patchwork_widget.options.active import ClassEdit, ClassEditKind


@dataclass(frozen=True)
class Stamp:
    """What an array was computed for: the classes, how many class edits had been made, and
    the label revision (annotations and undos so far)."""

    classes: tuple[str, ...]
    edits: int
    revision: int


class DerivedState:
    """Derived arrays of one Session, consistent with its class list.

    Attributes
    ----------
    predictions, propagation : pandas.DataFrame or None
        Model outputs and propagation scores in [0, 1], one column per class they cover (a
        class added since they were computed has no column until they are computed again).
    embeddings : np.ndarray or None
        Penultimate features of the model (class-independent), for BADGE.
    graph : scipy.sparse matrix or None
        The kNN graph of the features (class-independent).
    model : PatchworkModels or None
        The fine-tuning and output models; renamed with the classes, stale after other edits.
    history : pandas.DataFrame or None
        Per-epoch figures of the last training run.
    """

    def __init__(self) -> None:
        self.edits: list[ClassEdit] = []
        self.revision = 0
        self.predictions: pd.DataFrame | None = None
        self.predictions_stamp: Stamp | None = None
        # per class the predictions cover: did the model's training rows hold a positive?
        self.trained_positives: pd.DataFrame | None = None  # one row, a column per class
        # held-out predictions of the model and their labels (validation rows, or out-of-fold
        # predictions of the training labels), a column per class: what the suggestion
        # thresholds are chosen from; and whether the predictions are one label per image
        self.heldout_probs: pd.DataFrame | None = None
        self.heldout_labels: pd.DataFrame | None = None
        self.single_label = False
        # out-of-fold predictions of the labeled training rows (NaN elsewhere), a column per
        # class: what the disagreement order scores labeled rows with
        self.out_of_fold: pd.DataFrame | None = None
        self.propagation: pd.DataFrame | None = None
        self.propagation_stamp: Stamp | None = None
        self.embeddings: np.ndarray | None = None
        self.graph: Any = None
        self.model: Any = None
        self.history: pd.DataFrame | None = None
        # values computed from the arrays above (order scores, the arrays for the current
        # classes), kept until one of them changes
        self.cache: dict[Any, Any] = {}

    def stamp(self, classes: list[str]) -> Stamp:
        """The stamp of something computed now, for ``classes``."""
        return Stamp(tuple(classes), len(self.edits), self.revision)

    def labels_changed(self) -> None:
        """An annotation or undo happened."""
        self.revision += 1

    # ------------------------------------------------------------------ per-class frames
    def translate(self, frame: pd.DataFrame, stamp: Stamp) -> pd.DataFrame:
        """``frame`` (columns = ``stamp.classes``) carried through the class edits made since
        ``stamp``: renamed columns renamed, removed or merged ones dropped."""
        frame = frame[list(stamp.classes)]
        for edit in self.edits[stamp.edits:]:
            mapping = edit.column_map()
            dropped = [c for c, new in mapping.items() if new is None and c in frame]
            frame = frame.drop(columns=dropped).rename(
                columns={c: new for c, new in mapping.items() if new is not None})
        return frame

    def set_predictions(self, frame: pd.DataFrame, stamp: Stamp, positives: np.ndarray,
                        single_label: bool = False,
                        heldout: tuple[np.ndarray, np.ndarray] | None = None,
                        out_of_fold: np.ndarray | None = None) -> None:
        """Keep model outputs computed for ``stamp`` and, per class of ``stamp.classes``,
        whether the model's training rows held a positive (the suggestion rule needs it);
        whether they are one label per image (softmax), the model's held-out predictions
        and their labels (n x C each), if any, and the out-of-fold predictions of the labeled
        training rows (N x C, NaN elsewhere; the disagreement order's), if any."""
        columns = list(stamp.classes)
        self.predictions = self.translate(frame, stamp)
        self.out_of_fold = None if out_of_fold is None else self.translate(
            pd.DataFrame(out_of_fold, columns=columns, index=frame.index), stamp)
        self.trained_positives = self.translate(
            pd.DataFrame([np.asarray(positives, dtype=bool)], columns=columns), stamp)
        self.heldout_probs, self.heldout_labels = (None, None) if heldout is None else (
            self.translate(pd.DataFrame(heldout[0], columns=columns), stamp),
            self.translate(pd.DataFrame(heldout[1], columns=columns), stamp))
        self.single_label = bool(single_label)
        self.predictions_stamp = stamp
        self.cache.clear()

    def quality(self, classes: list[str], target: float) -> pd.DataFrame | None:
        """Suggestion thresholds for ``target`` per class of ``classes``
        (:func:`~patchwork_widget.active.thresholds.choose_thresholds` on the held-out
        predictions; NaN thresholds for a class they do not cover), or None without held-out
        predictions; computed once until they change."""
        if self.heldout_probs is None or self.heldout_labels is None:
            return None
        key = ("quality", tuple(classes), target)
        if key not in self.cache:
            from patchwork_widget.active.thresholds import choose_thresholds

            covered = [c for c in classes if c in self.heldout_probs]
            chosen = choose_thresholds(self.heldout_probs[covered].to_numpy(float),
                                       self.heldout_labels[covered].to_numpy(float), covered,
                                       target, self.single_label)
            self.cache[key] = chosen.reindex(pd.Index(classes, name="class"))
        return self.cache[key]

    def positives_for(self, classes: list[str]) -> np.ndarray:
        """Per class of ``classes``: whether the model saw a positive of it (False if unknown)."""
        known = self.trained_positives
        return np.array([bool(known[c].iloc[0]) if known is not None and c in known else False
                         for c in classes])

    def set_propagation(self, frame: pd.DataFrame, stamp: Stamp) -> None:
        self.propagation = self.translate(frame, stamp)
        self.propagation_stamp = stamp
        self.cache.clear()

    def set_embeddings(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings
        self.cache.clear()

    def covering(self, name: str, classes: list[str]) -> np.ndarray | None:
        """The ``predictions``, ``out_of_fold`` or ``propagation`` values for ``classes``
        (N x C) if they have a column for each, else None; computed once until they change."""
        frame = getattr(self, name)
        if frame is None or any(c not in frame.columns for c in classes):
            return None
        key = (name, tuple(classes))
        if key not in self.cache:
            self.cache[key] = frame[classes].to_numpy(dtype=float)
        return self.cache[key]

    @staticmethod
    def partial(frame: pd.DataFrame | None, classes: list[str], rows: np.ndarray
                ) -> np.ndarray | None:
        """``frame``'s values at ``rows`` for ``classes``, NaN for classes it does not cover."""
        if frame is None:
            return None
        out = np.full((len(rows), len(classes)), np.nan)
        for j, c in enumerate(classes):
            if c in frame.columns:
                out[:, j] = frame[c].to_numpy(dtype=float)[rows]
        return out

    # ------------------------------------------------------------------ class edits
    def class_edited(self, edit: ClassEdit, classes: list[str]) -> list[str]:
        """Carry every derived array over ``edit`` (already applied to the table, whose
        classes are now ``classes``); returns sentences for the view."""
        self.edits.append(edit)
        self.cache.clear()
        notices: list[str] = []
        for name in ("predictions", "out_of_fold", "propagation", "trained_positives",
                     "heldout_probs", "heldout_labels"):
            frame = getattr(self, name)
            if frame is None:
                continue
            stamp = Stamp(tuple(frame.columns), len(self.edits) - 1, self.revision)
            setattr(self, name, self.translate(frame, stamp))
            if name in ("predictions", "propagation"):
                what = "Predictions" if name == "predictions" else "Propagation scores"
                notices += _frame_notice(what, edit)
        if self.model is not None:
            notices += self._model_edited(edit, classes)
        return notices

    def classes_replaced(self, classes: list[str]) -> list[str]:
        """The class list changed by edits this session did not see (another annotator's, in
        a team journal): keep the columns of classes still there, drop the others."""
        self.cache.clear()
        notices = ["Another annotator changed the classes."]
        for name in ("predictions", "out_of_fold", "propagation", "trained_positives",
                     "heldout_probs", "heldout_labels"):
            frame = getattr(self, name)
            if frame is not None:
                setattr(self, name, frame[[c for c in frame.columns if c in classes]])
        if self.model is not None and list(self.model.classes) != list(classes):
            notices.append("The model was built for other classes: build it again (Model tab) "
                           "before training.")
        return notices

    def _model_edited(self, edit: ClassEdit, classes: list[str]) -> list[str]:
        model = self.model
        if edit.kind is ClassEditKind.RENAME and edit.name in model.classes:
            model.classes = [edit.new if c == edit.name else c for c in model.classes]
        if list(model.classes) == list(classes):
            return []
        return ["The model was built for other classes: build it again (Model tab) before "
                "training."]


def training_positives(table: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Per class of ``classes``: whether the training rows of ``table`` hold a positive."""
    return has_positive_labels(table[list(classes)].to_numpy(dtype=float), train_mask(table))


def _frame_notice(what: str, edit: ClassEdit) -> list[str]:
    if edit.kind is ClassEditKind.RENAME:
        return [f"{what} renamed: {edit.name!r} is now {edit.new!r}."]
    if edit.kind is ClassEditKind.ADD:
        return [f"{what} do not cover {edit.name!r} yet: "
                f"{'train again' if what == 'Predictions' else 'propagate again'} to include it."]
    if edit.kind is ClassEditKind.REMOVE:
        return [f"{what} for {edit.name!r} dropped with the class."]
    return [f"{what} for {edit.name!r} and {edit.other!r} dropped: "
            f"{'train again' if what == 'Predictions' else 'propagate again'} for {edit.result!r}."]
