"""M2: masked losses equal Keras' own on full labels; missing labels pass exactly no gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from patchwork_widget.models.losses import (
    LossOptions,
    loss_function,
    masked_binary_crossentropy,
    masked_binary_focal_crossentropy,
)

RNG = np.random.default_rng(5)


def batch(n=17, c=5):
    y = RNG.integers(0, 2, (n, c)).astype(np.float32)
    p = RNG.uniform(0.0, 1.0, (n, c)).astype(np.float32)
    p[0, :3] = [0.0, 1.0, 1e-9]  # clipped extremes
    return y, p


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_masked_bce_equals_keras_on_full_labels(smoothing):
    y, p = batch()
    ours = float(masked_binary_crossentropy(y, p, label_smoothing=smoothing))
    ref = float(keras.losses.BinaryCrossentropy(label_smoothing=smoothing)(y, p))
    assert ours == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("gamma,alpha,smoothing", [
    (2.0, None, 0.0), (0.0, None, 0.0), (1.5, 0.25, 0.0), (3.0, 0.75, 0.1), (2.0, None, 0.2),
])
def test_masked_focal_equals_keras_on_full_labels(gamma, alpha, smoothing):
    y, p = batch()
    ours = float(masked_binary_focal_crossentropy(y, p, gamma=gamma, alpha=alpha,
                                                  label_smoothing=smoothing))
    ref = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else alpha,
        gamma=gamma, label_smoothing=smoothing)(y, p)
    assert ours == pytest.approx(float(ref), abs=1e-6)


def test_loss_options_build_the_same_losses():
    y, p = batch()
    bce = loss_function(LossOptions("bce", label_smoothing=0.1))
    assert float(bce(y, p)) == pytest.approx(float(masked_binary_crossentropy(y, p, 0.1)), abs=0)
    focal = loss_function(LossOptions("focal", gamma=1.0, alpha=0.3))
    ref = masked_binary_focal_crossentropy(y, p, gamma=1.0, alpha=0.3)
    assert float(focal(y, p)) == pytest.approx(float(ref), abs=0)


def partial_batch():
    y, p = batch()
    y[RNG.random(y.shape) < 0.4] = np.nan
    y[3, :] = np.nan
    return y, p


def test_reduction_is_the_mean_over_present_entries():
    y, p = partial_batch()
    present = ~np.isnan(y)
    q = np.clip(p, 1e-7, 1 - 1e-7).astype(np.float64)
    t = np.nan_to_num(y)
    elementwise = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    expected = elementwise[present].mean()
    assert float(masked_binary_crossentropy(y, p)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [
    masked_binary_crossentropy,
    lambda y, p: masked_binary_crossentropy(y, p, label_smoothing=0.2),
    masked_binary_focal_crossentropy,
    lambda y, p: masked_binary_focal_crossentropy(y, p, gamma=1.0, alpha=0.4),
])
def test_missing_outputs_get_exactly_zero_gradient(loss):
    y, p = partial_batch()
    p[np.isnan(y)] = 1.0  # saturated: a NaN or inf would leak through NaN * 0
    logits = tf.Variable(np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6))))
    with tf.GradientTape(persistent=True) as tape:
        probs = tf.sigmoid(logits)
        value = loss(y, probs)
    for target in (probs, logits):
        g = tape.gradient(value, target).numpy()
        assert np.isfinite(g).all() and np.isfinite(float(value))
        assert (g[np.isnan(y)] == 0.0).all()
        assert (g[~np.isnan(y)] != 0.0).any()


def test_a_batch_without_labels_gives_zero_loss_and_gradient():
    p = tf.Variable(np.full((4, 3), 0.3, np.float32))
    with tf.GradientTape() as tape:
        value = masked_binary_crossentropy(np.full((4, 3), np.nan), p)
    assert float(value) == 0.0
    assert not tape.gradient(value, p).numpy().any()


@pytest.mark.parametrize("bad", [{"kind": "hinge"}, {"label_smoothing": 1.0},
                                 {"gamma": -1}, {"alpha": 2.0}])
def test_loss_options_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LossOptions(**bad)
    with pytest.raises(ValueError, match="unknown loss option"):
        LossOptions.from_dict({"smoothing": 0.1})
