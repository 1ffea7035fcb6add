"""Issue 22: one label per image as a first-class mode (detection, softmax head, masked
categorical loss, multinomial L-BFGS, temperature scaling), checked against scikit-learn's
multinomial logistic regression and Keras' own losses."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from scipy.special import softmax  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset  # noqa: E402
from patchwork_widget.labels.schema import one_label_per_row  # noqa: E402
from patchwork_widget.models import (  # noqa: E402
    LossOptions,
    TrainOptions,
    build_models,
    fit,
    load_models,
    predict,
    save_models,
)
from patchwork_widget.models.calibration import temperature_scaling  # noqa: E402
from patchwork_widget.models.convex import fit_multinomial  # noqa: E402
from patchwork_widget.models.losses import masked_categorical_loss  # noqa: E402

NAN = np.nan
CLASSES = demo_classes()


def test_one_label_per_row_detection():
    assert one_label_per_row([[1, 0, NAN], [NAN, 1, NAN], [NAN, NAN, NAN]])
    assert not one_label_per_row([[1, 1, NAN], [NAN, 1, NAN]])  # two "yes"
    assert not one_label_per_row([[0, NAN, NAN], [NAN, 1, NAN]])  # a row of "no" only
    assert not one_label_per_row([[NAN, NAN], [NAN, NAN]])  # nothing labeled
    assert not one_label_per_row([[1.0], [1.0]])  # one class is not a choice
    with pytest.raises(ValueError, match=r"labels must have shape \(N, C\)"):
        one_label_per_row([1.0, 0.0])


@pytest.fixture(scope="module")
def wine():
    x, t = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(x), t


def test_multinomial_fit_equals_sklearn_with_weights_and_masks_rows_without_a_yes(wine):
    x, t = wine
    y = np.eye(3)[t]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(x))
    masked = y.copy()
    masked[:20] = np.where(masked[:20] == 1, NAN, masked[:20])  # "no" only: masked out
    found = fit_multinomial(x, masked, w, l2=2.0)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(x[20:], t[20:],
                                                                    sample_weight=w[20:])
    assert found.converged
    np.testing.assert_allclose(softmax(x @ found.kernel + found.bias, axis=1),
                               ref.predict_proba(x), atol=1e-4)
    with pytest.raises(ValueError, match="more than one \"yes\""):
        fit_multinomial(x[:3], [[1, 1, 0], [1, 0, 0], [0, 1, 0]])


def test_a_class_without_a_yes_keeps_a_finite_bias(wine):
    x, t = wine
    keep = t < 2
    found = fit_multinomial(x[keep], np.eye(3)[t[keep]])
    assert np.isfinite(found.bias).all()
    p = softmax(x[keep] @ found.kernel + found.bias, axis=1)
    assert p[:, 2].max() < 0.05


def test_masked_categorical_loss_is_keras_loss_on_the_counted_rows():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(6, 4)), axis=1).astype(np.float32)
    y = np.eye(4)[rng.integers(0, 4, 6)]
    y[1] = [0, NAN, NAN, NAN]  # no "yes": masked
    y[4] = [1, 1, NAN, NAN]  # two: masked
    counted = [0, 2, 3, 5]
    for options in (LossOptions(), LossOptions(label_smoothing=0.1),
                    LossOptions(kind="focal", gamma=2.0, alpha=0.25)):
        got = float(masked_categorical_loss(y, probs, options))
        if options.kind.value == "focal":
            ref = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0)
        else:
            ref = keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing)
        assert got == pytest.approx(float(ref(y[counted], probs[counted])), rel=1e-5)
    logits = tf.Variable(rng.normal(size=(6, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = masked_categorical_loss(y, tf.nn.softmax(logits))
    grad = tape.gradient(loss, logits).numpy()
    assert np.all(grad[[1, 4]] == 0) and np.abs(grad[counted]).sum() > 0
    assert float(masked_categorical_loss(np.full((2, 3), NAN), probs[:2, :3])) == 0.0


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3.0, size=(4000, 5))
    truth = softmax(z / 2.0, axis=1)  # labels drawn at temperature 2
    labels = np.eye(5)[[rng.choice(5, p=row) for row in truth]]
    assert temperature_scaling(softmax(z, axis=1), labels) == pytest.approx(2.0, rel=0.1)
    assert temperature_scaling(softmax(z[:1], axis=1), labels[:1]) == 1.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A one-label-per-image demo table (30 images per class) and its features."""
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=30, patch_size=32,
                           multi_label_fraction=0.0)
    truth = df[CLASSES].to_numpy().copy()
    assert one_label_per_row(truth)
    return df, truth, demo_features(df["filepath"].tolist())


def _labelled(df, truth, rows):
    out = df.copy()
    known = np.zeros(len(df), bool)
    known[rows] = True
    out[CLASSES] = np.where(known[:, None], truth, NAN)
    return out


def test_fit_detects_one_label_per_image_and_equals_multinomial_logistic_regression(demo,
                                                                                    tmp_path):
    df, truth, x = demo
    rows = np.random.default_rng(0).permutation(len(df))[:120]
    table = _labelled(df, truth, rows)
    models = build_models(CLASSES, feature_shape=x.shape[1:])
    result = fit(models, table, features=x, options=TrainOptions(calibrate=False))
    assert result.single_label and models.single_label and result.solver == "lbfgs"
    probs = predict(models, table, features=x)[CLASSES].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    target = truth[rows].argmax(axis=1)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x[rows], target)
    np.testing.assert_allclose(probs[:, ref.classes_], ref.predict_proba(x), atol=5e-3)
    save_models(models, tmp_path / "m")
    assert load_models(tmp_path / "m").single_label
    # a declared multi-label run goes back to sigmoids on the same table
    fit(models, table, features=x, options=TrainOptions(calibrate=False, single_label=False))
    assert not models.single_label
    again = predict(models, table, features=x)[CLASSES].to_numpy()
    assert np.abs(again.sum(axis=1) - 1.0).max() > 0.1


def test_minibatch_single_label_and_a_declared_mode_on_a_multi_hot_table(demo):
    df, truth, x = demo
    rng = np.random.default_rng(1)
    rows = rng.permutation(len(df))[:120]
    table = _labelled(df, truth, rows)
    models = build_models(CLASSES, feature_shape=x.shape[1:])
    options = TrainOptions(solver="minibatch", min_steps=300, epochs=2, learning_rate=1e-2,
                           seed=0)
    result = fit(models, table, features=x, options=options)
    assert result.single_label and result.solver == "minibatch"
    probs = predict(models, df, features=x)[CLASSES].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    rest = np.setdiff1d(np.arange(len(df)), rows)
    accuracy = (probs[rest].argmax(axis=1) == truth[rest].argmax(axis=1)).mean()
    assert accuracy > 0.6
    table.loc[rows[0], CLASSES[:2]] = 1.0  # two "yes" on one row: not one label per image
    fit(models, table, features=x, options=TrainOptions(calibrate=False))
    assert not models.single_label
    with pytest.raises(ValueError, match="more than one \"yes\""):
        fit(models, table, features=x, options=TrainOptions(single_label=True))
    with pytest.raises(ValueError, match="single_label must be True, False or None"):
        TrainOptions(single_label="yes")
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        build_models(["cat"], feature_shape=(4,), single_label=True)


def test_out_of_fold_predictions_equal_refits_without_each_fold(wine):
    from patchwork_widget.models.convex import fit_logistic, out_of_fold

    x, t = wine
    y = np.eye(3)[t]
    for single in (True, False):
        got = out_of_fold(x, y, l2=1.0, single_label=single, folds=4, seed=3)
        which = np.random.default_rng(3).permutation(len(x)) % 4
        held = which == 2
        solve = fit_multinomial if single else fit_logistic
        found = solve(x[~held], y[~held], l2=1.0)
        z = x[held] @ found.kernel + found.bias
        want = softmax(z, axis=1) if single else 1 / (1 + np.exp(-z))
        np.testing.assert_allclose(got[held], want, atol=1e-5)
    with pytest.raises(ValueError, match="folds must be an integer >= 2; got 1"):
        out_of_fold(x, y, folds=1)
