"""Uncertainty scores of model outputs: larger means "label me first" (A2, A5).

Sigmoid (multi-hot) outputs are scored per class with the binary entropy; softmax
(single-label) outputs with the classic least-confidence, margin and Shannon-entropy scores
(Settles 2009, "Active Learning Literature Survey", section 3.1).
"""

from __future__ import annotations

import numpy as np

from patchwork_widget.active._checks import check_probs


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), elementwise; 0 at p = 0 or 1, 1 at p = 0.5."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    out = np.zeros_like(p)
    inside = (p > 0.0) & (p < 1.0)
    q = p[inside]
    out[inside] = -(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q))
    return out


KINDS = ("entropy", "least confidence", "margin")
OUTPUTS = ("sigmoid", "softmax")


def score(kind: str, probs: np.ndarray, output: str = "sigmoid",
          labels: np.ndarray | None = None) -> np.ndarray:
    """Uncertainty of each row; larger = label first.

    ``kind`` is ``"entropy"``, ``"least confidence"`` or ``"margin"``. Softmax outputs (one
    label per row) use the classic scores. Sigmoid outputs (multi-hot) use their per-class
    analogues: binary entropy, ``1 - max(p, 1 - p)`` and ``1 - |2p - 1|`` (the two outcomes of
    a class are its "top two"), averaged over the row's classes. The mean rather than the sum
    keeps the score in [0, 1] whatever the number of classes, and rewards rows uncertain about
    several classes at once. With ``labels`` (N x C, NaN = missing), classes already labeled
    for a row are left out of its mean; a row with every class labeled scores 0.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown uncertainty kind {kind!r}; allowed: {', '.join(KINDS)}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    if output == "softmax":
        return {"entropy": entropy, "least confidence": least_confidence, "margin": margin}[kind](probs)
    p = check_probs(probs)
    per_class = {"entropy": binary_entropy, "least confidence": lambda q: 1.0 - np.maximum(q, 1.0 - q),
                 "margin": lambda q: 1.0 - np.abs(2.0 * q - 1.0)}[kind](p)
    if labels is None:
        return per_class.mean(axis=1)
    open_ = np.isnan(np.asarray(labels, dtype=np.float64))
    if open_.shape != p.shape:
        raise ValueError(f"labels has shape {open_.shape}; probs has {p.shape}")
    count = open_.sum(axis=1)
    total = np.where(open_, per_class, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.zeros(len(p)), where=count > 0)


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
