"""Learning-rate decay and optimizers for the feature trainers: Adam, SGD with momentum, LARS."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import keras
import tensorflow as tf

__all__ = ["DECAY_TYPES", "OPT_TYPES", "DecaySchedule", "LARS", "build_optimizer"]

DECAY_TYPES = ("none", "exponential", "staircase", "cosine", "warmup_cosine")
OPT_TYPES = ("adam", "momentum", "lars")

# Variables whose name contains one of these are left out of weight decay (biases and
# batch-norm scales and offsets, as in SimCLR).
NO_DECAY_NAMES = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="patchwork_widget")
class DecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate ``lr(step)`` for one of :data:`DECAY_TYPES`.

    - ``none``: ``lr``.
    - ``exponential``: ``lr * 0.5 ** (step / lr_decay)``: smooth, halving every ``lr_decay``.
    - ``staircase``: ``lr * 0.5 ** floor(step / lr_decay)``: cut in half every ``lr_decay``.
    - ``cosine``: ``lr * (1 + cos(pi * min(step, lr_decay) / lr_decay)) / 2``, then 0
      (Loshchilov and Hutter 2017, https://arxiv.org/abs/1608.03983, without restarts).
    - ``warmup_cosine``: ``lr * step / warmup_steps`` for ``step < warmup_steps``, then
      ``cosine`` over the following ``lr_decay`` steps (Goyal et al. 2017,
      https://arxiv.org/abs/1706.02677; as in SimCLR).

    Parameters
    ----------
    lr : float
        Initial (peak) learning rate, > 0.
    decay_type : str
        One of :data:`DECAY_TYPES`.
    lr_decay : int
        Steps of the decay (half-life for exponential and staircase, length of the cosine);
        must be > 0 unless ``decay_type="none"``.
    warmup_steps : int
        Linear warm-up length, only for ``warmup_cosine`` (>= 1 there).
    """

    def __init__(self, lr: float, decay_type: str = "none", lr_decay: int = 0,
                 warmup_steps: int = 0) -> None:
        check_schedule(lr, decay_type, lr_decay, warmup_steps)
        self.lr = float(lr)
        self.decay_type = decay_type
        self.lr_decay = int(lr_decay)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        lr = tf.constant(self.lr, tf.float32)
        if self.decay_type == "none":
            return lr
        decay = float(self.lr_decay)
        if self.decay_type == "exponential":
            return lr * tf.pow(0.5, step / decay)
        if self.decay_type == "staircase":
            return lr * tf.pow(0.5, tf.floor(step / decay))
        warm = float(self.warmup_steps) if self.decay_type == "warmup_cosine" else 0.0
        t = tf.clip_by_value(step - warm, 0.0, decay) / decay
        cosine = lr * 0.5 * (1.0 + tf.cos(math.pi * t))
        if warm == 0.0:
            return cosine
        return tf.where(step < warm, lr * step / warm, cosine)

    def get_config(self) -> Dict[str, Any]:
        return {"lr": self.lr, "decay_type": self.decay_type, "lr_decay": self.lr_decay,
                "warmup_steps": self.warmup_steps}


def check_schedule(lr: float, decay_type: str, lr_decay: int, warmup_steps: int) -> None:
    """Raise ValueError with the allowed values when a schedule option is wrong."""
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
            and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    if decay_type not in DECAY_TYPES:
        raise ValueError(f"decay_type must be one of {list(DECAY_TYPES)}; got {decay_type!r}")
    for name, value in (("lr_decay", lr_decay), ("warmup_steps", warmup_steps)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise ValueError(f"{name} must be an int >= 0 (steps); got {value!r}")
    if decay_type != "none" and lr_decay == 0:
        raise ValueError(
            f"decay_type={decay_type!r} needs lr_decay > 0 (its length in steps); "
            "use decay_type='none' for a constant learning rate"
        )
    if decay_type == "warmup_cosine" and warmup_steps == 0:
        raise ValueError("decay_type='warmup_cosine' needs warmup_steps >= 1")


@keras.saving.register_keras_serializable(package="patchwork_widget")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise adaptive rate scaling with momentum (You et al. 2017,
    https://arxiv.org/abs/1708.03888), in the form SimCLR uses.

    For each weight matrix or kernel ``w`` with gradient ``g``::

        g <- g + weight_decay * w
        trust = eta * ||w|| / ||g||   (1 where either norm is 0)
        v <- momentum * v + lr * trust * g
        w <- w - v

    Vectors (biases, batch-norm scales and offsets) get neither weight decay nor the trust
    ratio, as in SimCLR's implementation.

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
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
        if not eta > 0:
            raise ValueError(f"eta must be > 0; got {eta!r}")
        self.momentum = float(momentum)
        self.lars_weight_decay = float(weight_decay)
        self.eta = float(eta)

    def build(self, variables: Any) -> None:
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = tf.cast(learning_rate, variable.dtype)
        g = tf.cast(gradient, variable.dtype)
        w = tf.convert_to_tensor(variable)
        if len(variable.shape) > 1:
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


def build_optimizer(
    opt_type: str,
    learning_rate: Any,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> keras.optimizers.Optimizer:
    """An optimizer of :data:`OPT_TYPES`; build it inside the strategy's scope.

    ``adam`` and ``momentum`` (SGD with Nesterov-free momentum ``momentum``) use decoupled
    weight decay (Loshchilov and Hutter 2019, https://arxiv.org/abs/1711.05101), skipping
    biases and batch-norm parameters; ``lars`` adds it to the gradient as SimCLR does.
    """
    if opt_type not in OPT_TYPES:
        raise ValueError(f"opt_type must be one of {list(OPT_TYPES)}; got {opt_type!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
    if opt_type == "lars":
        return LARS(learning_rate, momentum=momentum, weight_decay=weight_decay)
    wd: Optional[float] = float(weight_decay) or None
    if opt_type == "adam":
        opt = keras.optimizers.Adam(learning_rate, weight_decay=wd)
    else:
        opt = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=wd)
    if wd:
        opt.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    return opt
