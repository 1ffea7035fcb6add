"""Optimizers and learning-rate schedules, shared by fine-tuning (M3) and the feature trainers
(F1): one set of names (:class:`~patchwork_widget.options.Optimizer`,
:class:`~patchwork_widget.options.Schedule`) and one weight-decay rule.

Weight decay never touches a variable of rank 0 or 1 (biases, batch-norm scales and offsets),
for every optimizer, as in SimCLR. It is decoupled (Loshchilov and Hutter 2019,
https://arxiv.org/abs/1711.05101) for Adam, AdamW, SGD and RMSprop; LARS adds it to the gradient
of the matrices and kernels it scales, as SimCLR does.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import keras
import tensorflow as tf

from patchwork_widget.options.checks import check_int, check_number
from patchwork_widget.options.training import Optimizer, Schedule

__all__ = ["DecaySchedule", "LARS", "build_optimizer", "decays", "make_schedule"]


def decays(variable: Any) -> bool:
    """The weight-decay rule: matrices and kernels decay; biases and batch norm do not."""
    return len(variable.shape) > 1


@keras.saving.register_keras_serializable(package="patchwork_widget")
class DecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate ``lr(step)`` for a :class:`~patchwork_widget.options.Schedule`.

    - ``constant``: ``lr``.
    - ``exponential``: ``lr * 0.5 ** (step / decay_steps)``: smooth, halving every
      ``decay_steps``.
    - ``staircase``: ``lr * 0.5 ** floor(step / decay_steps)``.
    - ``cosine``: ``lr * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2``, then 0
      (Loshchilov and Hutter 2017, https://arxiv.org/abs/1608.03983, without restarts).
    - ``warmup_cosine``: ``lr * step / warmup_steps`` for ``step < warmup_steps``, then
      ``cosine`` over the following ``decay_steps`` steps (Goyal et al. 2017,
      https://arxiv.org/abs/1706.02677; as in SimCLR).

    Parameters
    ----------
    lr : float
        Initial (peak) learning rate, > 0.
    schedule : Schedule or str
    decay_steps : int or None
        Needed (>= 1) by every schedule but ``constant``.
    warmup_steps : int
        ``warmup_cosine`` only (>= 1 there).
    """

    def __init__(self, lr: float, schedule: Any = Schedule.CONSTANT,
                 decay_steps: Optional[int] = None, warmup_steps: int = 0) -> None:
        self.lr = check_number("lr", lr, 0.0, open_low=True)
        self.schedule = Schedule.parse(schedule, "schedule")
        self.decay_steps = check_int("decay_steps", decay_steps, 1, allow_none=True)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        if self.schedule is not Schedule.CONSTANT and self.decay_steps is None:
            raise ValueError(f"schedule {self.schedule.value!r} needs decay_steps >= 1 (its "
                             "length in steps); use 'constant' for a constant learning rate")
        if self.schedule is Schedule.WARMUP_COSINE and self.warmup_steps == 0:
            raise ValueError("schedule 'warmup_cosine' needs warmup_steps >= 1")

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        lr = tf.constant(self.lr, tf.float32)
        kind = self.schedule
        if kind is Schedule.CONSTANT:
            return lr
        decay = float(self.decay_steps)
        if kind is Schedule.EXPONENTIAL:
            return lr * tf.pow(0.5, step / decay)
        if kind is Schedule.STAIRCASE:
            return lr * tf.pow(0.5, tf.floor(step / decay))
        warm = float(self.warmup_steps) if kind is Schedule.WARMUP_COSINE else 0.0
        t = tf.clip_by_value(step - warm, 0.0, decay) / decay
        cosine = lr * 0.5 * (1.0 + tf.cos(math.pi * t))
        if warm == 0.0:
            return cosine
        return tf.where(step < warm, lr * step / warm, cosine)

    def get_config(self) -> Dict[str, Any]:
        return {"lr": self.lr, "schedule": self.schedule.value, "decay_steps": self.decay_steps,
                "warmup_steps": self.warmup_steps}


def make_schedule(schedule: Any, lr: float, total_steps: int, steps_per_epoch: int,
                  decay_steps: Optional[int] = None,
                  warmup_steps: Optional[int] = None) -> DecaySchedule:
    """The schedule of a fine-tuning run of ``total_steps``: cosine decays over the whole run;
    exponential and staircase halve every ``decay_steps`` (default one epoch); warm-up lasts
    ``warmup_steps`` (default 10% of the run, at least 1) and the cosine the rest."""
    schedule = Schedule.parse(schedule, "schedule")
    total = max(check_int("total_steps", total_steps, 0), 1)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 0)
    decay_steps = check_int("decay_steps", decay_steps, 1, allow_none=True)
    warmup_steps = check_int("warmup_steps", warmup_steps, 0, allow_none=True)
    if schedule is Schedule.CONSTANT:
        return DecaySchedule(lr)
    if schedule is Schedule.COSINE:
        return DecaySchedule(lr, schedule, total)
    if schedule in (Schedule.EXPONENTIAL, Schedule.STAIRCASE):
        return DecaySchedule(lr, schedule, decay_steps or max(steps_per_epoch, 1))
    warm = warmup_steps if warmup_steps else max(total // 10, 1)
    return DecaySchedule(lr, schedule, max(total - warm, 1), warm)


@keras.saving.register_keras_serializable(package="patchwork_widget")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise adaptive rate scaling with momentum (You et al. 2017,
    https://arxiv.org/abs/1708.03888), in the form SimCLR uses.

    For each variable ``w`` that :func:`decays` (matrices and kernels), with gradient ``g``::

        g <- g + weight_decay * w
        trust = eta * ||w|| / ||g||   (1 where either norm is 0)
        v <- momentum * v + lr * trust * g
        w <- w - v

    Other variables (biases, batch norm) get neither weight decay nor the trust ratio.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule
    momentum : float
        In [0, 1).
    weight_decay : float
        L2 coefficient, >= 0, applied to the gradient (not decoupled).
    eta : float
        Trust coefficient, > 0.
    """

    def __init__(self, learning_rate: Any = 0.1, momentum: float = 0.9,
                 weight_decay: float = 0.0, eta: float = 0.001, name: str = "lars",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, open_high=True)
        self.lars_weight_decay = check_number("weight_decay", weight_decay, 0.0)
        self.eta = check_number("eta", eta, 0.0, open_low=True)

    def build(self, variables: Any) -> None:
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = tf.cast(learning_rate, variable.dtype)
        g = tf.cast(gradient, variable.dtype)
        w = tf.convert_to_tensor(variable)
        if decays(variable):
            g = g + self.lars_weight_decay * w
            w_norm = tf.norm(w)
            g_norm = tf.norm(g)
            trust = tf.where((w_norm > 0) & (g_norm > 0),
                             self.eta * w_norm / tf.maximum(g_norm, 1e-30), 1.0)
            g = g * trust
        v = self.velocities[self._get_variable_index(variable)]
        self.assign(v, self.momentum * v + lr * g)
        self.assign_sub(variable, v)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"momentum": self.momentum, "weight_decay": self.lars_weight_decay,
                       "eta": self.eta})
        return config


def build_optimizer(optimizer: Any, learning_rate: Any, variables: Sequence[Any],
                    weight_decay: float = 0.0, momentum: float = 0.9
                    ) -> keras.optimizers.Optimizer:
    """An optimizer of :class:`~patchwork_widget.options.Optimizer`, built for ``variables``
    (call it inside the strategy's scope), with the weight-decay rule of :func:`decays`.

    ``sgd`` and ``lars`` use momentum ``momentum`` (not Nesterov).
    """
    kind = Optimizer.parse(optimizer, "optimizer")
    wd = check_number("weight_decay", weight_decay, 0.0)
    variables = list(variables)
    if kind is Optimizer.LARS:
        opt: keras.optimizers.Optimizer = LARS(learning_rate, momentum=momentum,
                                               weight_decay=wd)
    else:
        decay = wd or None
        if kind is Optimizer.ADAM:
            opt = keras.optimizers.Adam(learning_rate, weight_decay=decay)
        elif kind is Optimizer.ADAMW:
            opt = keras.optimizers.AdamW(learning_rate, weight_decay=wd)
        elif kind is Optimizer.SGD:
            opt = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=decay)
        else:
            opt = keras.optimizers.RMSprop(learning_rate, weight_decay=decay)
        if wd:
            opt.exclude_from_weight_decay(var_list=[v for v in variables if not decays(v)])
    opt.build(variables)
    return opt
