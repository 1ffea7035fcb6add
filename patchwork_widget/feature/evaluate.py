"""Benchmarks of a feature extractor while it trains (feature F2).

- :func:`alignment` and :func:`uniformity` of normalised embeddings (Wang and Isola 2020);
- :func:`linear_classification_test`: the linear probe of self-supervision papers, on a
  deterministic split of the labelled images;
- :func:`rotation_classification_test`: Reed et al.'s label-free proxy, a linear probe that
  predicts which of four quarter turns was applied.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.preprocessing import StandardScaler

from patchwork_widget.images.pipeline import dataset
from patchwork_widget.options.checks import check_array, check_seed, shown

__all__ = [
    "LinearProbeResult",
    "alignment",
    "deterministic_split",
    "feature_function",
    "linear_classification_test",
    "load_images",
    "pooled_features",
    "rotation_classification_test",
    "uniformity",
]


def alignment(z1: Any, z2: Any, alpha: float = 2.0) -> float:
    """``E ||f(x) - f(y)||^alpha`` over positive pairs of normalised embeddings (lower is
    better; Wang and Isola 2020, https://arxiv.org/abs/2005.10242, eq. 4)."""
    d = np.linalg.norm(np.asarray(z1, np.float64) - np.asarray(z2, np.float64), axis=1)
    return float(np.mean(d ** alpha))


def uniformity(z: Any, t: float = 2.0) -> float:
    """``log E exp(-t ||f(x) - f(y)||^2)`` over distinct pairs of normalised embeddings
    (lower is better; Wang and Isola 2020, eq. 5)."""
    z = np.asarray(z, np.float64)
    sq = np.maximum(np.sum(z ** 2, 1)[:, None] + np.sum(z ** 2, 1)[None, :] - 2 * z @ z.T, 0)
    iu = np.triu_indices(len(z), k=1)
    v = -t * sq[iu]
    top = v.max()
    return float(top + np.log(np.mean(np.exp(v - top))))


def deterministic_split(keys: Sequence[str], test_fraction: float = 1 / 3) -> np.ndarray:
    """Boolean test mask from a hash of each key's file name (the part after the last ``/``).

    The same file always lands on the same side, whatever the order, the other keys or the
    folder the images were moved to, so runs with different subsets of labels stay
    comparable.
    """
    def unit(key: str) -> float:
        name = os.path.basename(os.fspath(key))
        digest = hashlib.md5(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "little") / 2 ** 64

    return np.array([unit(k) < test_fraction for k in keys], dtype=bool)


@dataclass
class LinearProbeResult:
    """Test accuracy and confusion matrix (rows: true class, columns: predicted, in the order
    of ``classes``) of a linear probe."""

    accuracy: float
    confusion: np.ndarray
    classes: List[Any]


def linear_classification_test(
    features: np.ndarray, labels: Sequence[Any], test_mask: np.ndarray, seed: int = 0,
) -> LinearProbeResult:
    """Fit a multinomial logistic regression on standardised features; score the test rows.

    Parameters
    ----------
    features : np.ndarray
        ``(N, d)`` features, e.g. from :func:`pooled_features`.
    labels : sequence
        ``N`` class labels (any hashable values).
    test_mask : np.ndarray
        ``N`` booleans, True for the held-out rows (see :func:`deterministic_split`).
    seed : int
        Seed of the solver.
    """
    features = check_array("features", features, 2)
    if isinstance(labels, str) or np.ndim(labels) != 1:
        raise ValueError(f"labels must be a sequence of N class labels; got {shown(labels)}")
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"labels must be known for every row; {int(np.isnan(labels).sum())} "
                         "are NaN")
    if isinstance(test_mask, str) or np.ndim(test_mask) != 1:
        raise ValueError(f"test_mask must be N booleans; got {shown(test_mask)}")
    test_mask = np.asarray(test_mask, dtype=bool)
    check_seed("seed", seed)
    if len(features) != len(labels) or len(labels) != len(test_mask):
        raise ValueError(f"features ({len(features)}), labels ({len(labels)}) and test_mask "
                         f"({len(test_mask)}) must have the same length")
    train = ~test_mask
    if test_mask.sum() == 0 or len(np.unique(labels[train])) < 2:
        raise ValueError("the linear probe needs held-out rows and at least two classes among "
                         "the training rows; give more labelled images")
    scaler = StandardScaler().fit(features[train])
    clf = LogisticRegression(max_iter=1000, random_state=seed)
    clf.fit(scaler.transform(features[train]), labels[train])
    pred = clf.predict(scaler.transform(features[test_mask]))
    classes = sorted(np.unique(labels).tolist(), key=str)
    cm = confusion_matrix(labels[test_mask], pred, labels=classes)
    return LinearProbeResult(float(accuracy_score(labels[test_mask], pred)), cm, classes)


def load_images(
    files: Any, imshape: Tuple[int, int], num_channels: int = 3,
    norm: Optional[float] = 255, single_channel: bool = False, batch_size: int = 256,
) -> np.ndarray:
    """Decode ``files`` (paths, or an image array) in order into a float32 ``(N, H, W, C)``
    array in [0, 1]."""
    ds, _ = dataset(files, imshape=imshape, num_channels=num_channels, norm=norm,
                    single_channel=single_channel, batch_size=batch_size, shuffle=False)
    return np.concatenate([x.numpy() for x in ds], axis=0)


def feature_function(fcn: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """A compiled ``images -> globally average-pooled fcn features`` (inference mode)."""
    spec = tf.TensorSpec([None, None, None, fcn.inputs[0].shape[-1]], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def features(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(fcn(x, training=False), axis=[1, 2])

    return features


def pooled_features(fcn: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Average-pooled features of ``images`` ``(N, H, W, C)`` as ``(N, channels)``.

    ``fcn`` is a Keras model or a function from :func:`feature_function`.
    """
    fn = feature_function(fcn) if isinstance(fcn, keras.Model) else fcn
    out = [fn(tf.constant(images[i:i + batch_size])).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out, axis=0)


def rotation_classification_test(
    fcn: Any, images: np.ndarray, batch_size: int = 256, seed: int = 0,
) -> LinearProbeResult:
    """Linear probe predicting the quarter turn (0, 90, 180, 270 degrees) of each image.

    Reed et al. 2021, "SelfAugment" (first titled "Evaluating Self-Supervised Pretraining
    Without Using Labels"), https://arxiv.org/abs/2009.07724: the rotation proxy tracks
    downstream linear accuracy without any labels. The four turns of one image stay on the same side of
    the split. Images should be square so every turn keeps the shape.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"rotation_classification_test needs square images (N, S, S, C); "
                         f"got shape {images.shape}")
    if len(images) < 6:
        raise ValueError(f"rotation_classification_test needs at least 6 images; "
                         f"got {len(images)}")
    fn = feature_function(fcn) if isinstance(fcn, keras.Model) else fcn
    feats = np.concatenate(
        [pooled_features(fn, np.rot90(images, k, axes=(1, 2)).copy(), batch_size)
         for k in range(4)], axis=0)
    labels = np.repeat(np.arange(4), len(images))
    held_out = np.arange(len(images)) % 3 == 0
    return linear_classification_test(feats, labels, np.tile(held_out, 4), seed=seed)
