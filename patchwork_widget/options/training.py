"""Choices of training (the Model and Train tabs, features M2-M4 and F1), TF-free.

Every choice is a :class:`~patchwork_widget.options.checks.Choice` (``parse``, ``choices()``
for dropdowns) and every option group a frozen dataclass validated when it is made: a bad value
raises ``ValueError`` naming the option, the value and what is allowed. NaN and infinities are
refused by every numeric option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, Optional, Union

from patchwork_widget.options.checks import Choice, check_fields, plain
from patchwork_widget.options.params import (
    AugmentSpec,
    Flag,
    InstanceOf,
    Interval,
    OneOf,
    Param,
    validate,
)

__all__ = ["BATCH_SIZE", "LEARNING_RATE", "FixMatchOptions", "LossKind", "LossOptions",
           "Optimizer", "SEED", "Schedule", "Solver", "STEPS", "TrainOptions", "WEAK_AUGMENT",
           "WEIGHT_DECAY", "Weighting", "check_augment"]

AugmentOption = Union[bool, Dict[str, Any]]

WEAK_AUGMENT: Dict[str, Any] = {"flip_left_right": True, "flip_up_down": True, "rot90": True}


class Optimizer(Choice):
    """Optimizers shared by fine-tuning and the feature trainers
    (:mod:`patchwork_widget.models.optim`)."""

    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"
    RMSPROP = "rmsprop"
    LARS = "lars"

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD, momentum 0.9",
                "rmsprop": "RMSprop", "lars": "LARS (large batches)"}

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
        return {"momentum": "sgd"}  # the original project's name


class Schedule(Choice):
    """Learning-rate schedules (:class:`patchwork_widget.models.optim.DecaySchedule`)."""

    CONSTANT = "constant"
    COSINE = "cosine"
    EXPONENTIAL = "exponential"
    STAIRCASE = "staircase"
    WARMUP_COSINE = "warmup_cosine"

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"warmup_cosine": "warm-up, then cosine"}

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
        return {"none": "constant", "warmupcosine": "warmup_cosine"}  # the original's names


class Solver(Choice):
    """How :func:`patchwork_widget.models.fit` minimises the loss."""

    AUTO = "auto"  # lbfgs where the problem is convex, minibatch otherwise
    LBFGS = "lbfgs"  # full-batch L-BFGS to convergence: pooling head on features, BCE, no FixMatch
    MINIBATCH = "minibatch"  # stratified batches and the optimizer, epoch by epoch

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"auto": "automatic", "lbfgs": "L-BFGS, full batch",
                "minibatch": "minibatches (optimizer)"}


class LossKind(Choice):
    """The output model's loss (M2)."""

    BCE = "bce"
    FOCAL = "focal"

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"bce": "sigmoid, masked cross-entropy", "focal": "sigmoid, masked focal loss"}


class Weighting(Choice):
    """How a stratum's draw probability depends on its size n_s (the stratified sampler, I4)."""

    UNIFORM = "uniform"  # 1 / number of strata
    PROPORTIONAL = "proportional"  # n_s / sum(n)
    SQRT = "sqrt"  # sqrt(n_s) / sum(sqrt(n))

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"sqrt": "square root"}


# Limits shared by fine-tuning and the feature trainers (docs/training.md, "Limits").
LEARNING_RATE = Interval(float, 0.0, 10.0, closed="right")
WEIGHT_DECAY = Interval(float, 0.0, 1.0)
BATCH_SIZE = Interval(int, 1, 65536)
STEPS = Interval(int, 1, 10_000_000)
SEED = Param(Interval(int, 0, 2**32 - 1), none=True)


def check_augment(name: str, value: Any) -> None:
    """Check an augmentation option: True, False or a dict of augmentation parameters.

    A dict is checked key by key by :func:`patchwork_widget.options.augment.validate_augment`.
    """
    AugmentSpec().check(name, value, False)


@dataclass(frozen=True)
class LossOptions:
    """The output model's loss (the reference's "sigmoid" and "focal loss" outputs).

    Attributes
    ----------
    kind : LossKind or {"bce", "focal"}
        Masked binary cross-entropy or masked binary focal cross-entropy.
    label_smoothing : float
        In [0, 1).
    gamma : float
        Focal exponent (>= 0), focal only.
    alpha : float or None
        Focal class balancing weight in [0, 1], or None for none; focal only.
    """

    kind: LossKind = LossKind.BCE
    label_smoothing: float = 0.0
    gamma: float = 2.0
    alpha: Optional[float] = None

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "kind": Param(OneOf(LossKind)),
        "label_smoothing": Param(Interval(float, 0.0, 1.0, closed="left")),
        "gamma": Param(Interval(float, 0.0, 10.0)),
        "alpha": Param(Interval(float, 0.0, 1.0), none=True),
    }

    def __post_init__(self) -> None:
        validate(self, "loss ")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LossOptions":
        check_fields(cls, d, "loss")
        return cls(**d)


@dataclass(frozen=True)
class FixMatchOptions:
    """Semi-supervised options (the Model tab, M4).

    Attributes
    ----------
    lam : float
        Weight of the unlabelled loss (``lambda``); 0 disables FixMatch.
    tau : float
        Confidence threshold in (0.5, 1].
    mu : int
        Unlabelled batch size = ``mu * batch_size``.
    weak_aug, strong_aug : bool or dict
        Augmentations (:func:`~patchwork_widget.images.augment.validate_augment`) of the two
        views when training on images. ``strong_aug=True`` means the documented defaults.
    feature_dropout, feature_noise : float
        The strong view on pre-extracted features (:mod:`patchwork_widget.models.fixmatch`).
    """

    lam: float = 0.0
    tau: float = 0.95
    mu: int = 4
    weak_aug: AugmentOption = field(default_factory=lambda: dict(WEAK_AUGMENT))
    strong_aug: AugmentOption = True
    feature_dropout: float = 0.3
    feature_noise: float = 0.1

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "lam": Param(Interval(float, 0.0, 100.0)),
        "tau": Param(Interval(float, 0.5, 1.0, closed="right")),
        "mu": Param(Interval(int, 1, 64)),
        "weak_aug": Param(AugmentSpec()),
        "strong_aug": Param(AugmentSpec()),
        "feature_dropout": Param(Interval(float, 0.0, 0.95)),
        "feature_noise": Param(Interval(float, 0.0, 10.0)),
    }

    def __post_init__(self) -> None:
        validate(self, "fixmatch ")

    @property
    def enabled(self) -> bool:
        return self.lam > 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FixMatchOptions":
        d = dict(d)
        if "lambda" in d:  # the reference's name
            d["lam"] = d.pop("lambda")
        check_fields(cls, d, "fixmatch", hint=" (or 'lambda' for lam)")
        return cls(**d)


@dataclass(frozen=True)
class TrainOptions:
    """Everything :func:`~patchwork_widget.models.train.fit` needs besides data and models.

    Attributes
    ----------
    solver : Solver or {"auto", "lbfgs", "minibatch"}
        ``auto`` (default) fits a pooling head on pre-extracted features with BCE and no
        FixMatch by full-batch L-BFGS to convergence (a convex problem: logistic regression per
        class), and everything else by minibatches.
    l2 : float
        L2 penalty on the output layer's kernel: the objective is ``sum of the weighted
        per-label losses + l2 / 2 * ||W||^2`` (scikit-learn's ``1 / C``; both solvers).
    max_iter : int
        L-BFGS iterations at most.
    calibrate : bool
        After training, fit a Platt scaling per class on the validation rows (classes with
        validation positives and negatives only), folded into the output layer.
    batch_size : int
        Labelled rows per minibatch step.
    batches_per_epoch : int or None
        Steps per epoch; None = enough to see each labelled training row once on average, and
        at least ``min_steps / epochs``.
    epochs : int
        Epochs to run (minibatch).
    min_steps : int
        Fewest optimizer steps of a minibatch run, whatever the number of labels.
    optimizer : Optimizer or {"adam", "adamw", "sgd", "rmsprop", "lars"}
        ``sgd`` uses momentum 0.9 (not Nesterov).
    learning_rate : float
        Initial (or, for warmup_cosine, peak) learning rate.
    schedule : Schedule or {"constant", "cosine", "exponential", "staircase", "warmup_cosine"}
        See :class:`patchwork_widget.models.optim.DecaySchedule`; decays run over all steps.
    decay_steps : int or None
        Half-life in steps for exponential / staircase (default: one epoch).
    warmup_steps : int or None
        Warm-up steps for warmup_cosine (default: 10% of all steps).
    weight_decay : float
        Decoupled weight decay (Loshchilov and Hutter 2019), never on biases or batch norm.
    unfreeze_after : int or None
        Make the extractor trainable after this many epochs (images only).
    sampling : Weighting or {"uniform", "proportional", "sqrt"}
        Stratum weighting of the stratified sampler; L-BFGS weights each row by its
        probability of being drawn, so both solvers minimise the same weighted loss.
    augment : bool or dict
        Augmentation of labelled images (ignored, with a log message, on features).
    loss : LossOptions
        Output loss.
    fixmatch : FixMatchOptions
        Semi-supervised term.
    eval_batch_size : int
        Batch size for validation predictions.
    seed : int or None
        Seed of the row sampler. Layer initialisation and dropout follow Keras' global seed.
    single_label : bool or None
        One label per image: a softmax output and the categorical cross-entropy (rows without
        a "yes" masked out). None (default) decides from the labels when training starts: on
        when every labeled row has exactly one "yes"
        (:func:`patchwork_widget.labels.schema.one_label_per_row`).
    """

    solver: Solver = Solver.AUTO
    l2: float = 1.0
    max_iter: int = 500
    calibrate: bool = True
    batch_size: int = 32
    batches_per_epoch: Optional[int] = None
    epochs: int = 10
    min_steps: int = 1000
    optimizer: Optimizer = Optimizer.ADAM
    learning_rate: float = 1e-3
    schedule: Schedule = Schedule.CONSTANT
    decay_steps: Optional[int] = None
    warmup_steps: Optional[int] = None
    weight_decay: float = 0.0
    unfreeze_after: Optional[int] = None
    sampling: Weighting = Weighting.PROPORTIONAL
    augment: AugmentOption = False
    loss: LossOptions = field(default_factory=LossOptions)
    fixmatch: FixMatchOptions = field(default_factory=FixMatchOptions)
    eval_batch_size: int = 256
    seed: Optional[int] = None
    single_label: Optional[bool] = None

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "solver": Param(OneOf(Solver)),
        "l2": Param(Interval(float, 0.0, 1e6)),
        "max_iter": Param(Interval(int, 1, 100_000)),
        "calibrate": Param(Flag()),
        "batch_size": Param(BATCH_SIZE),
        "batches_per_epoch": Param(Interval(int, 1, 100_000), none=True),
        "epochs": Param(Interval(int, 1, 10_000)),
        "min_steps": Param(Interval(int, 1, 1_000_000)),
        "optimizer": Param(OneOf(Optimizer)),
        "learning_rate": Param(LEARNING_RATE),
        "schedule": Param(OneOf(Schedule)),
        "decay_steps": Param(STEPS, none=True),
        "warmup_steps": Param(Interval(int, 0, STEPS.high), none=True),
        "weight_decay": Param(WEIGHT_DECAY),
        "unfreeze_after": Param(Interval(int, 0, 10_000), none=True),
        "sampling": Param(OneOf(Weighting)),
        "augment": Param(AugmentSpec()),
        "loss": Param(InstanceOf(LossOptions)),
        "fixmatch": Param(InstanceOf(FixMatchOptions)),
        "eval_batch_size": Param(BATCH_SIZE),
        "seed": SEED,
        "single_label": Param(Flag(), none=True),
    }

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainOptions":
        """Build from plain values; ``loss`` and ``fixmatch`` may be dicts."""
        check_fields(cls, d, "training")
        return cls(**d)

    def as_dict(self) -> Dict[str, Any]:
        """Plain values (strings for the choices, dicts for loss and fixmatch)."""
        return plain(asdict(self))
