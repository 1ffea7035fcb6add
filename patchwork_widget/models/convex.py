"""Full-batch fit of an output layer on fixed features by L-BFGS to convergence (the default
solver for a pooling head on pre-extracted features): logistic regression per class with
partial labels for a sigmoid output (:func:`fit_logistic`), multinomial logistic regression for
a one-label-per-image softmax output (:func:`fit_multinomial`). NumPy and SciPy only.

Objective, for kernel ``W`` (d x C) and bias ``b`` (C), row weights ``w_i``, the mask ``m_ij`` of
present labels and smoothed targets ``t_ij``::

    sum_ij w_i m_ij H(t_ij, sigmoid(x_i W_j + b_j)) + l2 / 2 * ||W||^2
        + sum_{j one-valued} (H(1, sigmoid(b_j)) + H(0, sigmoid(b_j))) / 2

with ``H`` the binary cross-entropy. The first two terms are scikit-learn's
``LogisticRegression(C=1 / l2)`` per class (with ``sample_weight``); the last, only for a class
whose labels are all 1 or all 0, is a Jeffreys prior on its bias (half a positive and half a
negative pseudo-label), which keeps that bias finite. Otherwise the result equals
scikit-learn's. The problem is convex, so the result does not depend on the starting point, and
it needs no learning rate, batch size or number of epochs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, logsumexp, softmax

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside the optimisation when ``should_stop`` returns True."""


@dataclass(frozen=True)
class LogisticFit:
    """What :func:`fit_logistic` found.

    Attributes
    ----------
    kernel : np.ndarray
        float32 (d, C).
    bias : np.ndarray
        float32 (C,).
    loss : float
        Weighted mean cross-entropy over the present labels at the solution (no penalty).
    iterations : int
    converged : bool
    """

    kernel: np.ndarray
    bias: np.ndarray
    loss: float
    iterations: int
    converged: bool


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def prior_bias(labels: np.ndarray, row_weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Log prior odds per class, ``logit((positives + 1/2) / (labels + 1))``, weighted by
    ``row_weights``: the output bias that predicts each class's base rate."""
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones(len(y)) if row_weights is None else np.asarray(row_weights, np.float64)
    present = ~np.isnan(y)
    pos = (w[:, None] * (present & (y == 1))).sum(axis=0)
    total = (w[:, None] * present).sum(axis=0)
    rate = (pos + 0.5) / (total + 1.0)
    return np.log(rate / (1.0 - rate))


def fit_logistic(
    x: np.ndarray,
    labels: np.ndarray,
    row_weights: Optional[np.ndarray] = None,
    l2: float = 1.0,
    label_smoothing: float = 0.0,
    max_iter: int = 500,
    init: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> LogisticFit:
    """Minimise the objective of the module docstring.

    Parameters
    ----------
    x : np.ndarray
        (n, d) features of the labelled rows.
    labels : np.ndarray
        (n, C): 1, 0 or NaN (missing).
    row_weights : np.ndarray, optional
        (n,) non-negative weights (default 1).
    l2 : float
        Penalty on the kernel (scikit-learn's ``1 / C``).
    label_smoothing : float
        Targets become ``y * (1 - s) + s / 2``.
    max_iter : int
        L-BFGS iterations at most.
    init : (kernel, bias), optional
        Starting point (default: zero kernel, :func:`prior_bias`).
    should_stop : callable, optional
        Polled at every evaluation; True raises :class:`Cancelled`.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n, d = x.shape
    c = y.shape[1]
    w = np.ones(n) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    mask = ~np.isnan(y)
    target = np.where(mask, y, 0.0) * (1.0 - label_smoothing) + 0.5 * label_smoothing
    weight = w[:, None] * mask  # (n, C)
    present = np.where(mask, y, np.nan)
    one_valued = ~((present == 1).any(axis=0) & (present == 0).any(axis=0))  # (C,)
    scale = max(float(weight.sum()), 1.0)  # the objective is divided by it: O(1) values
    if init is None:
        kernel0, bias0 = np.zeros((d, c)), prior_bias(y, w)
    else:
        kernel0, bias0 = (np.asarray(a, dtype=np.float64) for a in init)
    theta0 = np.concatenate([kernel0.ravel(), bias0.ravel()])

    def objective(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        if should_stop is not None and should_stop():
            raise Cancelled()
        kernel, bias = theta[:d * c].reshape(d, c), theta[d * c:]
        z = x @ kernel + bias
        p = expit(z)
        data = float((weight * (_softplus(z) - target * z)).sum())
        prior = float((0.5 * one_valued * (_softplus(bias) + _softplus(-bias))).sum())
        value = data + 0.5 * l2 * float((kernel ** 2).sum()) + prior
        dz = weight * (p - target)
        g_kernel = x.T @ dz + l2 * kernel
        g_bias = dz.sum(axis=0) + one_valued * (expit(bias) - 0.5)
        return value / scale, np.concatenate([g_kernel.ravel(), g_bias]) / scale

    res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_iter), "gtol": 1e-6, "ftol": 1e-10})
    if not res.success:
        logger.info("L-BFGS stopped before convergence: %s", res.message)
    kernel, bias = res.x[:d * c].reshape(d, c), res.x[d * c:]
    z = x @ kernel + bias
    loss = float((weight * (_softplus(z) - target * z)).sum() / scale)
    return LogisticFit(kernel.astype(np.float32), bias.astype(np.float32), loss,
                       int(res.nit), bool(res.success))


def prior_log_rates(labels: np.ndarray, row_weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Softmax bias predicting each class's weighted share of the rows' "yes" (plus a half
    pseudo-count each): the starting bias of a one-label-per-image output."""
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones(len(y)) if row_weights is None else np.asarray(row_weights, np.float64)
    counts = (w[:, None] * (y == 1)).sum(axis=0) + 0.5
    return np.log(counts / counts.sum())


def fit_multinomial(
    x: np.ndarray,
    labels: np.ndarray,
    row_weights: Optional[np.ndarray] = None,
    l2: float = 1.0,
    label_smoothing: float = 0.0,
    max_iter: int = 500,
    init: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> LogisticFit:
    """Multinomial logistic regression for a one-label-per-image table (a softmax output).

    Minimises ``sum_i w_i CE(t_i, softmax(x_i W + b)) + l2 / 2 * ||W||^2`` over the rows with
    exactly one "yes" (``t_i`` its one-hot row, smoothed to ``t (1 - s) + s / C``); a row
    without one is masked out. That is scikit-learn's ``LogisticRegression(C=1 / l2)`` with
    the multinomial loss and ``sample_weight``. When a class has no "yes", a pseudo-row of
    weight 1 with the uniform target is added on the bias alone, which keeps that class's
    bias finite (as the Jeffreys prior of :func:`fit_logistic`).

    Parameters are those of :func:`fit_logistic`; ``labels`` rows with more than one "yes"
    raise ``ValueError``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n, d = x.shape
    c = y.shape[1]
    yes = (y == 1).sum(axis=1)
    if (yes > 1).any():
        row = int(np.flatnonzero(yes > 1)[0])
        raise ValueError(f"one label per image: {int((yes > 1).sum())} training row(s) have "
                         f"more than one \"yes\" (e.g. row {row} of the training rows); set "
                         "single_label=False for a multi-label table")
    w = np.ones(n) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    w = w * (yes == 1)
    target = (y == 1) * (1.0 - label_smoothing) + label_smoothing / c
    missing = not (y[yes == 1] == 1).any(axis=0).all()
    scale = max(float(w.sum()), 1.0)
    if init is None:
        kernel0, bias0 = np.zeros((d, c)), prior_log_rates(y, w)
    else:
        kernel0, bias0 = (np.asarray(a, dtype=np.float64) for a in init)
    theta0 = np.concatenate([kernel0.ravel(), bias0.ravel()])

    def data_loss(z: np.ndarray) -> float:
        return float((w * -(target * log_softmax(z, axis=1)).sum(axis=1)).sum())

    def objective(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        if should_stop is not None and should_stop():
            raise Cancelled()
        kernel, bias = theta[:d * c].reshape(d, c), theta[d * c:]
        z = x @ kernel + bias
        value = data_loss(z) + 0.5 * l2 * float((kernel ** 2).sum())
        dz = w[:, None] * (softmax(z, axis=1) - target)
        g_kernel = x.T @ dz + l2 * kernel
        g_bias = dz.sum(axis=0)
        if missing:
            value += float(logsumexp(bias) - bias.mean())
            g_bias = g_bias + softmax(bias) - 1.0 / c
        return value / scale, np.concatenate([g_kernel.ravel(), g_bias]) / scale

    res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_iter), "gtol": 1e-6, "ftol": 1e-10})
    if not res.success:
        logger.info("L-BFGS stopped before convergence: %s", res.message)
    kernel, bias = res.x[:d * c].reshape(d, c), res.x[d * c:]
    loss = data_loss(x @ kernel + bias) / scale
    return LogisticFit(kernel.astype(np.float32), bias.astype(np.float32), loss,
                       int(res.nit), bool(res.success))


def out_of_fold(
    x: np.ndarray,
    labels: np.ndarray,
    row_weights: Optional[np.ndarray] = None,
    l2: float = 1.0,
    single_label: bool = False,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 500,
) -> np.ndarray:
    """Out-of-fold predictions of the labelled rows: each fold's rows predicted by the head
    fitted (:func:`fit_logistic`, or :func:`fit_multinomial` with ``single_label``) on the
    other folds. The held-out estimate the suggestion thresholds use when there are too few
    validation labels (:mod:`patchwork_widget.active.thresholds`).

    Parameters
    ----------
    x, labels, row_weights, l2, max_iter
        As :func:`fit_logistic`.
    single_label : bool
        Softmax outputs (multinomial) instead of one sigmoid per class.
    folds : int
        At least 2; fewer rows than folds gives one row per fold.
    seed : int
        Seed of the rows' random split into folds.

    Returns
    -------
    np.ndarray
        (n, C) probabilities.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n = len(x)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    if n < 2:
        raise ValueError(f"out-of-fold predictions need at least 2 labelled rows; got {n}")
    w = np.ones(n) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    which = np.random.default_rng(seed).permutation(n) % min(int(folds), n)
    solve = fit_multinomial if single_label else fit_logistic
    out = np.empty(y.shape)
    for k in np.unique(which):
        held = which == k
        found = solve(x[~held], y[~held], w[~held], l2, max_iter=max_iter)
        z = x[held] @ found.kernel.astype(np.float64) + found.bias
        out[held] = softmax(z, axis=1) if single_label else expit(z)
    return out
