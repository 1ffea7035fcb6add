"""Save and load models, predictions and labels (feature M6).

:func:`save_models` writes, into one folder:

- ``fine_tuning.keras`` and ``output.keras``: the trained parts;
- ``extractor.keras`` and ``classifier.keras`` when there is an extractor: the extractor alone
  and the end-to-end classifier ``extractor -> fine_tuning -> output`` that takes images
  (float32 in [0, 1], the extractor's input shape) and returns class probabilities;
- ``models.json``: class names, fine-tuning options and feature shape.

Every file is written to a temporary name and renamed, so a crash never leaves half a model.
Custom layers are registered with ``keras.saving.register_keras_serializable``; importing
:mod:`patchwork_widget.models` is enough for ``keras.saving.load_model`` to find them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import keras
import numpy as np
import pandas as pd
import yaml

from patchwork_widget.labels.files import from_csv_cells, save_labels
from patchwork_widget.labels.schema import check_table
from patchwork_widget.models.finetune import FineTuneOptions, PatchworkModels
from patchwork_widget.options.checks import check_path

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
META_FILE = "models.json"
CONFIG_FILE = "config.yaml"  # a training run's settings, beside its outputs


def _plain(value: Any) -> Any:
    """YAML-safe copy: tuples to lists, NumPy scalars to Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_config(logdir: str, config: Mapping[str, Any]) -> str:
    """Write ``config`` to ``logdir/config.yaml`` and return the path."""
    path = os.path.join(logdir, CONFIG_FILE)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(_plain(config), f, default_flow_style=False, sort_keys=False)
    return path


def _save_keras(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def save_models(models: PatchworkModels, directory: PathLike) -> Dict[str, Path]:
    """Write every part of ``models`` as ``.keras`` files into ``directory``.

    Returns
    -------
    dict
        Part name (``fine_tuning``, ``output``, ``extractor``, ``classifier``) -> path.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    parts: Dict[str, keras.Model] = {"fine_tuning": models.fine_tuning, "output": models.output}
    if models.extractor is not None:
        parts["extractor"] = models.extractor
        parts["classifier"] = models.classifier()
    paths: Dict[str, Path] = {}
    for name, model in parts.items():
        paths[name] = folder / f"{name}.keras"
        _save_keras(model, paths[name])
    for stale in ("extractor", "classifier"):
        if stale not in parts:
            (folder / f"{stale}.keras").unlink(missing_ok=True)
    meta = folder / META_FILE
    tmp = folder / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(models.describe(), indent=1))
    os.replace(tmp, meta)
    logger.info("saved %s to %s", ", ".join(parts), folder)
    return paths


def load_models(directory: PathLike) -> PatchworkModels:
    """Load what :func:`save_models` wrote (the extractor too, when it was saved)."""
    folder = Path(directory)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ValueError(f"{folder} holds no saved models ({META_FILE} is missing)")
    meta = json.loads(meta_path.read_text())
    extractor_path = folder / "extractor.keras"
    extractor = load_keras(extractor_path) if extractor_path.is_file() else None
    if extractor is not None:
        extractor.trainable = False
    return PatchworkModels(
        fine_tuning=load_keras(folder / "fine_tuning.keras"),
        output=load_keras(folder / "output.keras"),
        classes=list(meta["classes"]),
        extractor=extractor,
        options=FineTuneOptions.from_dict(meta["options"]),
        trained=True,
    )


def load_keras(path: PathLike) -> keras.Model:
    """Load one ``.keras`` file (e.g. ``classifier.keras``), uncompiled."""
    return keras.saving.load_model(os.fspath(path), compile=False)


def save_predictions(predictions: pd.DataFrame, path: PathLike,
                     filepaths: Optional[pd.Series] = None) -> None:
    """Write predictions atomically as CSV or Parquet (by extension).

    ``filepaths`` (e.g. ``df["filepath"]``) is put first as a ``filepath`` column so the file
    can be joined back to the label table.
    """
    check_path("path", path)
    out = check_table(predictions, "predictions").copy()
    if filepaths is not None:
        if len(filepaths) != len(out):
            raise ValueError(f"filepaths has {len(filepaths)} rows; predictions {len(out)}")
        out.insert(0, "filepath", list(filepaths))
    save_labels(out, path)


def load_predictions(path: PathLike) -> pd.DataFrame:
    """Read predictions written by :func:`save_predictions`."""
    p = Path(check_path("path", path))
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    if p.suffix.lower() == ".csv":
        return from_csv_cells(pd.read_csv(
            p, dtype={"filepath": str}, keep_default_na=False,
            na_values={c: ["", "nan", "NaN"] for c in pd.read_csv(p, nrows=0).columns
                       if c != "filepath"}))
    raise ValueError(f"{os.fspath(path)!r}: predictions must be .csv or .parquet")


def save_table(df: pd.DataFrame, path: PathLike) -> None:
    """Write the label table atomically as CSV or Parquet (by extension)."""
    save_labels(df, path)
