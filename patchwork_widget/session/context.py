"""What the parts of a :class:`~patchwork_widget.session.Session` share.

The Session composes parts (:class:`~.sampling.Sampling`, :class:`~.modeling.Modeling`,
:class:`~.propagation.Propagation`, :class:`~.online.OnlineLearner`); each receives this
context, never the Session itself, so the parts depend on what they use and not on each other
through the controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.images.thumbnails import ThumbnailCache
from patchwork_widget.labels import LabelStore
from patchwork_widget.session.background import Dispatcher
from patchwork_widget.session.claims import QueueClaims
from patchwork_widget.session.derived import DerivedState
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
        Display images; its size is also the model input size when training on images.
    rng : numpy.random.Generator
        The sampling random generator.
    features : np.ndarray, optional
        Pre-extracted features, one row per table row.
    feature_extractor : keras.Model, optional
        Model that maps images to features.
    num_channels : int
        Channels of the model input when training on images.
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
