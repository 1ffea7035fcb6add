"""Calibrated probabilities: Platt scaling per class, temperature scaling of a softmax and the
expected calibration error.

Platt scaling (Platt 1999) maps a class's logit ``z`` to ``sigmoid(a z + b)`` with ``a > 0``,
fitted on the validation labels; ``a > 0`` keeps the ranking, so AUC is unchanged. With few
validation labels the fit is held near the identity by a unit Gaussian prior on ``(log a, b)``.
The result is folded into the output layer (kernel times ``a``, bias ``a * bias + b``), so
predictions, saved models and the end-to-end classifier are all calibrated. A softmax output
(one label per image) gets one temperature instead (Guo et al. 2017,
https://arxiv.org/abs/1706.04599): ``softmax(z / T)``, folded in as ``a = 1 / T, b = 0``.
NumPy and SciPy.
"""

from __future__ import annotations

import logging
from typing import Any, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax

from patchwork_widget.options.checks import check_array, check_int

logger = logging.getLogger(__name__)

EPS = 1e-7


def logits(probs: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def check_scores_and_labels(scores: Any, labels: Any, name: str = "probs",
                            low: float = 0.0, high: float = 1.0
                            ) -> Tuple[np.ndarray, np.ndarray]:
    """``scores`` (argument ``name``; (n, C) in ``[low, high]``, NaN for missing) and
    ``labels`` ((n, C) of 0, 1 or NaN) as float arrays of one shape, or ``ValueError``."""
    p = check_array(name, scores, 2, low=low, high=high, allow_nan=True)
    y = check_array("labels", labels, 2, allow_nan=True, values=(0.0, 1.0))
    if p.shape != y.shape:
        raise ValueError(f"{name} has shape {p.shape} but labels has {y.shape}; they must match")
    return p, y


def platt_scaling(z: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class ``(a, b)`` for logits ``z`` (n, C) and labels (n, C; 1, 0 or NaN).

    A class without both a positive and a negative label (or with a NaN logit) keeps
    ``a = 1, b = 0``.
    """
    z, y = check_scores_and_labels(z, labels, "z", low=-np.inf, high=np.inf)
    c = y.shape[1]
    a, b = np.ones(c), np.zeros(c)
    for j in range(c):
        ok = ~np.isnan(y[:, j]) & np.isfinite(z[:, j])
        zj, yj = z[ok, j], y[ok, j]
        if not (yj == 1).any() or not (yj == 0).any():
            continue

        def objective(theta: np.ndarray, zj=zj, yj=yj) -> Tuple[float, np.ndarray]:
            s, off = theta
            scale = np.exp(s)
            u = scale * zj + off
            value = np.logaddexp(0.0, u).sum() - (yj * u).sum() + 0.5 * (s * s + off * off)
            du = expit(u) - yj
            return value, np.array([(du * zj).sum() * scale + s, du.sum() + off])

        res = minimize(objective, np.zeros(2), jac=True, method="L-BFGS-B")
        a[j], b[j] = np.exp(res.x[0]), res.x[1]
    return a, b


def temperature_scaling(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the cross-entropy of ``softmax(log(p) / T)`` on the
    rows with exactly one "yes" (1.0 when fewer than two such rows or classes); ``log T`` has
    the unit Gaussian prior of :func:`platt_scaling`, so few rows keep it near 1."""
    p, y = check_scores_and_labels(probs, labels)
    ok = ((y == 1).sum(axis=1) == 1) & ~np.isnan(p).any(axis=1)
    if ok.sum() < 2 or len((y[ok] == 1).any(axis=0).nonzero()[0]) < 2:
        return 1.0
    z = np.log(np.clip(p[ok], EPS, 1.0))
    target = y[ok] == 1

    def objective(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        s = theta[0]
        a = np.exp(-s)
        logp = log_softmax(a * z, axis=1)
        value = -logp[target].sum() + 0.5 * s * s
        q = np.exp(logp)
        d_a = ((q - target) * z).sum()  # d value / d a
        return value, np.array([-a * d_a + s])

    res = minimize(objective, np.zeros(1), jac=True, method="L-BFGS-B")
    return float(np.exp(res.x[0]))


def fold_into_output(output: Any, a: np.ndarray, b: np.ndarray) -> None:
    """Rescale the output model's last ``Dense`` layer in place: ``z -> a z + b`` per class."""
    kernel, bias = output.layers[-1].get_weights()
    output.layers[-1].set_weights([(kernel * a).astype(kernel.dtype),
                                   (bias * a + b).astype(bias.dtype)])


def calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> np.ndarray:
    """Expected calibration error per class (Naeini et al. 2015; Guo et al. 2017):
    ``sum_k n_k / n * |mean(y in bin k) - mean(p in bin k)|`` over ``bins`` equal-width bins of
    the predicted probability, on the labelled entries; NaN for a class with no label."""
    p, y = check_scores_and_labels(probs, labels)
    bins = check_int("bins", bins, 1)
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        ok = ~np.isnan(y[:, j]) & ~np.isnan(p[:, j])
        if not ok.any():
            continue
        pj, yj = np.clip(p[ok, j], 0.0, 1.0), y[ok, j]
        which = np.minimum((pj * bins).astype(int), bins - 1)
        count = np.bincount(which, minlength=bins)
        gap = np.abs(np.bincount(which, yj, bins) - np.bincount(which, pj, bins))
        out[j] = float(gap.sum() / count.sum())
    return out
