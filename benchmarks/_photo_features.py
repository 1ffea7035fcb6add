"""Realistic image features for the kNN benchmark, built from the photos bundled with
scikit-image (nothing is downloaded).

Each row describes a random 24 x 24 patch of one of the photos (random position, horizontal
flip, brightness 0.8-1.2, pixel noise): a 4 x 4 x 4 colour histogram (square-rooted, 64
values), gradient-orientation histograms on a 3 x 3 grid (8 orientations, 72 values, HOG-like)
and a random layer on the mean-subtracted pixels (Gaussian weights, ReLU: a crude stand-in for a
CNN's features, the rest of the ``d`` values), each part L2-normalised.
"""

from __future__ import annotations

import numpy as np
from skimage import data

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "retina", "hubble_deep_field",
          "immunohistochemistry", "colorwheel", "brick", "grass", "gravel", "camera", "moon",
          "coins", "horse", "cell", "page", "text", "clock")
PATCH = 24
GRID = 3
ORIENTATIONS = 8


def photos() -> list[np.ndarray]:
    """The bundled photos as float32 RGB in [0, 1]."""
    out = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)(), dtype=np.float32)
        image = image / 255.0 if image.max() > 1.5 else image
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        out.append(image)
    return out


def patches(n: int, rng: np.random.Generator) -> np.ndarray:
    """n x 24 x 24 x 3 random patches of the photos."""
    images = photos()
    which = rng.integers(0, len(images), n)
    out = np.empty((n, PATCH, PATCH, 3), np.float32)
    offset = np.arange(PATCH)
    for i, image in enumerate(images):
        rows = np.flatnonzero(which == i)
        ys = rng.integers(0, image.shape[0] - PATCH, len(rows))[:, None, None] + offset[:, None]
        xs = rng.integers(0, image.shape[1] - PATCH, len(rows))[:, None, None] + offset
        out[rows] = image[ys, xs]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    out *= rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    out += 0.02 * rng.standard_normal(out.shape, dtype=np.float32)
    return out


def photo_features(n: int, d: int = 256, seed: int = 0) -> np.ndarray:
    """n x d float32 features of random photo patches (see the module docstring)."""
    width = d - 64 - GRID * GRID * ORIENTATIONS
    if width < 1:
        raise ValueError(f"d must be at least {65 + GRID * GRID * ORIENTATIONS}, got {d}")
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n, 20_000):  # bounded memory
        p = patches(min(20_000, n - start), rng)
        parts.append(np.hstack([_colour(p), _gradients(p), _pixels(p, width, seed)]))
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)


def _colour(p: np.ndarray) -> np.ndarray:
    n = len(p)
    q = np.clip((p * 4).astype(np.int64), 0, 3)
    code = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n, -1) + 64 * np.arange(n)[:, None]
    hist = np.bincount(code.ravel(), minlength=64 * n).reshape(n, 64)
    return _unit(np.sqrt(hist))


def _gradients(p: np.ndarray) -> np.ndarray:
    n = len(p)
    g = p.mean(axis=3)
    gy, gx = np.zeros_like(g), np.zeros_like(g)
    gy[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    angle = np.minimum((np.arctan2(gy, gx) % np.pi) / np.pi * ORIENTATIONS, ORIENTATIONS - 1)
    cell = np.arange(PATCH) // (PATCH // GRID)
    where = (cell[:, None] * GRID + cell[None, :]) * ORIENTATIONS + angle.astype(np.int64)
    bins = GRID * GRID * ORIENTATIONS
    where = where.reshape(n, -1) + bins * np.arange(n)[:, None]
    hist = np.bincount(where.ravel(), weights=np.hypot(gx, gy).ravel(), minlength=bins * n)
    return _unit(hist.reshape(n, bins))


def _pixels(p: np.ndarray, width: int, seed: int) -> np.ndarray:
    """A random layer on the mean-subtracted pixels: Gaussian weights, then ReLU."""
    n = len(p)
    weights = np.random.default_rng(seed + 1).standard_normal((p[0].size, width))
    flat = (p - p.mean(axis=(1, 2, 3), keepdims=True)).reshape(n, -1)
    return _unit(np.maximum(flat @ weights.astype(np.float32), 0))
