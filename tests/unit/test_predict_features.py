"""Predictions on features (M5): the NumPy path of a one-Dense head gives the Keras head's
numbers, sigmoid and softmax alike; other heads still run through Keras."""

from __future__ import annotations

import numpy as np
import pytest

from patchwork_widget.images import feature_rows
from patchwork_widget.models import build_models
from patchwork_widget.models.predictions import _dense_head, predict_features
from patchwork_widget.options.model import FineTuneOptions

CLASSES = ["cat", "dog", "bird"]


def _randomised(models, seed: int = 0):
    rng = np.random.default_rng(seed)
    for part in (models.fine_tuning, models.output):
        part.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in part.get_weights()])
    return models


def _keras(models, x: np.ndarray) -> np.ndarray:
    return np.asarray(models.head()(x, training=False))


@pytest.mark.parametrize("single_label", [False, True])
def test_a_dense_head_gives_the_keras_numbers(single_label, monkeypatch):
    models = _randomised(build_models(CLASSES, feature_shape=(16,), single_label=single_label))
    x = np.random.default_rng(1).normal(size=(1000, 16)).astype(np.float32)
    assert _dense_head(models) is not None
    monkeypatch.setattr(feature_rows, "CHUNK_BYTES", 300 * 16 * 4)  # 300-row blocks, a short last one
    ours = predict_features(models, x)
    assert ours.dtype == np.float32 and ours.shape == (1000, 3)
    np.testing.assert_allclose(ours, _keras(models, x), rtol=1e-5, atol=1e-6)
    if single_label:
        np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-5)


def test_a_memmap_of_features_gives_the_same_numbers(tmp_path):
    models = _randomised(build_models(CLASSES, feature_shape=(8,)))
    x = np.random.default_rng(2).normal(size=(50, 8)).astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    np.testing.assert_allclose(predict_features(models, mm), _keras(models, x), rtol=1e-5,
                               atol=1e-6)


def test_a_feature_map_head_runs_through_keras():
    models = _randomised(build_models(CLASSES, feature_shape=(4, 4, 5),
                                      options=FineTuneOptions(kind="convnet", spec="4")))
    x = np.random.default_rng(3).normal(size=(20, 4, 4, 5)).astype(np.float32)
    assert _dense_head(models) is None
    np.testing.assert_allclose(predict_features(models, x), _keras(models, x), rtol=1e-5,
                               atol=1e-6)
