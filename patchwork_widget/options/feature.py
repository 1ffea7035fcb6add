"""Hyperparameters of the self-supervised feature trainers (features F1-F6), TF-free.

:class:`FeatureTrainerOptions` holds what every trainer shares: input, batch, optimizer and
schedule (the names of :class:`~patchwork_widget.options.training.TrainOptions`), augmentation
and seed. Construction validates; the trainers read it. :meth:`FeatureTrainerOptions.from_dict`
also takes the reference's names (``opt_type``, ``lr``, ``decay_type``, ``lr_decay``), so code
written for the original patchwork keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple, Union

from patchwork_widget.options.checks import (
    check_bool,
    check_fields,
    check_int,
    check_number,
    check_shape,
    plain,
)
from patchwork_widget.options.training import Optimizer, Schedule, check_augment

__all__ = ["AUTOTUNE", "FeatureTrainerOptions", "LEGACY_NAMES"]

AUTOTUNE = -1  # tf.data.AUTOTUNE

# The reference's keyword -> this module's field; and the reference's values that changed name.
LEGACY_NAMES = {"opt_type": "optimizer", "lr": "learning_rate", "decay_type": "schedule",
                "lr_decay": "decay_steps"}
_LEGACY_VALUES = {"optimizer": {"momentum": Optimizer.SGD}, "schedule": {"none": Schedule.CONSTANT}}


@dataclass(frozen=True)
class FeatureTrainerOptions:
    """What every feature trainer takes besides its data, its models and its method's own
    hyperparameters.

    Attributes
    ----------
    imshape : (int, int)
        Height and width images are resized to.
    num_channels : int
    norm : float or None
        Pixel values are divided by it (None: by what the file's dtype allows, 255 for
        8-bit, 65535 for 16-bit; see ``read_image``).
    single_channel : bool
        Read one channel and repeat it ``num_channels`` times.
    batch_size : int
        GLOBAL batch size (>= 2), split evenly over the strategy's replicas.
    num_parallel_calls : int
        Parallel decode and augment calls in the input pipeline (-1: tf.data.AUTOTUNE).
    cache : bool or str
        Cache decoded training images in memory (True) or in files with this prefix.
    augment : bool or dict
        The shared augmentation vocabulary (I3); True for its defaults.
    optimizer : Optimizer
        ``adam``, ``adamw``, ``sgd`` (momentum 0.9), ``rmsprop`` or ``lars``.
    learning_rate : float
        Initial (peak) learning rate.
    schedule : Schedule
        See :class:`~patchwork_widget.models.optim.DecaySchedule`.
    decay_steps : int or None
        Length of the decay in steps (half-life for exponential and staircase, length of the
        cosine after warm-up); needed by every schedule but ``constant``.
    warmup_steps : int
        Linear warm-up steps, ``warmup_cosine`` only (>= 1 there).
    weight_decay : float
        Decoupled, except for LARS (added to the gradient, as SimCLR); never on biases or
        batch norm.
    seed : int or None
        ``keras.utils.set_random_seed(seed)`` when ``fit`` first runs, so the shuffling,
        augmentation and dropout draws repeat. Weights are initialised when the trainer (and
        your ``fcn``) is built, before that: to repeat them too, call
        ``keras.utils.set_random_seed`` yourself before building. Construction never seeds.
    eval_batch_size : int
        Batch size of feature extraction in the benchmarks.
    notes : str
        Anything about the experiment; saved in ``config.yaml`` (and MLflow).
    """

    imshape: Tuple[int, int] = (64, 64)
    num_channels: int = 3
    norm: Optional[float] = None
    single_channel: bool = False
    batch_size: int = 64
    num_parallel_calls: int = AUTOTUNE
    cache: Union[bool, str] = False
    augment: Union[bool, Dict[str, Any]] = True
    optimizer: Optimizer = Optimizer.ADAM
    learning_rate: float = 1e-3
    schedule: Schedule = Schedule.CONSTANT
    decay_steps: Optional[int] = None
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: Optional[int] = None
    eval_batch_size: int = 256
    notes: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "imshape", check_shape("imshape", self.imshape))
        check_int("num_channels", self.num_channels, 1)
        check_number("norm", self.norm, 0.0, open_low=True, allow_none=True)
        check_bool("single_channel", self.single_channel)
        check_int("batch_size", self.batch_size, 2)
        if self.num_parallel_calls != AUTOTUNE:
            check_int("num_parallel_calls", self.num_parallel_calls, 1)
        if not isinstance(self.cache, (bool, str)):
            raise ValueError(f"cache must be True, False or a file prefix; got {self.cache!r}")
        check_augment("augment", self.augment)
        set_(self, "optimizer", Optimizer.parse(self.optimizer, "optimizer"))
        set_(self, "schedule", Schedule.parse(self.schedule, "schedule"))
        check_number("learning_rate", self.learning_rate, 0.0, open_low=True)
        check_int("decay_steps", self.decay_steps, 1, allow_none=True)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_number("weight_decay", self.weight_decay, 0.0)
        check_int("seed", self.seed, 0, allow_none=True)
        check_int("eval_batch_size", self.eval_batch_size, 1)
        if not isinstance(self.notes, str):
            raise ValueError(f"notes must be a string; got {type(self.notes).__name__}")
        if self.schedule is not Schedule.CONSTANT and self.decay_steps is None:
            raise ValueError(f"schedule {self.schedule.value!r} needs decay_steps (its length "
                             "in steps); use schedule='constant' for a constant learning rate")
        if self.schedule is Schedule.WARMUP_COSINE and self.warmup_steps == 0:
            raise ValueError("schedule 'warmup_cosine' needs warmup_steps >= 1")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureTrainerOptions":
        """Build from plain values; the reference's names (:data:`LEGACY_NAMES`, with
        ``opt_type="momentum"``, ``decay_type="none"`` and ``lr_decay=0``) are accepted."""
        if not isinstance(d, Mapping):
            raise ValueError(f"feature trainer options must be a dict; got {type(d).__name__}")
        out: Dict[str, Any] = {}
        for key, value in d.items():
            name = LEGACY_NAMES.get(key, key)
            if name in out:
                raise ValueError(f"{key!r} and {name!r} are the same option: give one")
            if name == "decay_steps" and key == "lr_decay" and value == 0:
                value = None
            legacy = _LEGACY_VALUES.get(name, {})
            out[name] = legacy.get(value, value) if isinstance(value, str) else value
        check_fields(cls, out, "feature trainer",
                     hint=f" (or the reference's {sorted(LEGACY_NAMES)})")
        return cls(**out)

    def as_dict(self) -> Dict[str, Any]:
        out = plain(asdict(self))
        out["imshape"] = list(self.imshape)
        return out
