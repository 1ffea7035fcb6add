"""Uncertainty scores of model outputs: larger means "label me first" (A2, A5).

Sigmoid (multi-hot) outputs are scored per class with the binary entropy; softmax
(single-label) outputs with the classic least-confidence, margin and Shannon-entropy scores
(Settles 2009, "Active Learning Literature Survey", section 3.1).
"""

from __future__ import annotations

import numpy as np

from patchwork_widget.active._checks import check_probs


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), elementwise; 0 at p = 0 or 1, 1 at p = 0.5; NaN for
    NaN (no output)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    out = np.where(np.isnan(p), np.nan, 0.0)
    inside = (p > 0.0) & (p < 1.0)
    q = p[inside]
    out[inside] = -(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q))
    return out


KINDS = ("entropy", "least confidence", "margin")
OUTPUTS = ("sigmoid", "softmax")


def per_class(kind: str, probs: np.ndarray, output: str = "sigmoid") -> np.ndarray | None:
    """The per-class analogue of ``kind`` for sigmoid outputs (N x C); None for softmax,
    whose scores are per row. What :func:`score` averages; worth caching while ``probs``
    stay the same."""
    _check(kind, output)
    if output == "softmax":
        return None
    p = check_probs(probs)
    return {"entropy": binary_entropy, "least confidence": lambda q: 1.0 - np.maximum(q, 1.0 - q),
            "margin": lambda q: 1.0 - np.abs(2.0 * q - 1.0)}[kind](p)


def _check(kind: str, output: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown uncertainty kind {kind!r}; allowed: {', '.join(KINDS)}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")


def score(kind: str, probs: np.ndarray, output: str = "sigmoid",
          labels: np.ndarray | None = None, class_scores: np.ndarray | None = None) -> np.ndarray:
    """Uncertainty of each row; larger = label first.

    ``kind`` is ``"entropy"``, ``"least confidence"`` or ``"margin"``. Softmax outputs (one
    label per row) use the classic scores. Sigmoid outputs (multi-hot) use their per-class
    analogues: binary entropy, ``1 - max(p, 1 - p)`` and ``1 - |2p - 1|`` (the two outcomes of
    a class are its "top two"), averaged over the row's classes. The mean rather than the sum
    keeps the score in [0, 1] whatever the number of classes, and rewards rows uncertain about
    several classes at once. With ``labels`` (N x C, NaN = missing), classes already labeled
    for a row are left out of its mean; a row with every class labeled scores 0. A row
    without outputs (NaN) scores NaN. ``class_scores`` is :func:`per_class`'s result, if at hand.
    """
    _check(kind, output)
    if output == "softmax":
        return {"entropy": entropy, "least confidence": least_confidence, "margin": margin}[kind](probs)
    if class_scores is None:
        class_scores = per_class(kind, probs, output)
    means = class_scores.mean(axis=1)  # right for every row with all classes open
    if labels is None:
        return means
    labels = np.asarray(labels, dtype=np.float64)
    if labels.shape != class_scores.shape:
        raise ValueError(f"labels has shape {labels.shape}; probs has {class_scores.shape}")
    touched = np.flatnonzero(~np.isnan(labels).all(axis=1))  # usually few: recompute only them
    open_ = np.isnan(labels[touched])
    count = open_.sum(axis=1)
    total = np.where(open_, class_scores[touched], 0.0).sum(axis=1)
    means[touched] = np.divide(total, count, out=np.zeros(len(touched)), where=count > 0)
    return means


def mean_binary_entropy(probs: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Mean binary entropy over a row's open classes: :func:`score` ``("entropy")`` for
    sigmoid outputs (the "max entropy" order)."""
    return score("entropy", probs, "sigmoid", labels)


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c`` for softmax outputs (Lewis and Gale 1994)."""
    return 1.0 - check_probs(probs).max(axis=1)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_first - p_second)``: a small gap between the top two classes scores high
    (Scheffer et al. 2001). A single column counts as a binary problem ``[1 - p, p]``."""
    p = _two_or_more(check_probs(probs))
    top = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0])


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each softmax row (Shannon 1948; Settles 2009)."""
    p = _two_or_more(check_probs(probs))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0.0, p * np.log2(p), 0.0)
    return -terms.sum(axis=1)


def _two_or_more(p: np.ndarray) -> np.ndarray:
    return np.hstack([1.0 - p, p]) if p.shape[1] == 1 else p
