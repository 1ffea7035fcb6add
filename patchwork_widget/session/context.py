"""What the parts of a :class:`~patchwork_widget.session.Session` share.

The Session composes parts (:class:`~.sampling.Sampling`, :class:`~.modeling.Modeling`,
:class:`~.propagation.Propagation`, :class:`~.online.OnlineLearner`); each receives this
context, never the Session itself, so the parts depend on what they use and not on each other
through the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.images.thumbnails import ThumbnailCache
from patchwork_widget.labels import LabelStore
from patchwork_widget.session.background import Dispatcher
from patchwork_widget.session.claims import QueueClaims
from patchwork_widget.session.derived import DerivedState
from patchwork_widget.session.extraction_worker import BackgroundExtraction
from patchwork_widget.session.events import EventKind, Listeners, SessionEvent


@dataclass(frozen=True)
class SessionContext:
    """The state one Session's parts share, fixed for the session's lifetime.

    Parameters
    ----------
    store : LabelStore
        The durable label table (the one copy of the labels).
    derived : DerivedState
        What is computed from the labels (model, predictions, embeddings, graph, scores).
    dispatcher : Dispatcher
        Runs background results on the owner thread.
    listeners : Listeners
        The views told of every :class:`~.events.SessionEvent`.
    claims : QueueClaims
        The rows this annotator holds on a team journal.
    thumbnails : ThumbnailCache
        Display images (their size is the display size only: see ``model_imshape``).
    rng : numpy.random.Generator
        The sampling random generator.
    features : np.ndarray, optional
        Pre-extracted features, one row per table row.
    feature_extractor : keras.Model, optional
        Model that maps images to features.
    num_channels : int
        Channels of the model input when training on images.
    model_imshape : (int, int), optional
        Height and width images are resized to for the model (see :meth:`model_input_size`).
    extraction : BackgroundExtraction
        The features being extracted in the background, when the session was opened with a
        named extractor and they were not all cached (idle otherwise). ``features`` is None
        until it is done, then its array (:meth:`set_features`, the one field that changes).
    """

    store: LabelStore
    derived: DerivedState
    dispatcher: Dispatcher
    listeners: Listeners
    claims: QueueClaims
    thumbnails: ThumbnailCache
    rng: np.random.Generator
    features: np.ndarray | None = None
    feature_extractor: Any = None
    num_channels: int = 3
    model_imshape: tuple[int, int] | None = None
    extraction: BackgroundExtraction = field(default_factory=BackgroundExtraction)

    def set_features(self, features: np.ndarray) -> None:
        """Take the features of every row once the background extraction has them (owner
        thread; the one change of this otherwise fixed context)."""
        if self.features is not None:
            raise ValueError("the session has its features already")
        object.__setattr__(self, "features", features)

    def partial_features(self) -> tuple[np.ndarray, np.ndarray] | None:
        """While the background extraction runs: the features so far and the mask of the
        rows that have them; None otherwise (or before the first batch arrived)."""
        rows = self.extraction.rows
        if self.features is not None or not self.extraction.running or rows is None \
                or rows.array is None:
            return None
        return rows.array, rows.ready

    def model_input_size(self) -> tuple[int, int]:
        """Height and width of the model's input images: ``model_imshape`` when given, else
        the extractor's input size when it is fixed (e.g. 224 x 224), else the display size."""
        if self.model_imshape is not None:
            return self.model_imshape
        inputs = getattr(self.feature_extractor, "inputs", None)
        if inputs:
            fixed = tuple(inputs[0].shape[1:3])
            if len(fixed) == 2 and None not in fixed:
                return (int(fixed[0]), int(fixed[1]))
        return tuple(self.thumbnails.options.size)

    @property
    def df(self) -> pd.DataFrame:
        """The live label table (the store's own DataFrame)."""
        return self.store.df

    @property
    def classes(self) -> list[str]:
        return list(self.store.classes)

    def emit(self, kind: EventKind, **fields: Any) -> None:
        """Tell the views (on the owner thread)."""
        self.listeners.emit(SessionEvent(kind, **fields))

    def unreadable_mask(self) -> np.ndarray:
        """Rows whose image could not be read (a mask over the table)."""
        mask = np.zeros(len(self.df), dtype=bool)
        mask[list(self.store.unreadable)] = True
        return mask
