"""The original patchwork's keywords, in one table (TF-free).

Code written for the original project keeps running with only its import changed
(docs/migrating.md). Its keyword names that changed are in :data:`LEGACY_NAMES` and are taken,
as they are, by the feature trainers (:meth:`FeatureTrainerOptions.from_dict`) and
:func:`~patchwork_widget.models.distill`; its values that changed name are aliases of their
:class:`~patchwork_widget.options.checks.Choice` (``opt_type="momentum"`` is ``"sgd"``,
``decay_type="warmupcosine"`` is ``"warmup_cosine"``, ``"none"`` is ``"constant"``).
The original GUI's keywords are in :data:`GUI_KEYWORDS`: each is mapped to what it means here,
with a ``DeprecationWarning``; a value that cannot mean anything here is refused with the
reason. This project's own keywords that were renamed (so that one thing has one name, see
docs/architecture.md, "Names") are in :data:`RENAMED`, taken the same way by
:func:`take_renamed`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["GUI_KEYWORDS", "LEGACY_NAMES", "RENAMED", "GuiKeyword", "legacy_names_for",
           "rename_legacy", "take_renamed", "translate_gui_keywords"]

# The original's keyword -> this project's name (feature trainers and distill()).
LEGACY_NAMES: dict[str, str] = {
    "opt_type": "optimizer",
    "lr": "learning_rate",
    "decay_type": "schedule",
    "lr_decay": "decay_steps",  # 0: no decay, i.e. schedule="constant"
    "temp": "temperature",
    "class_names": "classes",
}


def legacy_names_for(names: Collection[str]) -> set[str]:
    """The original's keywords that stand for one of ``names``."""
    return {old for old, new in LEGACY_NAMES.items() if new in names}


def rename_legacy(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with the original's keywords (:data:`LEGACY_NAMES`) renamed.

    ``lr_decay=0`` (the original's "no decay") becomes ``schedule="constant"`` and no
    ``decay_steps``.

    Raises
    ------
    ValueError
        When an original name and its new name are both given.
    """
    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key, value in given.items():
        name = LEGACY_NAMES.get(key, key)
        if name in out:
            raise ValueError(f"{source[name]!r} and {key!r} are the same option: give one")
        out[name], source[name] = value, key
    if source.get("decay_steps") == "lr_decay" and not isinstance(out["decay_steps"], bool) \
            and out["decay_steps"] == 0:
        del out["decay_steps"]
        out["schedule"] = "constant"
    return out


@dataclass(frozen=True)
class GuiKeyword:
    """One keyword of the original GUI and what it is here.

    ``target`` is this project's argument it becomes (``"train.augment"``: a field of the
    Train tab's options; ``"fixmatch.strong_aug"``: of the Model tab's FixMatch options;
    ``"ignored"``: nothing; ``"refused"``: a ``TypeError`` saying ``why``), ``convert`` turns the original's value into it (raising
    ``ValueError`` for a value that means nothing here), and ``why`` is said in the
    ``DeprecationWarning``.
    """

    why: str
    target: str
    convert: Callable[[Any], Any] | None = None


def _logdir(value: Any) -> Any:
    """The original wrote its labels under ``logdir``: the label file goes there (the folder
    is made when missing, as the original did)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"logdir must be a folder path; got {value!r}")
    os.makedirs(value, exist_ok=True)
    return os.path.join(os.fspath(value), "patchwork_labels.csv")


def _norm(value: Any) -> Any:
    """The widget divides pixel values by their type's range: 255 for 8-bit images."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                         and value == 255):
        return None
    raise ValueError(f"norm={value!r} cannot be honoured: the widget divides pixel values by "
                     "their type's range (255 for 8-bit images, as the original's norm=255 "
                     "did); scale the images or pre-extract features to use another factor")


GUI_KEYWORDS: dict[str, GuiKeyword] = {
    "feature_vecs": GuiKeyword("pre-extracted features are features=...", "features"),
    "norm": GuiKeyword("pixel values are divided by their type's range (255 for 8-bit images, "
                       "the original's norm=255)", "ignored", _norm),
    "strong_aug": GuiKeyword("FixMatch's strong augmentation is a model option: "
                             "session.build_model(fixmatch={'strong_aug': ...}) or the Model "
                             "tab", "fixmatch.strong_aug"),
    "fixmatch_aug": GuiKeyword("FixMatch's strong augmentation is a model option: "
                               "session.build_model(fixmatch={'strong_aug': ...})",
                               "fixmatch.strong_aug"),
    "aug": GuiKeyword("augmentation of labelled images is a training option: "
                      "TrainOptions(augment=...) or the Train tab", "train.augment"),
    "logdir": GuiKeyword("labels and their journal go to outfile=...; logdir=D means "
                         "outfile=D/patchwork_labels.csv", "outfile", _logdir),
    "num_parallel_calls": GuiKeyword("images are read by the kernel's thumbnail and training "
                                     "pipelines, which size their own workers; it is ignored",
                                     "ignored"),
    "dim": GuiKeyword("the grid is laid out by the widget to fit its cells; it is ignored",
                      "ignored"),
    "tracking_uri": GuiKeyword("the widget does not log to MLflow (the feature trainers do: "
                               "trainer.track_with_mlflow()); drop the argument", "refused"),
    "experiment_name": GuiKeyword("the widget does not log to MLflow (the feature trainers do: "
                                  "trainer.track_with_mlflow()); drop the argument", "refused"),
    "strategy": GuiKeyword("the widget trains its small models on the default device; drop "
                           "the argument (the feature trainers and distill() take a strategy)",
                           "refused"),
}


def translate_gui_keywords(given: Mapping[str, Any]) -> dict[str, Any]:
    """The original GUI's keywords in ``given`` as this project's arguments (``target`` ->
    value), with one ``DeprecationWarning`` per keyword.

    Raises
    ------
    TypeError
        For a keyword that is neither this project's nor the original's, or an original one
        that cannot mean anything here (the message names it and says why).
    ValueError
        For an original keyword's value that means nothing here, saying why.
    """
    unknown = sorted(k for k in given if k not in GUI_KEYWORDS)
    refused = sorted(k for k in given if k in GUI_KEYWORDS and GUI_KEYWORDS[k].target == "refused")
    if unknown or refused:
        lines = [f"PatchworkWidget got unknown argument(s) {unknown + refused}"]
        lines += [f"  {name} (the original GUI's): {GUI_KEYWORDS[name].why}" for name in refused]
        raise TypeError("\n".join(lines) + "\n(see help(PatchworkWidget) and docs/migrating.md)")
    out: dict[str, Any] = {}
    for name, value in given.items():
        keyword = GUI_KEYWORDS[name]
        warnings.warn(f"PatchworkWidget({name}=...) is the original GUI's keyword: "
                      f"{keyword.why}", DeprecationWarning, stacklevel=3)
        value = value if keyword.convert is None else keyword.convert(value)
        if keyword.target == "ignored":
            continue
        if keyword.target in out:
            raise TypeError(f"{keyword.target} is given twice under the original GUI's names")
        out[keyword.target] = value
    return out


# This project's keywords that were renamed: callable -> {old name: new name}. The old name
# keeps working with a DeprecationWarning (docs/architecture.md, "Names").
RENAMED: dict[str, dict[str, str]] = {
    "PatchworkWidget": {"df_or_path": "source"},
    "LabelStore.open": {"path": "outfile"},
    "serve": {"project": "outfile"},
    "rank": {"scores": "propagation"},
    "available_orders": {"scores": "propagation"},
}


def take_renamed(where: str, given: Mapping[str, Any], extra: dict[str, Any], *,
                 required: Collection[str] = (), others: bool = False,
                 depth: int = 0) -> dict[str, Any]:
    """``given`` (new name -> value, None when not given) with the old names of :data:`RENAMED`
    ``[where]`` that ``extra`` (a ``**kwargs`` dict) holds taken out of it as their new names,
    one ``DeprecationWarning`` each (pointing at the caller of ``where``, ``depth`` frames
    further out when ``where`` calls this through helpers).

    Raises
    ------
    TypeError
        When a name and its old name are both given, a ``required`` name is given under
        neither, or (unless ``others``) ``extra`` holds any other keyword.
    """
    out = dict(given)
    for old, new in RENAMED[where].items():
        if old not in extra:
            continue
        value = extra.pop(old)
        if out.get(new) is not None:
            raise TypeError(f"{where}() got {new}= and its old name {old}=: give {new}= only")
        warnings.warn(f"{where}({old}=...) is now {where}({new}=...): the old name will go",
                      DeprecationWarning, stacklevel=3 + depth)
        out[new] = value
    if extra and not others:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {sorted(extra)}")
    for name in required:
        if out.get(name) is None:
            raise TypeError(f"{where}() missing its argument {name!r}")
    return out
