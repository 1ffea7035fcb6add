"""The label table of the multitask trainer (feature F10), NumPy and pandas only (no
TensorFlow): tasks encoded as class indices with -1 where missing, task weights checked, and
the missingness strata the trainer samples evenly."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

__all__ = ["MISSING", "TaskTable", "describe", "encode_tasks", "missingness_strata",
           "parse_task_weights"]

MISSING = -1
TaskWeights = Union[None, str, Mapping[str, float], Sequence[float]]


@dataclass(frozen=True)
class TaskTable:
    """``codes`` ``(N, T)`` int32 class indices (``MISSING`` where a label is missing),
    ``tasks`` the column names and ``classes[t]`` the sorted labels of task ``t``."""

    codes: np.ndarray
    tasks: List[str]
    classes: List[list]


def _table(labels: Any, name: str) -> pd.DataFrame:
    if isinstance(labels, pd.DataFrame):
        return labels.reset_index(drop=True)
    if isinstance(labels, Mapping) and labels:
        try:
            return pd.DataFrame({str(k): list(v) for k, v in labels.items()})
        except ValueError as err:
            raise ValueError(f"{name} columns must all have one label per image: {err}") from None
    raise ValueError(f"{name} must be a pandas DataFrame or a dict of task name -> labels "
                     f"(one per image, None or NaN where missing); got {type(labels).__name__}")


def encode_tasks(labels: Any, n: int, name: str = "labels",
                 classes: Optional[List[list]] = None) -> TaskTable:
    """Encode a table of task columns (one row per image, ``n`` rows).

    Parameters
    ----------
    labels : pandas.DataFrame or dict of name -> sequence
        One column per task; None or NaN is a missing label.
    n : int
        Number of images the rows must match.
    classes : list of lists, optional
        The classes of each task (from the training table) for test labels; a test label not
        among them is an error.
    """
    df = _table(labels, name)
    if len(df) != n:
        raise ValueError(f"{name} has {len(df)} rows but there are {n} images")
    if df.shape[1] == 0:
        raise ValueError(f"{name} has no task columns")
    tasks = [str(c) for c in df.columns]
    codes = np.full((n, len(tasks)), MISSING, dtype=np.int32)
    found: List[list] = []
    for t, column in enumerate(df.columns):
        values = df[column]
        present = ~values.isna().to_numpy()
        known = sorted(set(values[present].tolist()), key=str) if classes is None else classes[t]
        if classes is None and len(known) < 2:
            raise ValueError(f"task {tasks[t]!r} needs labels of at least 2 classes; got "
                             f"{known}")
        index = {c: i for i, c in enumerate(known)}
        unknown = sorted({v for v in values[present].tolist() if v not in index}, key=str)
        if unknown:
            raise ValueError(f"{name}: task {tasks[t]!r} has labels {unknown[:5]} not among "
                             f"its training classes {known}")
        codes[present, t] = [index[v] for v in values[present].tolist()]
        found.append(list(known))
    return TaskTable(codes, tasks, found)


def missingness_strata(codes: np.ndarray) -> np.ndarray:
    """One stratum id per row: rows share a stratum when the same tasks are labelled."""
    _, ids = np.unique(codes != MISSING, axis=0, return_inverse=True)
    return ids.reshape(-1)


def parse_task_weights(task_weights: TaskWeights, tasks: List[str]) -> Optional[np.ndarray]:
    """``None`` for adaptive weighting; otherwise one fixed weight per task.

    ``None`` or ``"none"``: every task weight 1; ``"adaptive"``: learned (Kendall et al.
    2018); a dict of task -> weight or a list in task order: those (>= 0, not all 0)."""
    if task_weights is None or task_weights == "none":
        return np.ones(len(tasks), dtype=np.float32)
    if task_weights == "adaptive":
        return None
    if isinstance(task_weights, str):
        raise ValueError(f"task_weights must be 'none', 'adaptive', a dict of task -> weight "
                         f"or a list of weights; got {task_weights!r}")
    if isinstance(task_weights, Mapping):
        extra = sorted(set(map(str, task_weights)) - set(tasks))
        if extra or set(map(str, task_weights)) != set(tasks):
            raise ValueError(f"task_weights must give a weight for each task {tasks}; got "
                             f"{sorted(map(str, task_weights))}")
        weights = [task_weights[t] for t in tasks]
    else:
        weights = list(task_weights)
        if len(weights) != len(tasks):
            raise ValueError(f"task_weights has {len(weights)} weights for {len(tasks)} tasks "
                             f"{tasks}")
    if any(isinstance(w, bool) or not isinstance(w, numbers.Real) or not np.isfinite(w)
           or w < 0 for w in weights) or not any(weights):
        raise ValueError(f"task_weights must be finite numbers >= 0, not all 0; got {weights}")
    return np.asarray(weights, dtype=np.float32)


def describe(table: TaskTable) -> Dict[str, Any]:
    """Tasks, their classes and label counts, for ``config.yaml``."""
    present = table.codes != MISSING
    return {"tasks": list(table.tasks),
            "task_classes": {t: [str(c) for c in cs] for t, cs in zip(table.tasks,
                                                                    table.classes)},
            "task_label_counts": {t: int(n) for t, n in zip(table.tasks, present.sum(axis=0))}}
