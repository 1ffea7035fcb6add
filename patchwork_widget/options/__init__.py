"""Every user choice as an enum or a validated dataclass, TF-free (issue 9).

Choices are :class:`~patchwork_widget.options.checks.Choice` enums: ``parse`` with a message
naming the bad value and the allowed ones, ``choices()`` giving ``(label, value)`` pairs for the
widget's dropdowns. Importing this package never imports TensorFlow.
"""

from patchwork_widget.options.backbones import BACKBONES, Backbone
from patchwork_widget.options.checks import Choice, check_fields, check_int, check_number
from patchwork_widget.options.feature import FeatureTrainerOptions
from patchwork_widget.options.model import (
    FineTuneOptions,
    HeadKind,
    LayerKind,
    LayerSpec,
    Pooling,
    parse_spec,
)
from patchwork_widget.options.training import (
    FixMatchOptions,
    LossKind,
    LossOptions,
    Optimizer,
    Schedule,
    Solver,
    TrainOptions,
    Weighting,
)

__all__ = [
    "BACKBONES", "Backbone", "Choice", "FeatureTrainerOptions", "FineTuneOptions", "FixMatchOptions", "HeadKind",
    "LayerKind", "LayerSpec", "LossKind", "LossOptions", "Optimizer", "Pooling", "Schedule",
    "Solver", "TrainOptions", "Weighting", "check_fields", "check_int", "check_number",
    "parse_spec",
]
