"""The headless controller: everything the widget can do, as methods usable from a script.

A :class:`Session` owns the label store (the one copy of the label table), the optional
features or feature extractor, the sample queue, display thumbnails and, once a model exists,
its predictions. The widget calls these methods and nothing else.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from patchwork_widget.active.orders import OrderChoice, available_orders, order_options, rank
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache
from patchwork_widget.labels import LabelStore, load_labels

if TYPE_CHECKING:  # the models package imports TensorFlow: only when a model is built
    from patchwork_widget.models import PatchworkModels, TrainingJob

logger = logging.getLogger(__name__)

FLAGS = ("exclude", "validation")
DEFAULT_OUTFILE = "patchwork_labels.csv"


class Session:
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
    ) -> None:
        if features is not None and len(features) != len(store.df):
            raise ValueError(
                f"features has {len(features)} rows but the label table has {len(store.df)}"
            )
        self.store = store
        self.features = features
        self.feature_extractor = feature_extractor
        self.thumbnails = ThumbnailCache(display)
        self.queue: list[int] = []
        self.num_channels = num_channels
        self.predictions: pd.DataFrame | None = None
        self.model: PatchworkModels | None = None
        self.loss: Any = None  # LossOptions of the model, set by build_model
        self.fixmatch: Any = None  # FixMatchOptions, set by build_model
        self.job: TrainingJob | None = None
        self.train_history: pd.DataFrame | None = None
        self.embeddings: np.ndarray | None = None
        self.graph: Any = None  # scipy sparse kNN graph over the features
        self.propagation: pd.DataFrame | None = None
        self._labels_done = 0
        self._seconds_spent = 0.0
        self._rng = np.random.default_rng(seed)

    @classmethod
    def open(
        cls,
        source: pd.DataFrame | str | os.PathLike,
        *,
        outfile: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Session:
        """Open a project from a table (DataFrame, CSV or Parquet path).

        Labels are journaled beside ``outfile``; it defaults to the table's own path when
        ``source`` is a file, else to ``patchwork_labels.csv`` in the working directory.
        """
        is_path = isinstance(source, (str, os.PathLike))
        if outfile is None:
            outfile = source if is_path else DEFAULT_OUTFILE
            if not is_path:
                logger.warning("no outfile given: labels are saved to %s", os.path.abspath(outfile))
        same_file = is_path and os.path.abspath(source) == os.path.abspath(outfile)
        df = None if same_file else load_labels(source)
        store = LabelStore.open(outfile, df=df, classes=classes)
        return cls(store, **kwargs)

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
        """Labels of ``rows`` as plain JSON-ready values: ``None`` for unlabeled."""
        labels = self._cells(rows, self.classes).astype(float)
        flags = self._cells(rows, FLAGS).astype(bool)
        paths = self.df["filepath"].iloc[np.asarray(rows, dtype=np.intp)].tolist()
        suggest = self._suggestions(rows)
        return [
            {
                "row": int(row),
                "name": os.path.basename(str(path)),
                "labels": [None if math.isnan(v) else float(v) for v in labels[i]],
                "exclude": bool(flags[i, 0]),
                "validation": bool(flags[i, 1]),
                "suggest": None if suggest is None else [float(p) for p in suggest[i]],
            }
            for i, (row, path) in enumerate(zip(rows, paths))
        ]

    # ------------------------------------------------------------------ sampling
    def sample(
        self, subset: Subset | Mapping[str, Any] = Subset(SubsetKind.UNLABELED),
        order: str | OrderChoice | Mapping[str, Any] = "random", count: int = 50,
    ) -> list[int]:
        """Fill the queue with ``count`` rows of ``subset`` in ``order`` (A1, A2).

        ``order`` is an order name, an ``OrderChoice`` (name and class) or its dict form.
        """
        if not isinstance(subset, Subset):
            subset = Subset.from_dict(subset)
        candidates = subset_mask(self.df, self.classes, subset)
        picked = rank(order, candidates, count, rng=self._rng, classes=self.classes,
                      **self._order_inputs())
        self.queue = [int(r) for r in picked]
        return self.queue

    @property
    def orders(self) -> list[OrderChoice]:
        """The orders available now (model-based ones once their arrays exist)."""
        present = {"labels": True, "probs": self.predictions, "features": self.features,
                   "embeddings": self.embeddings, "scores": self.propagation}
        return order_options(self.classes, available_orders(**present))

    def _order_inputs(self) -> dict[str, Any]:
        """The arrays model-based orders need, as far as they exist now."""
        arrays: dict[str, Any] = {"labels": self.df[self.classes].to_numpy(dtype=float)}
        if self.predictions is not None:
            arrays["probs"] = self.predictions[self.classes].to_numpy(dtype=float)
        if self.features is not None:
            arrays["features"] = self.features
        if self.embeddings is not None:
            arrays["embeddings"] = self.embeddings
        if self.propagation is not None:
            arrays["scores"] = self.propagation[self.classes].to_numpy(dtype=float)
        return arrays

    # ------------------------------------------------------------------ labeling
    def annotate(
        self, rows: int | Sequence[int], changes: Mapping[str, Any], seconds: float | None = None
    ) -> list[int]:
        """Set fields of one row or several; returns only once the change is durable (L4)."""
        rows = [rows] if isinstance(rows, (int, np.integer)) else list(rows)
        classes = [c for c in changes if c in self.classes]
        before = self._cells(rows, classes).astype(float) if classes else None
        if len(rows) == 1:
            self.store.annotate(rows[0], changes, seconds=seconds)
        else:
            self.store.annotate_many(rows, changes, seconds=seconds)
        if before is not None:
            after = self._cells(rows, classes).astype(float)
            self._labels_done += int(np.sum(~np.isnan(after) & (after != before)))
        self._seconds_spent += seconds or 0.0
        return rows

    def pace(self) -> dict[str, float | int | None]:
        """Labels given in this session and labels per minute of on-screen time (L6)."""
        minutes = self._seconds_spent / 60.0
        rate = self._labels_done / minutes if minutes > 0 else None
        return {"labels": self._labels_done, "seconds": self._seconds_spent, "labels_per_minute": rate}

    def undo(self) -> list[int]:
        """Revert the latest annotation; returns the rows it touched (empty if none)."""
        reverted = self.store.undo()
        return sorted(reverted["rows"]) if reverted else []

    def set_predictions(self, predictions: pd.DataFrame) -> None:
        """Model outputs in [0, 1], one column per class, aligned to the table."""
        missing = [c for c in self.classes if c not in predictions.columns]
        if missing or len(predictions) != len(self.df):
            raise ValueError(
                f"predictions need one row per table row ({len(self.df)}) and a column per "
                f"class; got {len(predictions)} rows, missing columns {missing}"
            )
        self.predictions = predictions

    def _suggestions(self, rows: Sequence[int]) -> np.ndarray | None:
        if self.predictions is None:
            return None
        return self.predictions[self.classes].to_numpy(dtype=float)[np.asarray(rows, dtype=np.intp)]

    def accept_suggestions(self, row: int, seconds: float | None = None) -> list[int]:
        """Give every unlabeled class of ``row`` the model's label (p >= 0.5 means 1)."""
        if self.predictions is None:
            raise ValueError("no predictions yet: train a model before accepting suggestions")
        current = self.row_values([row])[0]
        changes = {
            c: float(p >= 0.5)
            for c, value, p in zip(self.classes, current["labels"], current["suggest"])
            if value is None
        }
        if changes:
            self.annotate(row, changes, seconds=seconds)
        return [row]

    # ------------------------------------------------------------------ classes
    def add_class(self, name: str) -> None:
        self.store.add_class(name)
        self._drop_stale_predictions()

    def rename_class(self, old: str, new: str) -> None:
        self.store.rename_class(old, new)
        if self.predictions is not None:
            self.predictions = self.predictions.rename(columns={old: new})

    def remove_class(self, name: str) -> None:
        self.store.remove_class(name)

    def _drop_stale_predictions(self) -> None:
        if self.predictions is not None and any(c not in self.predictions for c in self.classes):
            logger.info("predictions dropped: they do not cover the new class list")
            self.predictions = None

    # ------------------------------------------------------------------ models (M1-M5)
    @property
    def models(self) -> dict[str, Any]:
        """The Keras models built so far: feature_extractor, fine_tuning, output."""
        return {} if self.model is None else self.model.as_dict()

    def build_model(
        self, finetune: Any = None, loss: Any = None, fixmatch: Any = None
    ) -> PatchworkModels:
        """Build fine-tuning and output models for the current classes (the Model tab).

        ``finetune``, ``loss`` and ``fixmatch`` are ``FineTuneOptions``, ``LossOptions`` and
        ``FixMatchOptions`` from :mod:`patchwork_widget.models`, or dicts of their fields.
        """
        from patchwork_widget import models as m

        if self.features is None and self.feature_extractor is None:
            raise ValueError("a model needs features or a feature_extractor; the session has neither")
        self.model = m.build_models(
            self.classes,
            feature_shape=None if self.features is None else self.features.shape[1:],
            extractor=None if self.features is not None else self.feature_extractor,
            options=_options(m.FineTuneOptions, finetune),
        )
        self.loss = _options(m.LossOptions, loss)
        self.fixmatch = _options(m.FixMatchOptions, fixmatch)
        return self.model

    def train(
        self,
        options: Any = None,
        *,
        progress: Callable[[int, int, dict], None] | None = None,
        update_predictions: bool = True,
        on_done: Callable[[TrainingJob], None] | None = None,
    ) -> TrainingJob:
        """Train the model in a background thread (M3); labeling goes on meanwhile.

        ``options`` is a ``TrainOptions`` or a dict of its fields (the model's loss and
        FixMatch choices are added). With ``update_predictions``, predictions for every row
        are refreshed when training ends; then ``on_done(job)`` is called (from the training
        thread).
        """
        from patchwork_widget import models as m

        if self.model is None or self.model.classes != self.classes:
            raise ValueError("build a model for the current classes first (build_model)")
        if self.job is not None and not self.job.done():
            raise ValueError("a training run is already going; cancel it or wait for it")
        train_options = replace(_options(m.TrainOptions, options), loss=self.loss, fixmatch=self.fixmatch)
        job = m.start_training(
            self.model, self.df, progress=progress, options=train_options, **self._model_inputs()
        )

        def finish(_future: Any) -> None:
            try:
                self.train_history = job.result().history
                if update_predictions:
                    self.update_predictions()
            except Exception:  # training ran in another thread: report it, do not lose it
                logger.exception("training failed")
            if on_done is not None:
                on_done(job)

        self.job = job
        job.future.add_done_callback(finish)
        return job

    def update_predictions(self) -> pd.DataFrame:
        """Predict every row with the current model and keep the result (M5)."""
        from patchwork_widget import models as m

        if self.model is None:
            raise ValueError("no model yet: build and train one first")
        self.set_predictions(m.predict(self.model, self.df, **self._model_inputs()))
        return self.predictions

    def update_embeddings(self) -> np.ndarray:
        """Penultimate features of every row (the fine-tuning model's output), for BADGE."""
        if self.model is None or self.features is None:
            raise ValueError("BADGE embeddings need a model trained on pre-extracted features")
        self.embeddings = np.asarray(self.model.fine_tuning.predict(self.features, batch_size=1024, verbose=0))
        return self.embeddings

    def histograms(self, bins: int = 20) -> dict[str, dict[str, np.ndarray]]:
        """Output histograms per class for train / validation positives and negatives and
        unlabeled rows (M5)."""
        from patchwork_widget import models as m

        if self.predictions is None:
            raise ValueError("no predictions yet: train a model first")
        return m.output_histograms(self.predictions, self.df, self.classes, bins=bins)

    def _model_inputs(self) -> dict[str, Any]:
        if self.features is not None:
            return {"features": self.features}
        size = self.thumbnails.options.size
        return {"imshape": tuple(size), "num_channels": self.num_channels}

    # ------------------------------------------------------------------ label propagation (A4)
    def build_graph(self, k: int = 10, temperature: float = 0.1) -> Any:
        """The symmetric, normalised kNN graph of the features (cosine; exp(-d / temperature))."""
        from patchwork_widget.active.graph import knn_graph

        if self.features is None:
            raise ValueError("label propagation needs pre-extracted features (features=...)")
        self.graph = knn_graph(self.features, k=k, temperature=temperature)
        return self.graph

    def propagate(self, method: str = "zhou") -> pd.DataFrame:
        """Spread the current labels over the graph: a score in [0, 1] per row and class."""
        from patchwork_widget.active.propagate import propagate

        if self.graph is None:
            raise ValueError("build the graph first (build_graph)")
        labels = self.df[self.classes].to_numpy(dtype=float, copy=True)
        labels[self.df["exclude"].to_numpy(dtype=bool)] = np.nan
        scores = propagate(self.graph, labels, method=method)
        self.propagation = pd.DataFrame(scores, columns=self.classes, index=self.df.index)
        return self.propagation

    def pseudo_labels(self, threshold: float = 0.9) -> pd.DataFrame:
        """Propagation scores as labels: 1 at >= threshold, 0 at <= 1 - threshold, else NaN;
        rows' own labels are kept."""
        from patchwork_widget.active.propagate import pseudo_label_frame

        if self.propagation is None:
            raise ValueError("no propagation scores yet: propagate first")
        frame = pseudo_label_frame(self.propagation.to_numpy(), self.classes, threshold,
                                   labels=self.df[self.classes].to_numpy(dtype=float), index=self.df.index)
        return pd.concat([self.df[["filepath"]], frame], axis=1)

    # ------------------------------------------------------------------ images and files
    def thumbnail(self, row: int) -> bytes:
        """Encoded display image of ``row``; raises ``ImageReadError``."""
        return self.thumbnails.get(str(self.df.at[row, "filepath"]))

    def save(self, path: str | os.PathLike | None = None) -> str:
        """Write the table atomically (CSV or Parquet by extension); returns the path."""
        self.store.export(path)
        return str(self.store.path if path is None else path)


def _options(kind: type, value: Any) -> Any:
    """An options dataclass from an instance, a dict of its fields, or None (defaults)."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind.from_dict(value)
    raise ValueError(f"expected {kind.__name__} or a dict of its fields, got {type(value).__name__}")
