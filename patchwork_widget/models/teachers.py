"""Teachers for distillation (M7): class probabilities per image file from whatever holds them.

:func:`teacher_probabilities` takes an array, a DataFrame of predictions, the widget or its
Session (their predictions), a trained :class:`~patchwork_widget.models.PatchworkModels` or
any Keras image model (run over the files), and returns aligned files, probabilities and
class names. Imports TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import pandas as pd

from patchwork_widget.images.batch import read_images
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.predictions import predict_files
from patchwork_widget.options.checks import check_array, check_names, check_paths

__all__ = ["check_probabilities", "predict_images", "teacher_probabilities"]

PathLike = Union[str, "os.PathLike[str]"]


def predict_images(model: keras.Model, files: Sequence[str], batch_size: int,
                    reading: Mapping[str, Any]) -> np.ndarray:
    """Probabilities of a Keras image model for ``files``; NaN rows for unreadable files."""
    out: Optional[np.ndarray] = None
    for start in range(0, len(files), batch_size):
        batch = read_images(list(files[start:start + batch_size]), **reading)
        if not len(batch.arrays):
            continue
        p = np.asarray(model.predict_on_batch(batch.arrays), dtype=np.float32)
        if out is None:
            out = np.full((len(files), p.shape[-1]), np.nan, dtype=np.float32)
        out[start + batch.good_index] = p
    if out is None:
        raise ValueError("none of the files could be read, so the teacher gave no outputs")
    return out


def teacher_probabilities(
    teacher: Any, filepaths: Optional[Sequence[PathLike]], classes: Optional[Sequence[str]],
    reading: Mapping[str, Any], batch_size: int = 64,
) -> Tuple[List[str], np.ndarray, List[str]]:
    """``(files, probabilities (N, C), classes)`` from any teacher :func:`distill` takes."""
    files = None if filepaths is None else check_paths("filepaths", filepaths)
    if classes is not None:
        classes = check_names("classes", classes, what="class name")
    if hasattr(teacher, "predictions") and hasattr(teacher, "df"):  # widget or Session
        preds = teacher.predictions
        if preds is None:
            raise ValueError("the teacher has no predictions yet: train a model first")
        table = pd.concat([teacher.df[["filepath"]], preds], axis=1)
        if "exclude" in teacher.df:
            table = table[~teacher.df["exclude"].fillna(False).astype(bool)]
        teacher = table
    if isinstance(teacher, pd.DataFrame):
        names = list(classes) if classes is not None else [
            c for c in teacher.columns if c != "filepath"]
        missing = [c for c in names if c not in teacher.columns]
        if missing:
            raise ValueError(f"teacher_outputs has no column(s) {missing}; it has "
                             f"{list(teacher.columns)}")
        if "filepath" in teacher.columns:
            by_path = teacher.drop_duplicates("filepath").set_index("filepath")[names]
            files = files if files is not None else list(by_path.index)
            unknown = [f for f in files if f not in by_path.index]
            if unknown:
                raise ValueError(f"{len(unknown)} file(s) have no teacher output, e.g. "
                                 f"{unknown[0]!r}")
            return files, by_path.loc[files].to_numpy(np.float32), names
        teacher = teacher[names].to_numpy(np.float32)
        classes = names
    if files is None:
        raise ValueError("filepaths is required unless the teacher is a widget, a Session or "
                         "a DataFrame with a 'filepath' column")
    if isinstance(teacher, PatchworkModels):
        probs = predict_files(teacher, files, reading["imshape"], reading["num_channels"],
                              reading["norm"], reading["single_channel"], batch_size)
        return files, probs, list(classes or teacher.classes)
    if isinstance(teacher, keras.Model):
        probs = predict_images(teacher, files, batch_size, reading)
    else:
        probs = check_array("teacher_outputs", teacher, 2, allow_nan=True).astype(np.float32)
    if probs.ndim != 2 or len(probs) != len(files):
        raise ValueError(f"teacher_outputs must have one row per file ({len(files)}, C); got "
                         f"shape {probs.shape}")
    names = list(classes) if classes is not None else [str(i) for i in range(probs.shape[1])]
    if len(names) != probs.shape[1]:
        raise ValueError(f"classes names {len(names)} classes; the teacher gives "
                         f"{probs.shape[1]}")
    return files, probs, names


def check_probabilities(probs: np.ndarray, what: str) -> None:
    finite = probs[np.isfinite(probs)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{what} must be probabilities in [0, 1]; got values in "
                         f"[{finite.min():g}, {finite.max():g}]")
