"""Predictions for every row, validation metrics and output histograms (feature M5).

:func:`predict` returns a DataFrame aligned to the label table (same index, one column per
class). From features it runs ``fine_tuning -> output`` in chunks; from images it reads them with
:func:`~patchwork_widget.images.batch.read_images` (the reader of feature extraction, so
``extract_features`` followed by the head gives the same numbers) and runs the end-to-end
classifier; unreadable images get NaN.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import special

from patchwork_widget.images.batch import read_images
from patchwork_widget.images.feature_rows import map_chunks
from patchwork_widget.labels.groups import train_mask, validation_mask
from patchwork_widget.labels.schema import check_table
from patchwork_widget.models.calibration import (
    calibration_error,
    check_scores_and_labels,
)
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.options.checks import check_features, check_int, check_names

logger = logging.getLogger(__name__)

HISTOGRAM_GROUPS = ("train_positive", "train_negative", "validation_positive",
                    "validation_negative", "unlabeled")


def _dense_head(models: PatchworkModels) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(W, b, activation)`` when ``fine_tuning -> output`` is one float32 ``Dense`` with a
    sigmoid or softmax on vector features (the identity fine-tuning model); else None."""
    passive = (keras.layers.InputLayer, keras.layers.Identity)
    if len(models.feature_shape) != 1 or models.fine_tuning.weights or not all(
            isinstance(layer, passive) for layer in models.fine_tuning.layers):
        return None
    layers = [layer for layer in models.output.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    if len(layers) != 1 or not isinstance(layers[0], keras.layers.Dense):
        return None
    dense = layers[0]
    activation = dense.get_config()["activation"]
    if (activation not in ("sigmoid", "softmax") or not dense.use_bias
            or dense.compute_dtype != "float32"):
        return None
    kernel, bias = (np.asarray(w, dtype=np.float32) for w in dense.get_weights())
    return kernel, bias, activation


def predict_features(models: PatchworkModels, features: Any,
                     batch_size: int = 4096) -> np.ndarray:
    """Class probabilities (N, C) float32 for pre-extracted ``features`` (an array, a memmap
    or a Zarr array: :mod:`~patchwork_widget.images.feature_rows`).

    A head that is one ``Dense`` layer on vector features (the default for vectors) is
    computed with NumPy, ``expit(F @ W + b)`` (``softmax`` for one label per image), chunk by
    chunk (:func:`~patchwork_widget.images.feature_rows.map_chunks`): the same numbers as
    Keras within float32 rounding, without TensorFlow's per-call costs. Any other head runs
    through Keras in ``batch_size``-row chunks. Either way one chunk of features is in memory
    at a time, besides the N x C output.
    """
    expected = models.feature_shape
    if tuple(features.shape[1:]) != expected:
        raise ValueError(f"features have shape {tuple(features.shape[1:])} per row; the models "
                         f"expect {expected}")
    dense = _dense_head(models)
    if dense is not None:
        kernel, bias, activation = dense

        def head_outputs(block: np.ndarray) -> np.ndarray:
            z = block @ kernel
            z += bias
            return special.expit(z) if activation == "sigmoid" else special.softmax(z, axis=1)

        return map_chunks(head_outputs, features)
    return map_chunks(model_outputs(models.head(), expected), features, batch_size)


def embed_features(models: PatchworkModels, features: Any, batch_size: int = 1024) -> np.ndarray:
    """The fine-tuning model's output for every row of ``features`` (BADGE's penultimate
    features), float32, computed ``batch_size`` rows at a time."""
    return map_chunks(model_outputs(models.fine_tuning, models.feature_shape), features,
                      batch_size)


def model_outputs(model: keras.Model, feature_shape: Tuple[int, ...]
                  ) -> Callable[[np.ndarray], np.ndarray]:
    """A traced ``model(x, training=False)`` on float32 feature rows, returning NumPy (for
    :func:`~patchwork_widget.images.feature_rows.map_chunks`)."""
    spec = tf.TensorSpec((None,) + tuple(feature_shape), tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                     autograph=False)
    return lambda block: fn(tf.convert_to_tensor(block)).numpy()


def predict_files(
    models: PatchworkModels,
    files: Sequence[str],
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: Optional[int] = None,
    norm: Optional[float] = None,
    single_channel: bool = False,
    batch_size: int = 256,
    num_workers: int = 2,
) -> np.ndarray:
    """Class probabilities (N, C) for image files; NaN rows for files that cannot be read.

    ``imshape`` and ``num_channels`` default to the extractor's input shape.
    """
    classifier = models.classifier()
    in_shape = tuple(classifier.inputs[0].shape[1:])
    imshape = imshape or (in_shape[0], in_shape[1])
    num_channels = num_channels or in_shape[2]
    spec = tf.TensorSpec((None,) + tuple(imshape) + (num_channels,), tf.float32)
    fn = tf.function(lambda x: classifier(x, training=False), input_signature=[spec],
                     autograph=False)
    out = np.full((len(files), len(models.classes)), np.nan, dtype=np.float32)
    for start in range(0, len(files), batch_size):
        chunk = [os.fspath(f) for f in files[start:start + batch_size]]
        batch = read_images(chunk, imshape, num_channels, norm, single_channel,
                            num_workers=num_workers)
        if len(batch.arrays):
            out[start + batch.good_index] = fn(tf.convert_to_tensor(batch.arrays)).numpy()
    return out


READ_OPTIONS = frozenset({"imshape", "num_channels", "norm", "single_channel", "num_workers"})


def predict(
    models: PatchworkModels,
    df: pd.DataFrame,
    *,
    features: Optional[np.ndarray] = None,
    batch_size: Optional[int] = None,
    **read_options,
) -> pd.DataFrame:
    """Predictions for every row of the label table.

    Parameters
    ----------
    models : PatchworkModels
        Trained models.
    df : pandas.DataFrame
        The label table (its index and ``filepath`` column are used).
    features : np.ndarray, optional
        Pre-extracted features, one row per table row; without them images are read.
    batch_size : int, optional
        Rows per model call (4096 for features, 256 for images by default).
    **read_options
        ``imshape``, ``num_channels``, ``norm``, ``single_channel``, ``num_workers`` for images.

    Returns
    -------
    pandas.DataFrame
        Index of ``df``, one float column per class (NaN for unreadable images).
    """
    check_table(df)
    batch_size = check_int("batch_size", batch_size, 1, allow_none=True)
    unknown = sorted(set(read_options) - READ_OPTIONS)
    if unknown:
        raise TypeError(f"unknown keyword argument(s) {unknown}; the image options are "
                        f"{sorted(READ_OPTIONS)}")
    if features is not None:
        if read_options:
            raise ValueError(f"{sorted(read_options)} apply to images, not to features: pass "
                             "one or the other")
        features = check_features("features", features, rows=len(df))
        probs = predict_features(models, features, batch_size or 4096)
    else:
        probs = predict_files(models, df["filepath"].tolist(), batch_size=batch_size or 256,
                              **read_options)
    return pd.DataFrame(probs, index=df.index, columns=list(models.classes))


def class_metrics(probs: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class ROC AUC and accuracy (threshold 0.5) over the labelled entries.

    AUC is NaN where a class has only one label value (or none); accuracy is NaN where a class
    has no label. Rows with a NaN prediction are left out.
    """
    from sklearn.metrics import roc_auc_score

    probs, labels = check_scores_and_labels(probs, labels)
    c = labels.shape[1]
    auc = np.full(c, np.nan)
    acc = np.full(c, np.nan)
    for j in range(c):
        ok = ~np.isnan(labels[:, j]) & ~np.isnan(probs[:, j])
        y, p = labels[ok, j], probs[ok, j]
        if len(y):
            acc[j] = float(np.mean((p >= 0.5) == (y == 1)))
        if len(np.unique(y)) == 2:
            auc[j] = float(roc_auc_score(y, p))
    return auc, acc


def macro_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the defined per-class AUCs (NaN when none is defined)."""
    auc, _ = class_metrics(probs, labels)
    return float(np.nanmean(auc)) if np.isfinite(auc).any() else math.nan


def _check_outputs(predictions: pd.DataFrame, df: pd.DataFrame,
                   classes: Optional[Sequence[str]]) -> List[str]:
    """The classes to report on (default: every prediction column), each a column of both
    ``predictions`` and ``df``; the two tables checked."""
    check_table(predictions, "predictions")
    check_table(df)
    names = check_names("classes", list(predictions.columns) if classes is None else classes,
                        what="class name")
    for name in names:
        if name not in predictions.columns or name not in df.columns:
            where = "predictions" if name not in predictions.columns else "df"
            raise ValueError(f"classes: {name!r} is not a column of {where}")
    return names


def _masks(df: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray]:
    return train_mask(df), validation_mask(df)


def validation_metrics(predictions: pd.DataFrame, df: pd.DataFrame,
                       classes: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Per-class validation AUC, accuracy and calibration error.

    Returns
    -------
    pandas.DataFrame
        Index = classes; columns ``auc``, ``accuracy``, ``ece`` (expected calibration error,
        :func:`~patchwork_widget.models.calibration.calibration_error`), ``positives``,
        ``negatives`` over the validation rows (not excluded) labelled for that class.
    """
    classes = _check_outputs(predictions, df, classes)
    _, val = _masks(df)
    labels = df.loc[val, classes].to_numpy(dtype=np.float64)
    probs = predictions.loc[val, classes].to_numpy(dtype=np.float64)
    auc, acc = class_metrics(probs, labels)
    return pd.DataFrame({"auc": auc, "accuracy": acc, "ece": calibration_error(probs, labels),
                         "positives": (labels == 1).sum(axis=0),
                         "negatives": (labels == 0).sum(axis=0)}, index=classes)


def output_histograms(predictions: pd.DataFrame, df: pd.DataFrame,
                      classes: Optional[Sequence[str]] = None,
                      bins: int = 20) -> Dict[str, Dict[str, np.ndarray]]:
    """Histogram counts of the outputs per class and group, for the Train tab's plots.

    Groups: ``train_positive`` / ``train_negative`` (training rows labelled 1 / 0),
    ``validation_positive`` / ``validation_negative``, and ``unlabeled`` (rows that are not
    excluded and have no label for the class, training or validation). Excluded rows and NaN
    predictions are left out.

    Returns
    -------
    dict
        ``{class: {"edges": (bins + 1,) array over [0, 1], group: (bins,) int64 counts}}``.
    """
    check_int("bins", bins, 1)
    classes = _check_outputs(predictions, df, classes)
    train, val = _masks(df)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for c in classes:
        y = df[c].to_numpy(dtype=np.float64)
        p = predictions[c].to_numpy(dtype=np.float64)
        groups: List[Tuple[str, np.ndarray]] = [
            ("train_positive", train & (y == 1)), ("train_negative", train & (y == 0)),
            ("validation_positive", val & (y == 1)), ("validation_negative", val & (y == 0)),
            ("unlabeled", (train | val) & np.isnan(y)),
        ]
        hist: Dict[str, np.ndarray] = {"edges": edges}
        for name, mask in groups:
            vals = p[mask & ~np.isnan(p)]
            hist[name] = np.histogram(np.clip(vals, 0.0, 1.0), bins=edges)[0].astype(np.int64)
        out[c] = hist
    return out
