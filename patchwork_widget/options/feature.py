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
from typing import Any, ClassVar, Dict, Optional, Tuple, Union

from patchwork_widget.options.checks import check_fields, field_names, plain
from patchwork_widget.options.legacy import legacy_names_for, rename_legacy
from patchwork_widget.options.params import (
    AnyOf,
    AugmentSpec,
    Flag,
    Interval,
    OneOf,
    Param,
    Shape,
    Text,
    validate,
)
from patchwork_widget.options.training import (
    LEARNING_RATE,
    SEED,
    STEPS,
    WEIGHT_DECAY,
    Optimizer,
    Schedule,
)

__all__ = ["AUTOTUNE", "FeatureTrainerOptions"]

AUTOTUNE = -1  # tf.data.AUTOTUNE


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

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "imshape": Param(Shape()),
        "num_channels": Param(Interval(int, 1, 1024)),
        "norm": Param(Interval(float, 0.0, closed="right"), none=True),
        "single_channel": Param(Flag()),
        "batch_size": Param(Interval(int, 2, 65536)),
        "num_parallel_calls": Param(Interval(int, 1, 1024), also=(AUTOTUNE,)),
        "cache": Param(AnyOf((Flag(), Text(max_length=4096)),
                             "True, False or a file prefix")),
        "augment": Param(AugmentSpec()),
        "optimizer": Param(OneOf(Optimizer)),
        "learning_rate": Param(LEARNING_RATE),
        "schedule": Param(OneOf(Schedule)),
        "decay_steps": Param(STEPS, none=True),
        "warmup_steps": Param(Interval(int, 0, STEPS.high)),
        "weight_decay": Param(WEIGHT_DECAY),
        "seed": SEED,
        "eval_batch_size": Param(Interval(int, 1, 65536)),
        "notes": Param(Text()),
    }

    def __post_init__(self) -> None:
        validate(self)
        if self.schedule is not Schedule.CONSTANT and self.decay_steps is None:
            raise ValueError(f"schedule {self.schedule.value!r} needs decay_steps (its length "
                             "in steps); use schedule='constant' for a constant learning rate")
        if self.schedule is Schedule.WARMUP_COSINE and self.warmup_steps == 0:
            raise ValueError("schedule 'warmup_cosine' needs warmup_steps >= 1")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureTrainerOptions":
        """Build from plain values; the original project's names
        (:data:`~patchwork_widget.options.legacy.LEGACY_NAMES`: ``opt_type``, ``lr``,
        ``decay_type``, ``lr_decay``, with ``lr_decay=0`` meaning a constant rate) are
        accepted, and so are its values (``"momentum"``, ``"warmupcosine"``, ``"none"``)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"feature trainer options must be a dict; got {type(d).__name__}")
        out = rename_legacy(d)
        check_fields(cls, out, "feature trainer",
                     hint=f" (or the original's {sorted(legacy_names_for(field_names(cls)))})")
        return cls(**out)

    def as_dict(self) -> Dict[str, Any]:
        out = plain(asdict(self))
        out["imshape"] = list(self.imshape)
        return out
