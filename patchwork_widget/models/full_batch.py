"""The L-BFGS solver of :func:`~patchwork_widget.models.train.fit`: a pooling head on
pre-extracted features has no trainable weight before the output layer, so training is a convex
logistic regression per class, or a multinomial one for a softmax (one-label-per-image) output
(:mod:`patchwork_widget.models.convex`), fitted on all labelled training rows at once to
convergence. Nothing to tune: no learning rate, batch or epoch count.
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from patchwork_widget.images.feature_rows import take_rows
from patchwork_widget.models.convex import LogisticFit, fit_logistic, fit_multinomial
from patchwork_widget.models.finetune import PatchworkModels
from patchwork_widget.models.rows import TrainingRows
from patchwork_widget.options.training import TrainOptions

__all__ = ["convex_obstacle", "fit_full_batch", "pooled_features"]


def convex_obstacle(models: PatchworkModels, features: Optional[np.ndarray],
                    options: TrainOptions) -> Optional[str]:
    """Why the L-BFGS solver cannot train these models with these options (None: it can)."""
    if features is None:
        return "it needs pre-extracted features (training from images runs the extractor)"
    if models.fine_tuning.trainable_weights:
        return "the fine-tuning model has trainable layers (a convnet): use a pooling head"
    if options.loss.kind != "bce":
        return f"the {options.loss.kind.value!r} loss is not convex: use 'bce'"
    if options.fixmatch.enabled:
        return "FixMatch trains on minibatches of unlabelled rows"
    if options.unfreeze_after is not None:
        return "unfreeze_after trains the extractor"
    return None


def pooled_features(models: PatchworkModels, features: np.ndarray, rows: np.ndarray,
                    batch_size: int = 4096) -> np.ndarray:
    """The fine-tuning model's output (a pooling, or the identity) for ``rows``, float64; only
    those rows of ``features`` are read (:func:`~patchwork_widget.images.feature_rows.take_rows`)."""
    x = take_rows(features, rows)
    if len(models.feature_shape) > 1:
        x = models.fine_tuning.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(x, dtype=np.float64)


def fit_full_batch(models: PatchworkModels, rows: TrainingRows, features: np.ndarray,
                   options: TrainOptions, warm_start: bool,
                   cancel: Optional[threading.Event] = None) -> LogisticFit:
    """Fit the output layer on the training rows and set its weights (unless cancelled, when
    :class:`~patchwork_widget.models.convex.Cancelled` propagates and nothing changes)."""
    x = pooled_features(models, features, rows.train_rows, options.eval_batch_size)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"the features of {int(bad.sum())} labelled training row(s) hold NaN "
                         f"or infinite values, e.g. row {int(rows.train_rows[bad][0])}: fix or "
                         "exclude them")
    dense = models.output.layers[-1]
    init = tuple(dense.get_weights()) if warm_start else None
    solve = fit_multinomial if models.single_label else fit_logistic
    found = solve(x, rows.labels[rows.train_rows], rows.row_weights(), options.l2,
                         options.loss.label_smoothing, options.max_iter, init,
                         should_stop=None if cancel is None else cancel.is_set)
    dense.set_weights([found.kernel, found.bias])
    return found
