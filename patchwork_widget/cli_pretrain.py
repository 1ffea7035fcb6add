"""``patchwork-widget pretrain CONFIG.yaml``: any feature trainer from a YAML file (B6).

The file holds the keys of this command (:data:`RUN_KEYS`) and, beside them, the trainer's
keyword arguments with the same names and values as in Python (its own hyperparameters, the
fields of :class:`~patchwork_widget.options.FeatureTrainerOptions` and the original's names
``lr``, ``opt_type``, ``decay_type``, ``lr_decay``). An unknown key fails, listing the valid
ones. The trainer writes the same records as from Python (``config.yaml``, TensorBoard) and
``fcn.keras`` into ``logdir``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Set

import yaml

# trainer name in the YAML -> class name in patchwork_widget.feature (those that exist)
TRAINERS = {
    "simclr": "SimCLRTrainer",
    "hcl": "HCLTrainer",
    "moco": "MomentumContrastTrainer",
    "deepcluster": "DeepClusterTrainer",
    "detcon": "DetConTrainer",
    "context_encoder": "ContextEncoderTrainer",
}

# key -> what it is; the command's own keys (everything else goes to the trainer)
RUN_KEYS = {
    "trainer": f"which trainer: one of {sorted(TRAINERS)}",
    "logdir": "folder for records and fcn.keras",
    "trainingdata": "training images: a text file of paths, a folder, or a list of paths",
    "testdata": "held-out images, as trainingdata (optional)",
    "downstream_labels": "a JSON file {path: label} for the linear probe (optional)",
    "fcn": "'resnet', 'resnet_small', 'bn_alexnet' or a .keras file (default: the trainer's)",
    "epochs": "epochs to train (default 1)",
}
_HANDLED = {"self", "logdir", "trainingdata", "testdata", "fcn", "downstream_labels",
            "strategy", "options"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")


def trainer_class(name: Any) -> type:
    """The trainer class for a YAML ``trainer`` value."""
    from patchwork_widget import feature

    available = {k: getattr(feature, v) for k, v in TRAINERS.items() if hasattr(feature, v)}
    if name not in available:
        raise ValueError(f"trainer must be one of {sorted(available)}; got {name!r}")
    return available[name]


def trainer_keys(cls: type) -> Set[str]:
    """Keyword arguments a trainer takes from the YAML: its own and its bases' named
    parameters, the options' fields and the original's names."""
    from patchwork_widget.options.checks import field_names
    from patchwork_widget.options.feature import FeatureTrainerOptions
    from patchwork_widget.options.legacy import legacy_names_for

    keys: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in _HANDLED:
                keys.add(p.name)
    fields = field_names(FeatureTrainerOptions)
    return keys | fields | legacy_names_for(fields)


def image_list(value: Any, key: str, base: Path) -> List[str]:
    """Paths from a list, a text file of paths or a folder (its image files, sorted)."""
    if isinstance(value, list):
        from patchwork_widget.images.storage import is_url

        return [str(v) if os.path.isabs(v) or is_url(v) else str(base / v) for v in value]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a file of paths, a folder or a list; got {value!r}")
    path = base / value
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    elif path.is_file():
        from patchwork_widget.cli_extract import read_file_list

        files = read_file_list(path)
    else:
        raise ValueError(f"{key}: no such file or folder {str(path)!r}")
    if not files:
        raise ValueError(f"{key}: {str(path)!r} holds no images")
    return files


def load_config(path: str | os.PathLike) -> Dict[str, Any]:
    """Read and check a pretrain YAML file (keys only; values are checked by the trainer)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such config file {os.fspath(path)!r}")
    try:
        config = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{p} is not valid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{p} cannot be read: {e}") from None
    if not isinstance(config, Mapping):
        raise ValueError(f"{p}: the config must be a mapping of keys to values")
    for key in ("trainer", "logdir", "trainingdata"):
        if key not in config:
            raise ValueError(f"{p}: missing key {key!r} ({RUN_KEYS[key]})")
    valid = set(RUN_KEYS) | trainer_keys(trainer_class(config["trainer"]))
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {unknown} for trainer {config['trainer']!r}; "
                         f"valid keys: {sorted(valid)}")
    return dict(config)


def _fcn(value: Any, num_channels: int) -> Any:
    from patchwork_widget.models.networks import BNAlexNetFCN, ResNetFCN
    from patchwork_widget.models.io import load_keras

    named = {"resnet": lambda: ResNetFCN(num_channels),
             "resnet_small": lambda: ResNetFCN(num_channels, filters=(16, 32)),
             "bn_alexnet": lambda: BNAlexNetFCN(num_channels)}
    if value in named:
        return named[value]()
    if isinstance(value, str) and value.endswith(".keras") and os.path.isfile(value):
        return load_keras(value)
    raise ValueError(f"fcn must be one of {sorted(named)} or an existing .keras file; got "
                     f"{value!r}")


def run_pretrain(args: argparse.Namespace) -> List[str]:
    config = load_config(args.config)
    base = Path(args.config).resolve().parent
    cls = trainer_class(config.pop("trainer"))
    logdir = str(base / config.pop("logdir"))
    epochs = config.pop("epochs", 1)
    train = image_list(config.pop("trainingdata"), "trainingdata", base)
    test = config.pop("testdata", None)
    test = image_list(test, "testdata", base) if test is not None else None
    labels = config.pop("downstream_labels", None)
    if labels is not None:
        labels = json.loads((base / labels).read_text())
    fcn = config.pop("fcn", None)
    if fcn is not None:
        fcn = _fcn(fcn if not str(fcn).endswith(".keras") else str(base / fcn),
                   int(config.get("num_channels", 3)))
    if isinstance(config.get("imshape"), list):
        config["imshape"] = tuple(config["imshape"])
    trainer = cls(logdir, train, testdata=test, fcn=fcn, downstream_labels=labels, **config)
    trainer.fit(epochs)
    saved = trainer.save()
    return [f"trained {cls.__name__} for {epochs} epoch(s); records in {logdir}",
            f"feature extractor: {saved['fcn.keras']}"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    keys = "\n".join(f"  {k}: {v}" for k, v in RUN_KEYS.items())
    p = sub.add_parser(
        "pretrain", help="train a feature extractor from a YAML config",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a self-supervised feature extractor as configured in CONFIG.yaml "
                    "and save it as LOGDIR/fcn.keras.\n\nKeys of the command:\n" + keys +
                    "\n\nEvery other key is a keyword argument of the trainer, as in Python "
                    "(e.g. imshape: [64, 64], batch_size: 64, augment: {flip_left_right: "
                    "true}, lr: 1e-3, temperature: 0.1). Relative paths are taken from the "
                    "config's folder. See docs/cli.md.")
    p.add_argument("config", help="the YAML file")
    p.set_defaults(run=run_pretrain)
