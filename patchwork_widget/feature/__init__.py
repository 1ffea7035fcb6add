"""Self-supervised feature-extractor trainers (features F1-F11). Imports TensorFlow.

Each trainer trains the fully-convolutional Keras model it is given (``fcn``) in place::

    from patchwork_widget.feature import SimCLRTrainer

    trainer = SimCLRTrainer("logs/simclr", files, fcn=fcn,
                            options=FeatureTrainerOptions(imshape=(64, 64), batch_size=64),
                            downstream_labels={path: label, ...})
    trainer.fit(10)
    fcn.save("extractor.keras")      # or hand `fcn` to PatchworkWidget(feature_extractor=fcn)

See docs/feature.md for every option, the benchmarks and the records each run writes.
"""

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.context_encoder import ContextEncoderTrainer
from patchwork_widget.feature.deepcluster import DeepClusterTrainer
from patchwork_widget.feature.detcon import DetConTrainer, masked_hcl_loss
from patchwork_widget.feature.evaluate import (
    alignment,
    linear_classification_test,
    rotation_classification_test,
    uniformity,
)
from patchwork_widget.feature.hcl import HCLTrainer
from patchwork_widget.feature.losses import hcl_loss, mochi_negatives, moco_loss, nt_xent_loss
from patchwork_widget.feature.moco import MomentumContrastTrainer
from patchwork_widget.feature.multitask import MultiTaskTrainer
from patchwork_widget.feature.simclr import SimCLRTrainer
from patchwork_widget.models.networks import BNAlexNetFCN, ResNetFCN, projection_head
from patchwork_widget.models.optim import LARS, DecaySchedule, build_optimizer
from patchwork_widget.options.feature import FeatureTrainerOptions

__all__ = [
    "BNAlexNetFCN", "ContextEncoderTrainer", "DecaySchedule", "DeepClusterTrainer",
    "DetConTrainer", "FeatureTrainer", "FeatureTrainerOptions", "HCLTrainer", "LARS",
    "MomentumContrastTrainer", "MultiTaskTrainer", "ResNetFCN", "SimCLRTrainer", "alignment",
    "build_optimizer", "hcl_loss", "linear_classification_test", "masked_hcl_loss",
    "mochi_negatives", "moco_loss", "nt_xent_loss", "projection_head",
    "rotation_classification_test", "uniformity",
]
