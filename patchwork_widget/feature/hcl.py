"""HCL (feature F5): SimCLR with hard-negative weighting, debiasing and a decoupled option."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import tensorflow as tf

from patchwork_widget.feature.losses import hcl_loss
from patchwork_widget.feature.simclr import SimCLRTrainer
from patchwork_widget.options.checks import check_number

__all__ = ["HCLTrainer"]


class HCLTrainer(SimCLRTrainer):
    """Train ``fcn`` with hard negative samples (Robinson et al. 2021,
    https://arxiv.org/abs/2010.04592).

    Everything is as :class:`~patchwork_widget.feature.simclr.SimCLRTrainer` (head, views,
    all-gathered negatives under a strategy) except the loss,
    :func:`~patchwork_widget.feature.losses.hcl_loss`. At ``beta=0, tau_plus=0`` it is SimCLR.

    Parameters
    ----------
    beta : float
        Concentration on hard negatives, >= 0 (0: uniform weights).
    tau_plus : float
        Assumed share of false negatives (same class) among the negatives, in [0, 1).
    decoupled : bool
        Leave the positive out of the denominator (decoupled contrastive learning, Yeh et al.
        2021, https://arxiv.org/abs/2110.06848).
    *args, **kwargs
        Those of :class:`~patchwork_widget.feature.simclr.SimCLRTrainer` and the base.
    """

    modelname = "HCL"

    def __init__(self, *args: Any, beta: float = 0.5, tau_plus: float = 0.1,
                 decoupled: bool = False, **kwargs: Any) -> None:
        self.beta = check_number("beta", beta, 0.0)
        self.tau_plus = check_number("tau_plus", tau_plus, 0.0, 1.0, open_high=True)
        if not isinstance(decoupled, bool):
            raise ValueError(f"decoupled must be True or False; got {decoupled!r}")
        self.decoupled = decoupled
        super().__init__(*args, **kwargs)

    def _method_config(self) -> Dict[str, Any]:
        return {**super()._method_config(), "beta": self.beta, "tau_plus": self.tau_plus,
                "decoupled": self.decoupled}

    def _loss(self, z1: tf.Tensor, z2: tf.Tensor, all_z1: tf.Tensor, all_z2: tf.Tensor,
              offset: Any) -> Tuple[tf.Tensor, tf.Tensor]:
        return hcl_loss(z1, z2, self.temperature, self.beta, self.tau_plus, self.decoupled,
                        all_z1, all_z2, offset)
