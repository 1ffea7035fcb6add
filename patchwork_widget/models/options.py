"""Training options (feature M3): one validated dataclass the Train tab fills in."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Mapping, Optional, Union

import keras

from patchwork_widget.images.augment import validate_augment
from patchwork_widget.images.sampler import Weighting
from patchwork_widget.models._fields import check_fields
from patchwork_widget.models.fixmatch import FixMatchOptions
from patchwork_widget.models.losses import LossOptions

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential", "staircase", "warmup_cosine")


def _positive_int(name: str, v: Any, allow_none: bool = False, minimum: int = 1) -> None:
    if allow_none and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}; got {v!r}")


@dataclass(frozen=True)
class TrainOptions:
    """Everything :func:`~patchwork_widget.models.train.fit` needs besides data and models.

    Attributes
    ----------
    batch_size : int
        Labelled images per step.
    batches_per_epoch : int or None
        Steps per epoch; None = enough batches to see each labelled training row once on average.
    epochs : int
        Epochs to run.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}
        ``"sgd"`` uses momentum 0.9 (not Nesterov).
    learning_rate : float
        Initial (or, for warmup_cosine, peak) learning rate.
    schedule : {"constant", "cosine", "exponential", "staircase", "warmup_cosine"}
        ``cosine`` decays to 0 over all steps (Loshchilov and Hutter 2017); ``exponential``
        halves every ``decay_steps`` smoothly, ``staircase`` in steps; ``warmup_cosine`` rises
        linearly from 0 over ``warmup_steps`` then decays as cosine (Goyal et al. 2017).
    decay_steps : int or None
        Half-life in steps for exponential / staircase (default: one epoch).
    warmup_steps : int or None
        Warm-up steps for warmup_cosine (default: 10% of all steps).
    weight_decay : float
        Decoupled weight decay (Loshchilov and Hutter 2019), any optimizer.
    unfreeze_after : int or None
        Make the extractor trainable after this many epochs (images only; BatchNorm layers stay
        in inference mode).
    sampling : {"uniform", "proportional", "sqrt"}
        Stratum weighting of :class:`~patchwork_widget.images.sampler.StratifiedSampler`.
    augment : bool or dict
        Augmentation of labelled images (ignored, with a log message, on features).
    loss : LossOptions
        Output loss.
    fixmatch : FixMatchOptions
        Semi-supervised term.
    eval_batch_size : int
        Batch size for validation predictions.
    seed : int or None
        Seed of the row sampler. Layer initialisation and dropout follow Keras' global seed
        (``keras.utils.set_random_seed``).
    """

    batch_size: int = 32
    batches_per_epoch: Optional[int] = None
    epochs: int = 10
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    decay_steps: Optional[int] = None
    warmup_steps: Optional[int] = None
    weight_decay: float = 0.0
    unfreeze_after: Optional[int] = None
    sampling: str = "uniform"
    augment: Union[bool, Dict[str, Any]] = False
    loss: LossOptions = field(default_factory=LossOptions)
    fixmatch: FixMatchOptions = field(default_factory=FixMatchOptions)
    eval_batch_size: int = 256
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        _positive_int("batch_size", self.batch_size)
        _positive_int("batches_per_epoch", self.batches_per_epoch, allow_none=True)
        _positive_int("epochs", self.epochs)
        _positive_int("decay_steps", self.decay_steps, allow_none=True)
        _positive_int("warmup_steps", self.warmup_steps, allow_none=True, minimum=0)
        _positive_int("unfreeze_after", self.unfreeze_after, allow_none=True, minimum=0)
        _positive_int("eval_batch_size", self.eval_batch_size)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}; got {self.schedule!r}")
        for name in ("learning_rate", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0 or (
                name == "learning_rate" and v == 0
            ):
                bound = "> 0" if name == "learning_rate" else ">= 0"
                raise ValueError(f"{name} must be a number {bound}; got {v!r}")
        Weighting.parse(self.sampling)
        validate_augment(self.augment)
        if not isinstance(self.loss, LossOptions):
            raise ValueError(f"loss must be a LossOptions; got {type(self.loss).__name__}")
        if not isinstance(self.fixmatch, FixMatchOptions):
            raise ValueError(
                f"fixmatch must be a FixMatchOptions; got {type(self.fixmatch).__name__}"
            )
        if self.seed is not None:
            _positive_int("seed", self.seed, minimum=0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainOptions":
        """Build from plain values; ``loss`` and ``fixmatch`` may be dicts."""
        d = dict(d)
        check_fields(cls, d, "training")
        if isinstance(d.get("loss"), Mapping):
            d["loss"] = LossOptions.from_dict(d["loss"])
        if isinstance(d.get("fixmatch"), Mapping):
            d["fixmatch"] = FixMatchOptions.from_dict(d["fixmatch"])
        return cls(**d)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def make_optimizer(options: TrainOptions, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule over ``epochs * steps_per_epoch`` steps."""
    total = options.epochs * steps_per_epoch
    lr0 = options.learning_rate
    sched = keras.optimizers.schedules
    if options.schedule == "constant":
        lr: Any = lr0
    elif options.schedule == "cosine":
        lr = sched.CosineDecay(lr0, decay_steps=max(total, 1))
    elif options.schedule in ("exponential", "staircase"):
        lr = sched.ExponentialDecay(lr0, decay_steps=options.decay_steps or steps_per_epoch,
                                    decay_rate=0.5, staircase=options.schedule == "staircase")
    else:
        warm = options.warmup_steps if options.warmup_steps is not None else total // 10
        lr = sched.CosineDecay(0.0, decay_steps=max(total - warm, 1), warmup_target=lr0,
                               warmup_steps=warm)
    wd = options.weight_decay or None
    if options.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    if options.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=options.weight_decay)
    if options.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, weight_decay=wd)
    return keras.optimizers.RMSprop(lr, weight_decay=wd)
