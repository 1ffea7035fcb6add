"""A property-based sweep of the public API with bad arguments (issue 10).

For each public callable: a cheap valid baseline call, then ONE argument at a time replaced by a
bad value drawn for its declared type. Every bad call must raise ``TypeError`` or ``ValueError``
(or a project subclass of them) whose message names the argument: never a raw numpy, pandas or
TensorFlow error, a ``KeyError``/``IndexError``, and never silent acceptance. Each callable also
refuses an unknown keyword argument, naming it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import write_pngs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwork_widget.options.params import Param, Shape
from patchwork_widget.options.training import BATCH_SIZE, LEARNING_RATE, WEIGHT_DECAY

NAN, INF = math.nan, math.inf

# Bad values per declared type. Each list holds values a caller could plausibly pass by mistake.
BAD: dict[str, list[Any]] = {
    "str_list": ["cat", 3, [], None, [1, 2], ["a", ""], ["a", "a"]],
    "str_list0": ["cat", 3, None, [1, 2], ["a", ""], ["a", "a"]],  # may be empty
    "opt_str_list": ["cat", 3, [], [1, 2], ["a", ""], ["a", "a"]],
    "opt_str_list0": ["cat", 3, [1, 2], ["a", ""], ["a", "a"]],
    "path_list": ["img.png", 3, [], None, [1, 2]],
    "path_list0": ["img.png", 3, None, [1, 2]],  # may be empty
    "str": [3, None, "", ["a"], 1.5],
    "opt_str": [3, "", ["a"], 1.5],
    "text": [3, None, ["a"], 1.5],
    "path": [3, None, ["a"], 1.5],
    "opt_path": [3, ["a"], 1.5],
    "pos_int": [0, -1, 1.5, "3", None, True, NAN],
    "opt_pos_int": [0, -1, 1.5, "3", True, NAN],
    "nonneg_int": [-1, 1.5, "3", None, True],
    "opt_nonneg_int": [-1, 1.5, "3", True],
    "int_seed": [-1, 1.5, "3", True],
    "pos_float": [0.0, -1.0, NAN, INF, "1", None, True],
    "opt_pos_float": [0.0, -1.0, NAN, INF, "1", True],
    "nonneg_float": [-1.0, NAN, INF, "1", None, True],
    "opt_nonneg_float": [-1.0, NAN, INF, "1", True],
    "prob": [-0.1, 1.5, NAN, INF, "0.5", None, True],
    "bool": ["yes", 2, None, 1.5],
    "opt_bool": ["yes", 2, 1.5],
    "opt_target": [0.5, 1.0, -0.1, 1.5, NAN, "0.9", True],  # a precision in (0.5, 1), or None
    "every": ["yes", 0, -1, None, 1.5],  # True/False or every N-th epoch
    "imshape": [(0, 8), (8,), "64", 64, (8.5, 8), (-1, 8), (8, 8, 8)],
    "feature_shape": [(0,), (-1,), "64", 64, (8.5,), (), (1, 2), (1, 2, 3, 4)],
    "opt_imshape": [(0, 8), (8,), "64", 64, (8.5, 8), (-1, 8)],
    "df": ["x", None, [1, 2], np.zeros(3), {"filepath": ["a"]}],
    "features": ["x", None, np.zeros(4), np.full((4, 3), NAN), np.zeros((3, 3)), [[1, "a"]] * 4],
    "opt_training_data": ["img.png", 3, [], [1, 2], {"a": 1}],
    "free_features": ["x", None, np.zeros(4), np.full((4, 3), NAN), [[1, "a"]] * 4],
    "opt_features": ["x", np.zeros(4), np.full((4, 3), NAN), np.zeros((3, 3))],
    # NaN in predictions means "missing" (an unreadable image) and is allowed
    "probs": ["x", None, np.zeros(4), np.zeros((3, 2)), np.full((4, 2), 2.), np.full((4, 2), INF)],
    "scores": ["x", None, np.zeros(4), np.full((4, 2), 2.), np.full((4, 2), INF), np.zeros((4, 3))],
    "logits": ["x", None, np.zeros(4), np.zeros((3, 2)), np.full((4, 2), INF)],
    "labels01": ["x", None, np.zeros(3), np.full((4, 2), 7.0), np.zeros(5)],
    "mask": ["x", None, np.zeros(3, dtype=bool), np.zeros(4), np.ones((4, 1), dtype=bool)],
    "rng": [None, 3, "rng"],
    "object": [3, "big", {"max_pixels": 1}],  # where one options/limits object is expected
    "opt_options": ["anon", 3, [("anon", True)], {1: True}],  # a dict of keywords, or None
    "pool_labels": ["x", None, np.zeros(3), np.full(40, NAN)],
    "int_list": ["32", 3, [], None, [0, 4], [1.5]],
    "rows": ["0", None, [], [99], [0, 0], [1.5], True],
    "changes": [None, {}, {"nope": 1}, {"cat": 7}, "cat", [("cat", 1)]],
    "order": [3, None, "no such order", {"nam": "random"}, ["random"]],
}


DECLARED = "declared"  # a field whose bad values its options class declares


def _options_class(name: str) -> Any:
    """The options dataclass ``name`` (of ``patchwork_widget.options`` or its ``project``)."""
    import patchwork_widget.options as options
    import patchwork_widget.options.project as project

    return getattr(options, name, None) or getattr(project, name)


def _declared(name: str) -> list[str]:
    """The declared fields of options class ``name``."""
    return list(_options_class(name).CONSTRAINTS)


def _project_fields(names: Any) -> dict[str, str]:
    """Rows for the open-a-project fields ``names`` an entry point takes: their bad values
    are the ones ``ProjectOptions.CONSTRAINTS`` declares."""
    return {name: DECLARED for name in names}


def _project(group: str | None = None) -> tuple[str, ...]:
    """The fields of ``group`` (``"STORE_FIELDS"``, ...) of ProjectOptions; None: all."""
    import patchwork_widget.options.project as project

    return project.ProjectOptions.names() if group is None else getattr(project, group)


@dataclass
class Case:
    """One public callable: how to call it and which arguments get which bad values: a kind
    of ``BAD``, ``DECLARED`` (an options field) or the declared constraint a plain function
    checks the argument against (a ``Param`` or constraint of ``options/params.py``)."""

    name: str
    call: Callable[..., Any]
    baseline: Callable[[Env], dict[str, Any]]
    bad: dict[str, Any]
    tf: bool = False
    unknown_kw: bool = True  # whether an unknown keyword argument must be refused
    declared_by: str | None = None  # the options class declaring the DECLARED rows' limits


@dataclass
class Env:
    """Tiny real data shared by every baseline call."""

    tmp: Path
    paths: list[str]
    counter: list[int] = field(default_factory=lambda: [0])

    def fresh(self, suffix: str = "") -> Path:
        self.counter[0] += 1
        return self.tmp / f"out{self.counter[0]}{suffix}"

    @property
    def df(self) -> pd.DataFrame:
        from patchwork_widget.labels import prep_label_dataframe

        df = prep_label_dataframe(self.paths, ["cat", "dog"])
        df.loc[0, "cat"] = 1.0
        df.loc[1, "cat"] = 0.0
        df.loc[2, "dog"] = 1.0
        df.loc[3, "dog"] = 0.0
        return df

    @property
    def features(self) -> np.ndarray:
        return np.random.default_rng(0).normal(size=(len(self.paths), 3)).astype(np.float32)


def _lazy(module: str, name: str) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        import importlib

        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        return target(**kwargs)

    call.__name__ = name
    call.target = (module, name)  # type: ignore[attr-defined]
    return call


def _target(module: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a helper that calls ``module.name`` (for the signature checks below)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.target = (module, name)  # type: ignore[attr-defined]
        return fn

    return mark


@_target("patchwork_widget.labels", "LabelStore.open")
def _store_open(**kwargs: Any) -> Any:
    from patchwork_widget.labels import LabelStore

    store = LabelStore.open(**kwargs)
    store.close(export=False)
    return store


@_target("patchwork_widget.widget", "PatchworkWidget")
def _widget(**kwargs: Any) -> Any:
    from patchwork_widget.widget import PatchworkWidget

    widget = PatchworkWidget(**kwargs)
    widget.close()
    return widget


@_target("patchwork_widget.session", "Session.open")
def _session_open(**kwargs: Any) -> Any:
    from patchwork_widget.session import Session

    session = Session.open(**kwargs)
    session.close()
    return session


@_target("patchwork_widget.active", "rank")
def _rank(**kwargs: Any) -> Any:
    from patchwork_widget.active import rank

    return rank(**kwargs)


L = "patchwork_widget.labels"
I = "patchwork_widget.images"
A = "patchwork_widget.active"
O = "patchwork_widget.options"
M = "patchwork_widget.models"

CASES: list[Case] = [
    # labels
    Case("prep_label_dataframe", _lazy(L, "prep_label_dataframe"),
         lambda e: {"filepaths": e.paths, "classes": ["cat", "dog"]},
         {"filepaths": "path_list0", "classes": "str_list0"}),
    Case("validate_label_dataframe", _lazy(L, "validate_label_dataframe"),
         lambda e: {"df": e.df}, {"df": "df"}),
    Case("class_columns", _lazy(L, "class_columns"), lambda e: {"df": e.df}, {"df": "df"}),
    Case("add_class", _lazy(L, "add_class"), lambda e: {"df": e.df, "name": "bird"},
         {"df": "df", "name": "str"}),
    Case("remove_class", _lazy(L, "remove_class"), lambda e: {"df": e.df, "name": "cat"},
         {"df": "df", "name": "str"}),
    Case("rename_class", _lazy(L, "rename_class"),
         lambda e: {"df": e.df, "old": "cat", "new": "kitten"},
         {"df": "df", "old": "str", "new": "str"}),
    Case("merge_classes", _lazy(L, "merge_classes"),
         lambda e: {"df": e.df, "a": "cat", "b": "dog", "into": "pet"},
         {"df": "df", "a": "str", "b": "str", "into": "opt_str"}),
    Case("label_counts", _lazy(L, "label_counts"), lambda e: {"df": e.df}, {"df": "df"}),
    Case("load_labels", _lazy(L, "load_labels"), lambda e: {"source": e.df},
         {"source": "df"}),
    Case("save_labels", _lazy(L, "save_labels"),
         lambda e: {"df": e.df, "path": str(e.fresh(".csv"))}, {"df": "df", "path": "path"}),
    Case("journal_path", _lazy(L, "journal_path"), lambda e: {"export_path": "x.csv"},
         {"export_path": "path"}),
    Case("LabelStore.open", _store_open,
         lambda e: {"outfile": str(e.fresh(".csv")), "df": e.df, "user": "ann"},
         {"outfile": "path", "df": "df", "user": "opt_str", "read_only": "bool",
          "wait": "nonneg_float", **_project_fields(_project("STORE_FIELDS"))},
         declared_by="ProjectOptions"),
    # images
    Case("read_image", _lazy(I, "read_image"), lambda e: {"path": e.paths[0], "imshape": (8, 8)},
         {"path": "path", "imshape": "opt_imshape", "num_channels": "pos_int",
          "norm": "opt_pos_float", "single_channel": "bool", "limits": "object"}),
    Case("read_images", _lazy(I, "read_images"), lambda e: {"paths": e.paths, "imshape": (8, 8)},
         {"paths": "path_list0", "imshape": "opt_imshape", "num_channels": "pos_int",
          "norm": "opt_pos_float", "single_channel": "bool", "num_workers": "pos_int",
          "limits": "object"}),
    Case("Storage", _lazy(I, "Storage"), lambda e: {"cache_folder": str(e.fresh())},
         {"storage_options": "opt_options", "cache_folder": "opt_path",
          "cache_bytes": "nonneg_int"}),
    Case("read_array", _lazy(I, "read_array"), lambda e: {"path": e.paths[0]},
         {"path": "path", "limits": "object"}),
    Case("ReadLimits", _lazy(I, "ReadLimits"), lambda e: {"max_pixels": 100, "max_bytes": 100},
         {"max_pixels": "pos_int", "max_bytes": "pos_int"}),
    # active
    Case("OrderChoice", _lazy(A, "OrderChoice"),
         lambda e: {"name": "random", "random_fraction": 0.5},
         {"name": "str", "random_fraction": "prob"}),
    Case("order_options", _lazy(A, "order_options"), lambda e: {"classes": ["cat", "dog"]},
         {"classes": "str_list0", "available": "opt_str_list0"}),
    Case("available_orders", _lazy(A, "available_orders"), lambda e: {"probs": None}, {}),
    Case("rank", _rank,
         lambda e: {"order": "random", "candidates": np.ones(4, dtype=bool), "count": 2,
                    "rng": np.random.default_rng(0), "probs": np.full((4, 2), 0.5)},
         {"order": "order", "candidates": "mask", "count": "pos_int", "rng": "rng"}),
    # options: the bad values come from each dataclass's declared limits (CONSTRAINTS)
    *[Case(name, _lazy(O, name), lambda e: {}, {f: DECLARED for f in _declared(name)},
           declared_by=name)
      for name in ("TrainOptions", "FineTuneOptions", "LossOptions", "FixMatchOptions",
                   "FeatureTrainerOptions")],
    Case("ProjectOptions", _lazy(O + ".project", "ProjectOptions"), lambda e: {},
         _project_fields(_project()), declared_by="ProjectOptions"),
    Case("parse_spec", _lazy(O, "parse_spec"), lambda e: {"spec": "8,p"}, {"spec": "text"}),
    # datasets
    Case("demo_features", _lazy("patchwork_widget.datasets", "demo_features"),
         lambda e: {"paths": e.paths}, {"paths": "path_list"}),
    Case("build_demo_dataset", _lazy("patchwork_widget.datasets", "build_demo_dataset"),
         lambda e: {"outdir": str(e.fresh()), "n_per_class": 1, "patch_size": 16},
         {"outdir": "path", "seed": "int_seed", "patch_size": "pos_int",
          "n_per_class": "pos_int", "multi_label_fraction": "prob"}),
    Case("load_demo_dataset", _lazy("patchwork_widget.datasets", "load_demo_dataset"),
         lambda e: {"outdir": str(e.fresh()), "n_per_class": 1, "patch_size": 16},
         {"outdir": "opt_path", "seed": "int_seed", "patch_size": "pos_int",
          "n_per_class": "pos_int", "multi_label_fraction": "prob"}),
    # active learning tools users call directly (docs/active_learning.md)
    Case("propagate", _lazy("patchwork_widget.active.propagate", "propagate"),
         lambda e: {"graph": _graph(4), "labels": np.array([[1.0], [0.0], [NAN], [NAN]]), "max_iter": 5},
         {"graph": "df", "labels": "labels01", "method": "str", "alpha": "prob",
          "iterations": "pos_int", "tol": "pos_float", "max_iter": "pos_int"}),
    Case("pseudo_label_frame", _lazy("patchwork_widget.active.propagate", "pseudo_label_frame"),
         lambda e: {"scores": np.full((4, 2), 0.95), "classes": ["cat", "dog"]},
         {"scores": "scores", "classes": "str_list", "threshold": "prob"}),
    # models (numpy)
    Case("calibration_error", _lazy(M, "calibration_error"),
         lambda e: {"probs": np.full((4, 2), 0.5), "labels": np.eye(4, 2)},
         {"probs": "probs", "labels": "labels01", "bins": "pos_int"}),
    Case("macro_auc", _lazy(M, "macro_auc"),
         lambda e: {"probs": np.full((4, 2), 0.5), "labels": np.array([[1, 0], [0, 1]] * 2, dtype=float)},
         {"probs": "probs", "labels": "labels01"}),
    Case("class_metrics", _lazy(M, "class_metrics"),
         lambda e: {"probs": np.full((4, 2), 0.5), "labels": np.array([[1, 0], [0, 1]] * 2, dtype=float)},
         {"probs": "probs", "labels": "labels01"}),
    Case("platt_scaling", _lazy(M, "platt_scaling"),
         lambda e: {"z": np.array([[-1.0, 1.0], [1.0, -1.0]] * 2), "labels":
                    np.array([[0, 1], [1, 0]] * 2, dtype=float)},
         {"z": "logits", "labels": "labels01"}),
    # widget and session
    # the open-a-project fields: their rows come from ProjectOptions' declared limits; the
    # features' row count is the one limit that is not data (it is the table's length)
    Case("PatchworkWidget", _widget,
         lambda e: {"source": e.df, "outfile": str(e.fresh(".csv"))},
         {"source": "df", **_project_fields(_project()), "features": "opt_features"},
         declared_by="ProjectOptions"),
    Case("Session.open", _session_open,
         lambda e: {"source": e.df, "outfile": str(e.fresh(".csv"))},
         {"source": "df", **_project_fields(n for n in _project() if n != "keys"),
          "features": "opt_features"}, declared_by="ProjectOptions"),
    Case("Subset", _lazy(A, "Subset"), lambda e: {"kind": "unlabeled"}, {"kind": "str"}),
    Case("subset_mask", _lazy(A, "subset_mask"),
         lambda e: {"df": e.df, "classes": ["cat", "dog"], "subset": _subset()},
         {"df": "df", "classes": "str_list0", "subset": "order"}),
    Case("knn_graph", _lazy("patchwork_widget.active.graph", "knn_graph"),
         lambda e: {"features": e.features, "k": 2},
         {"features": "free_features", "k": "pos_int", "temperature": "pos_float",
          "normalize": "bool", "recall": "prob"}),
    Case("compare_strategies", _lazy("patchwork_widget.active.simulate", "compare_strategies"),
         lambda e: {"features": _pool()[0], "labels": _pool()[1], "strategies": ["random"],
                    "model_factory": _logistic, "seed_size": 4, "query_size": 2, "rounds": 1,
                    "repeats": 1},
         {"features": "features", "labels": "pool_labels", "strategies": "str_list",
          "model_factory": "df", "seed_size": "pos_int", "query_size": "pos_int",
          "rounds": "nonneg_int", "repeats": "pos_int", "seed": "int_seed",
          "test_fraction": "prob", "json_path": "opt_path"}),
    Case("extract_features", _lazy("patchwork_widget.images.extract", "extract_features"),
         lambda e: {"files": e.paths, "extractor": _mean_extractor, "imshape": (8, 8),
                    "progress": False, "num_workers": 1},
         {"files": "path_list", "extractor": "df", "imshape": "imshape",
          "num_channels": "pos_int", "batch_size": "pos_int", "num_workers": "pos_int",
          "progress": "bool", "resume": "bool", "memmap_path": "opt_path",
          "chunk_rows": "opt_pos_int"}),
    Case("load_folder", _lazy("patchwork_widget.datasets", "load_folder"),
         lambda e: {"folder": str(Path(e.paths[0]).parent)},
         {"folder": "path", "recursive": "bool", "max_images": "opt_pos_int",
          "max_bytes": "opt_pos_int", "storage_options": "opt_options"}),
    Case("Backbone", _lazy("patchwork_widget.options.backbones", "Backbone"),
         lambda e: {"name": "resnet50", "weights": None},
         {"name": "str", "image_size": "opt_imshape"}),
    Case("linear_classification_test", _lazy("patchwork_widget.feature.evaluate",
                                              "linear_classification_test"),
         lambda e: {"features": _pool()[0], "labels": _pool()[1],
                    "test_mask": np.arange(40) % 4 == 0},
         {"features": "features", "labels": "pool_labels", "test_mask": "mask",
          "seed": "int_seed"}),
    Case("Session.sample", lambda **kw: _session_call("sample", **kw), lambda e: {"count": 2},
         {"count": "pos_int", "order": "order"}),
    Case("Session.annotate", lambda **kw: _session_call("annotate", **kw),
         lambda e: {"rows": [0], "changes": {"cat": 1}},
         {"rows": "rows", "changes": "changes", "seconds": "opt_nonneg_float"}),
    Case("Session.add_class", lambda **kw: _session_call("add_class", **kw),
         lambda e: {"name": "bird"}, {"name": "str"}),
    Case("Session.save", lambda **kw: _session_call("save", **kw),
         lambda e: {"path": str(e.fresh(".csv"))}, {"path": "opt_path"}),
    Case("validation_metrics", _lazy(M, "validation_metrics"),
         lambda e: {"predictions": _predictions(e), "df": e.df},
         {"predictions": "df", "df": "df", "classes": "opt_str_list"}, tf=True),
    Case("output_histograms", _lazy(M, "output_histograms"),
         lambda e: {"predictions": _predictions(e), "df": e.df},
         {"predictions": "df", "df": "df", "classes": "opt_str_list", "bins": "pos_int"},
         tf=True),
    Case("save_predictions", _lazy(M, "save_predictions"),
         lambda e: {"predictions": _predictions(e), "path": str(e.fresh(".csv"))},
         {"predictions": "df", "path": "path"}, tf=True),
    Case("load_predictions", _lazy(M, "load_predictions"),
         lambda e: {"path": _saved_predictions(e)}, {"path": "path"}, tf=True),
    Case("ResNetFCN", _lazy("patchwork_widget.feature", "ResNetFCN"),
         lambda e: {"filters": (4,)},
         {"num_channels": "pos_int", "filters": "int_list", "blocks_per_stage": "pos_int",
          "synchronized_bn": "bool", "name": "str"}, tf=True),
    Case("projection_head", _lazy("patchwork_widget.feature", "projection_head"),
         lambda e: {"in_channels": 4, "num_hidden": 4, "output_dim": 2},
         {"in_channels": "pos_int", "num_hidden": "nonneg_int", "output_dim": "pos_int",
          "batchnorm": "bool"}, tf=True),
    # TensorFlow: tiny and one step at most
    Case("build_models", _lazy(M, "build_models"),
         lambda e: {"classes": ["cat", "dog"], "feature_shape": (3,)},
         {"classes": "str_list", "feature_shape": "feature_shape"}, tf=True),
    Case("fit", lambda **kw: _fit(**kw),
         lambda e: {"df": e.df, "features": e.features, "options": _train_options()},
         {"df": "df", "features": "features", "options": "object"}, tf=True),
    Case("predict", lambda **kw: _predict(**kw),
         lambda e: {"df": e.df, "features": e.features},
         {"df": "df", "features": "opt_features", "batch_size": "opt_pos_int"}, tf=True),
    Case("make_schedule", _lazy(M, "make_schedule"),
         lambda e: {"schedule": "cosine", "lr": 0.1, "total_steps": 10, "steps_per_epoch": 2},
         {"schedule": "str", "lr": "pos_float", "total_steps": "nonneg_int",
          "steps_per_epoch": "nonneg_int", "decay_steps": "opt_pos_int",
          "warmup_steps": "opt_nonneg_int"}, tf=True),
    Case("SimCLRTrainer", lambda **kw: _trainer("SimCLRTrainer", **kw),
         lambda e: {"logdir": str(e.fresh()), "trainingdata": e.paths},
         {"logdir": "path", "trainingdata": "path_list", "temperature": "pos_float",
          "num_hidden": "nonneg_int", "output_dim": "pos_int", "batchnorm": "bool",
          "testdata": "opt_training_data"}, tf=True),
    Case("distill", _lazy(M, "distill"),
         lambda e: {"filepaths": e.paths, "teacher_outputs": np.full((4, 2), 0.5),
                    "student": "resnet_small", "classes": ["cat", "dog"], "epochs": 1,
                    "imshape": (32, 32), "batch_size": 2},
         {"filepaths": "path_list", "teacher_outputs": "probs", "student": "str",
          "classes": "opt_str_list", "epochs": "pos_int", "temperature": "pos_float",
          "imshape": Param(Shape()), "num_channels": "pos_int",
          "batch_size": Param(BATCH_SIZE), "learning_rate": Param(LEARNING_RATE),
          "weight_decay": Param(WEIGHT_DECAY), "seed": "int_seed",
          "logdir": "opt_path", "notes": "text", "decay_steps": "opt_pos_int"}, tf=True),
    Case("SimCLRTrainer.fit", lambda **kw: _trainer("SimCLRTrainer", logdir=kw.pop("logdir"),
                                                    trainingdata=kw.pop("paths")).fit(**kw),
         lambda e: {"logdir": str(e.fresh()), "paths": e.paths, "epochs": 1, "save": False,
                    "evaluate": False, "progress": False},
         {"epochs": "pos_int", "save": "every", "evaluate": "every", "progress": "bool"},
         tf=True),
    Case("augplot", _lazy("patchwork_widget.viz", "augplot"),
         lambda e: {"files": e.paths, "augment": True, "imshape": (8, 8), "num_images": 1,
                    "num_views": 1},
         {"files": "path_list", "augment": "bool", "imshape": "imshape",
          "num_images": "pos_int", "num_views": "pos_int", "seed": "int_seed"}, tf=True),
    Case("loaders.dataset", _lazy("patchwork_widget.loaders", "dataset"),
         lambda e: {"files": e.paths, "imshape": (8, 8), "batch_size": 2},
         {"files": "path_list", "imshape": "imshape", "num_channels": "pos_int",
          "norm": "opt_pos_float", "batch_size": "pos_int", "shuffle": "bool",
          "shuffle_buffer": "pos_int"}, tf=True),
]


def _subset() -> Any:
    from patchwork_widget.active import Subset

    return Subset("unlabeled")


def _pool() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 2
    return rng.normal(size=(40, 3)) + labels[:, None], labels


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


def _mean_extractor(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2))


def _session_call(method: str, **kwargs: Any) -> Any:
    import tempfile

    from patchwork_widget.labels import prep_label_dataframe
    from patchwork_widget.session import Session

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(Path(tmp) / "images", 4, size=8)
        session = Session.open(prep_label_dataframe(paths, ["cat", "dog"]),
                               outfile=str(Path(tmp) / "labels.csv"))
        try:
            return getattr(session, method)(**kwargs)
        finally:
            session.close()


def _predictions(env: Env) -> pd.DataFrame:
    return pd.DataFrame({"cat": [0.9, 0.1, 0.5, 0.5], "dog": [0.5, 0.5, 0.8, 0.2]})


def _saved_predictions(env: Env) -> str:
    from patchwork_widget.models import save_predictions

    path = str(env.fresh(".csv"))
    save_predictions(_predictions(env), path)
    return path


def _graph(n: int) -> Any:
    import scipy.sparse as sp

    dense = np.ones((n, n)) - np.eye(n)
    return sp.csr_matrix(dense)


def _train_options() -> Any:
    from patchwork_widget.options import TrainOptions

    return TrainOptions(solver="lbfgs", max_iter=1, calibrate=False)


def _fit(**kwargs: Any) -> Any:
    from patchwork_widget.models import build_models, fit

    models = build_models(["cat", "dog"], feature_shape=(3,))
    options = kwargs.pop("options")
    return fit(models, options=options, **kwargs)


def _predict(**kwargs: Any) -> Any:
    from patchwork_widget.models import build_models, predict

    return predict(build_models(["cat", "dog"], feature_shape=(3,)), **kwargs)


def _trainer(name: str, **kwargs: Any) -> Any:
    from patchwork_widget import feature
    from patchwork_widget.feature import FeatureTrainerOptions, ResNetFCN

    fcn = ResNetFCN(filters=(4,), blocks_per_stage=1)
    options = FeatureTrainerOptions(imshape=(8, 8), batch_size=2)
    return getattr(feature, name)(fcn=fcn, options=options, **kwargs)


# ---------------------------------------------------------------------------------------------
# The classification shared by the tests and the before/after count.

OK, RAW, SILENT, UNNAMED = "rejected clearly", "raw error", "silently accepted", "message unnamed"


def classify(case: Case, env: Env, arg: str, value: Any) -> tuple[str, str]:
    """How the call with ``arg=value`` (every other argument at its baseline) ends."""
    kwargs = case.baseline(env)
    kwargs[arg] = value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.call(**kwargs)
    except (TypeError, ValueError) as e:
        message = str(e)
        if arg in message:
            return OK, message
        return UNNAMED, f"{type(e).__module__}.{type(e).__name__}: {message}"
    except Exception as e:  # noqa: BLE001 - any other error is what the sweep reports as raw
        return RAW, f"{type(e).__module__}.{type(e).__name__}: {e}"
    return SILENT, repr(value)


def _has_tf() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    tmp = tmp_path_factory.mktemp("sweep")
    return Env(tmp, write_pngs(tmp / "images", 4, size=8))


def _values(case: Case, arg: str) -> list[Any]:
    """The bad values the sweep passes for ``arg``: the declared limits' for an options
    field, else the list for its type."""
    kind = case.bad[arg]
    if kind == DECLARED:
        return _options_class(case.declared_by).CONSTRAINTS[arg].invalid()
    if hasattr(kind, "invalid"):  # the declared constraint the function checks it against
        return kind.invalid()
    return list(BAD[kind])


def _marks(case: Case) -> list[Any]:
    if case.tf and not _has_tf():
        return [pytest.mark.skip(reason="needs TensorFlow")]
    return []


def _sweep_params(tf: bool) -> list[Any]:
    params = []
    for case in CASES:
        if case.tf != tf:
            continue
        for arg in case.bad:
            if _values(case, arg):
                params.append(pytest.param(case, arg, id=f"{case.name}-{arg}",
                                           marks=_marks(case)))
        if case.unknown_kw:
            params.append(pytest.param(case, "unknown_kw", id=f"{case.name}-unknown_kw",
                                       marks=_marks(case)))
    return params


def _resolved(case: Case) -> Any:
    import importlib

    module, name = case.call.target  # type: ignore[attr-defined]
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


TARGETED = [c for c in CASES if hasattr(c.call, "target")]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks(c)) for c in TARGETED])
def test_rows_follow_the_signatures_and_declarations(case: Case) -> None:
    """Every row names a parameter of the callable's signature; a callable's declared
    parameters (an options class's CONSTRAINTS, the open-a-project fields an entry point
    takes) are all swept, so a new field is swept without a new row."""
    import inspect

    target = _resolved(case)
    params = inspect.signature(target).parameters
    assert set(case.bad) <= set(params), sorted(set(case.bad) - set(params))
    if case.declared_by is not None:
        declared = set(_declared(case.declared_by))
        entry = target.__init__ if isinstance(target, type) else target
        taken = set(getattr(entry, "option_names", declared)) & set(params)
        assert taken <= set(case.bad), sorted(taken - set(case.bad))
        assert {a for a, kind in case.bad.items() if kind == DECLARED} <= declared


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks(c)) for c in CASES])
def test_baseline_is_valid(case: Case, env: Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.call(**case.baseline(env))


def _check_one_bad_call(case: Case, arg: str, env: Env, data: Any) -> None:
    if arg == "unknown_kw":
        name = data.draw(st.sampled_from(["outfiel", "imshpe", "clases", "bogus_kw"]))
        outcome, detail = classify(case, env, name, 1)
    else:
        value = data.draw(st.sampled_from(_values(case, arg)), label=arg)
        outcome, detail = classify(case, env, arg, value)
    assert outcome == OK, f"{case.name}({arg}=...): {outcome}: {detail}"


@pytest.mark.parametrize("case, arg", _sweep_params(tf=False))
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bad_argument_is_refused_by_name(case: Case, arg: str, env: Env, data: Any) -> None:
    _check_one_bad_call(case, arg, env, data)


@pytest.mark.parametrize("case, arg", _sweep_params(tf=True))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bad_argument_is_refused_by_name_tf(case: Case, arg: str, env: Env, data: Any) -> None:
    """As above for callables that build TensorFlow models: fewer draws, each costs more."""
    _check_one_bad_call(case, arg, env, data)


# ---------------------------------------------------------------------------------------------
# The shared array check itself (options/checks.py), on what the sweep's small values miss.


def test_check_array_accepts_empty_arrays() -> None:
    """A model with no validation rows yet has empty label and prediction matrices."""
    from patchwork_widget.options.checks import check_array

    assert check_array("labels", np.zeros((0, 2)), 2, values=(0.0, 1.0)).shape == (0, 2)


def test_check_array_counts_bad_values_in_every_chunk() -> None:
    from patchwork_widget.options.checks import check_array

    x = np.zeros((70_000, 2), dtype=np.float32)
    x[[0, 65_536, 69_999], 1] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"features must be finite; got 3 NaN or infinite"):
        check_array("features", x, 2)
    with pytest.raises(ValueError, match=r"probs must be finite; got 2 infinite"):
        check_array("probs", x, 2, allow_nan=True)
    assert check_array("features", x, 2, finite=False) is x  # not scanned, not copied
