"""M4: FixMatch pseudo-labels, mask fraction and loss on a hand-made batch; lambda=0 is plain
training; the feature-space strong view; the image path."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from patchwork_widget.models import (
    FineTuneOptions,
    FixMatchOptions,
    LossOptions,
    TrainOptions,
    build_models,
    fit,
    fixmatch_loss,
    loss_elements,
    perturb_features,
    pseudo_labels,
)

# hand-made weak-view outputs: 2 images x 4 classes, tau = 0.9
WEAK = np.array([[0.95, 0.05, 0.5, 0.9],
                 [0.1, 0.89, 0.11, 1.0]], np.float32)
STRONG = np.array([[0.8, 0.3, 0.6, 0.7],
                   [0.2, 0.5, 0.4, 0.99]], np.float32)


def test_pseudo_labels_and_mask_follow_tau():
    targets, mask = pseudo_labels(WEAK, 0.9)
    # p >= 0.9 -> 1; p <= 0.1 -> 0 (masked in); otherwise masked out
    np.testing.assert_array_equal(mask.numpy(), [[1, 1, 0, 1], [1, 0, 0, 1]])
    np.testing.assert_array_equal(targets.numpy() * mask.numpy(), [[1, 0, 0, 1], [0, 0, 0, 1]])


def test_fixmatch_loss_and_mask_fraction_by_hand():
    loss, frac = fixmatch_loss(WEAK, STRONG, 0.9, loss_elements(LossOptions()))
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], float)
    target = np.array([[1, 0, 0, 1], [0, 0, 0, 1]], float)
    q = STRONG.astype(float)
    bce = -(target * np.log(q) + (1 - target) * np.log(1 - q))
    assert float(frac) == pytest.approx(5 / 8)
    assert float(loss) == pytest.approx((mask * bce).sum() / 8, rel=1e-5)  # / (mu*B*C)


def test_no_gradient_flows_through_the_weak_view():
    weak = tf.Variable(WEAK)
    strong = tf.Variable(STRONG)
    with tf.GradientTape(persistent=True) as tape:
        loss, _ = fixmatch_loss(weak, strong, 0.9, loss_elements(LossOptions()))
    assert tape.gradient(loss, weak) is None
    g = tape.gradient(loss, strong).numpy()
    assert (g[[0, 1], [2, 2]] == 0).all() and g[1, 1] == 0 and g[0, 0] != 0


def test_nothing_confident_gives_zero_loss():
    loss, frac = fixmatch_loss(np.full((3, 2), 0.5), np.full((3, 2), 0.9), 0.95,
                               loss_elements(LossOptions()))
    assert float(loss) == 0.0 and float(frac) == 0.0


def test_perturb_features_drops_and_adds_scaled_noise():
    tf.random.set_seed(0)
    x = np.ones((200, 50), np.float32)
    dropped = perturb_features(x, 0.3, 0.0).numpy()
    assert abs((dropped == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(dropped[dropped != 0], 1 / 0.7, rtol=1e-6)
    noisy = perturb_features(3 * x, 0.0, 0.1).numpy()
    assert abs((noisy - 3).std() - 0.3) < 0.01  # noise sd = 0.1 x feature RMS (3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, d = 240, 16
    classes = ["a", "b", "c"]
    centers = rng.normal(size=(3, d)) * 2
    y = (rng.random((n, 3)) < 0.4).astype(float)
    feats = (rng.normal(size=(n, d)) + y @ centers).astype(np.float32)
    df = pd.DataFrame({"filepath": [f"{i}.png" for i in range(n)], "exclude": False,
                       "validation": rng.random(n) < 0.25})
    for j, c in enumerate(classes):
        df[c] = np.where(rng.random(n) < 0.5, np.nan, y[:, j])  # half the labels missing
    return df, feats, classes


def trained(data, fixmatch, seed=0):
    df, feats, classes = data
    keras.utils.set_random_seed(seed)
    models = build_models(classes, feature_shape=(feats.shape[1],))
    opts = TrainOptions(solver="minibatch", epochs=3, batch_size=16, batches_per_epoch=6, seed=5,
                        fixmatch=fixmatch)
    return models, fit(models, df, features=feats, options=opts)


def test_lambda_zero_is_exactly_plain_training(data):
    plain_models, plain = trained(data, FixMatchOptions())
    off_models, off = trained(data, FixMatchOptions(lam=0.0, tau=0.6, mu=2))
    pd.testing.assert_frame_equal(plain.history.drop(columns="seconds"),
                                  off.history.drop(columns="seconds"))
    for a, b in zip(plain_models.output.get_weights(), off_models.output.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "mask_fraction" not in off.history


def test_fixmatch_on_features_logs_its_terms(data):
    lam = 2.0
    _, result = trained(data, FixMatchOptions(lam=lam, tau=0.7, mu=2))
    h = result.history
    assert ((h["mask_fraction"] >= 0) & (h["mask_fraction"] <= 1)).all()
    assert h["mask_fraction"].iloc[-1] > 0
    np.testing.assert_allclose(
        h["loss"], h["supervised_loss"] + h["l2_penalty"] + lam * h["fixmatch_loss"], rtol=1e-5)


def test_fixmatch_on_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    paths = []
    for i in range(24):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    df = pd.DataFrame({"filepath": paths, "exclude": False, "validation": [False] * 20 + [True] * 4,
                       "a": [0.0, 1.0] * 6 + [np.nan] * 8 + [0.0, 1.0, 0.0, 1.0]})
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    ext = keras.Model(inp, keras.layers.Conv2D(4, 3, strides=2)(inp))
    models = build_models(["a"], extractor=ext, options=FineTuneOptions(pooling="avg"))
    fm = FixMatchOptions(lam=1.0, tau=0.51, mu=2,
                         strong_aug={"jitter": 1.0, "mask": 0.5, "gaussian_noise": 0.5})
    result = fit(models, df, options=TrainOptions(epochs=1, batch_size=4, batches_per_epoch=2,
                                                 fixmatch=fm))
    assert 0.0 <= result.history["mask_fraction"].iloc[0] <= 1.0
    assert np.isfinite(result.history["fixmatch_loss"]).all()


@pytest.mark.parametrize("bad,match", [
    ({"tau": 0.5}, "tau"), ({"mu": 0}, "mu"), ({"lam": -1}, "lam"),
    ({"strong_aug": {"blur": 1}}, "unknown augmentation key")])
def test_options_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        FixMatchOptions(**bad)


def test_reference_name_lambda_is_accepted():
    assert FixMatchOptions.from_dict({"lambda": 1.0, "tau": 0.9}).enabled
    with pytest.raises(ValueError, match="unknown fixmatch option"):
        FixMatchOptions.from_dict({"threshold": 0.9})
