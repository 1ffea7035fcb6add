"""Models, training, prediction and saving (features M1-M6). Imports Keras and TensorFlow.

The option dataclasses and choice enums live in the TF-free :mod:`patchwork_widget.options` and
are re-exported here.

Typical use from a script (``Session.train`` runs the same in the background)::

    from patchwork_widget.models import (FineTuneOptions, TrainOptions, build_models, fit,
                                         predict, output_histograms)

    models = build_models(classes, feature_shape=features.shape[1:],
                          options=FineTuneOptions(kind="pool", pooling="avg"))
    result = fit(models, df, features=features, options=TrainOptions(),
                 progress=lambda epoch, step, logs: ...)
    preds = predict(models, df, features=features)
"""

from patchwork_widget.models.finetune import (
    FineTuneOptions,
    LayerSpec,
    PatchworkModels,
    ResidualBlock,
    build_classifier,
    build_finetuning_model,
    build_models,
    build_output_model,
    parse_spec,
)
from patchwork_widget.models.fixmatch import (
    FixMatchOptions,
    fixmatch_loss,
    perturb_features,
    pseudo_labels,
)
from patchwork_widget.models.io import (
    load_keras,
    load_models,
    load_predictions,
    save_models,
    save_predictions,
    save_table,
)
from patchwork_widget.models.losses import (
    LossOptions,
    loss_elements,
    loss_function,
    masked_binary_crossentropy,
    masked_binary_focal_crossentropy,
)
from patchwork_widget.models.calibration import calibration_error, platt_scaling
from patchwork_widget.models.distill import DistillResult, distill
from patchwork_widget.models.optim import DecaySchedule, LARS, build_optimizer, make_schedule
from patchwork_widget.options.training import Optimizer, Schedule, Solver, TrainOptions
from patchwork_widget.models.predictions import (
    class_metrics,
    embed_features,
    macro_auc,
    output_histograms,
    predict,
    validation_metrics,
)
from patchwork_widget.models.train import TrainResult, choose_solver, fit

__all__ = [
    "DecaySchedule", "DistillResult", "FineTuneOptions", "FixMatchOptions", "LARS", "LayerSpec", "LossOptions",
    "Optimizer", "PatchworkModels", "ResidualBlock", "Schedule", "Solver", "TrainOptions",
    "TrainResult", "build_classifier", "build_finetuning_model", "build_models",
    "build_optimizer", "build_output_model", "calibration_error", "choose_solver",
    "class_metrics", "distill", "embed_features", "fit", "fixmatch_loss", "load_keras", "load_models", "load_predictions",
    "loss_elements", "loss_function", "macro_auc", "make_schedule",
    "masked_binary_crossentropy", "masked_binary_focal_crossentropy", "output_histograms",
    "parse_spec", "perturb_features", "platt_scaling", "predict", "pseudo_labels",
    "save_models", "save_predictions", "save_table", "validation_metrics",
]
