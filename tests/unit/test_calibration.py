"""Issue 11: logistic regression by L-BFGS equals scikit-learn's; Platt scaling recovers a known
miscalibration and keeps the ranking; the calibration error is measured per class."""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from patchwork_widget.models.calibration import (
    calibration_error,
    fold_into_output,
    logits,
    platt_scaling,
)
from patchwork_widget.models.convex import Cancelled, fit_logistic, prior_bias

RNG = np.random.default_rng(0)


def test_fit_logistic_equals_scikit_learn_per_class_with_missing_labels():
    x = RNG.normal(size=(200, 5))
    y = (x @ RNG.normal(size=(5, 3)) + RNG.normal(size=(200, 3)) > 0).astype(float)
    y[RNG.random(y.shape) < 0.3] = np.nan
    found = fit_logistic(x, y, l2=2.0)
    assert found.converged
    for j in range(3):
        keep = ~np.isnan(y[:, j])
        ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(x[keep], y[keep, j])
        np.testing.assert_allclose(found.kernel[:, j], ref.coef_[0], atol=1e-4)
        np.testing.assert_allclose(found.bias[j], ref.intercept_[0], atol=1e-4)


def test_row_weights_act_as_sample_weights():
    x = RNG.normal(size=(100, 3))
    y = (x[:, :1] + RNG.normal(size=(100, 1)) > 0).astype(float)
    w = RNG.uniform(0.2, 3.0, 100)
    found = fit_logistic(x, y, row_weights=w)
    ref = LogisticRegression(tol=1e-10, max_iter=10_000).fit(x, y[:, 0], sample_weight=w)
    np.testing.assert_allclose(found.kernel[:, 0], ref.coef_[0], atol=1e-4)


def test_a_class_labeled_one_way_gets_a_finite_bias_and_no_nan():
    x = RNG.normal(size=(30, 4))
    y = np.c_[np.zeros(30), (x[:, 0] > 0).astype(float)]
    found = fit_logistic(x, y)
    assert np.isfinite(found.kernel).all() and np.isfinite(found.bias).all()
    assert expit(found.bias[0]) == pytest.approx(0.5 / 31, rel=0.2)  # Jeffreys: (0 + 1/2) / 31


def test_prior_bias_is_the_log_prior_odds():
    y = np.array([[1.0, 0.0], [0.0, np.nan], [0.0, 0.0], [1.0, np.nan]])
    np.testing.assert_allclose(expit(prior_bias(y)), [2.5 / 5, 0.5 / 3])


def test_cancel_stops_the_optimisation():
    with pytest.raises(Cancelled):
        fit_logistic(RNG.normal(size=(10, 2)), np.ones((10, 1)), should_stop=lambda: True)


def test_platt_scaling_recovers_a_known_miscalibration_and_keeps_the_ranking():
    z = RNG.normal(scale=2.0, size=(20_000, 2))
    y = (RNG.random(z.shape) < expit(2.0 * z + np.array([1.0, -0.5]))).astype(float)
    a, b = platt_scaling(z, y)
    np.testing.assert_allclose(a, [2.0, 2.0], rtol=0.05)
    np.testing.assert_allclose(b, [1.0, -0.5], atol=0.05)
    raw, fixed = expit(z), expit(a * z + b)
    assert calibration_error(fixed, y).max() < 0.02 < calibration_error(raw, y).min()
    assert (np.argsort(fixed[:, 0]) == np.argsort(raw[:, 0])).all()


def test_platt_scaling_leaves_a_class_without_both_labels_alone():
    a, b = platt_scaling(np.ones((4, 2)), np.array([[1, 0], [1, 1], [1, 0], [np.nan, 1]]))
    assert a[0] == 1.0 and b[0] == 0.0 and a[1] > 0


def test_calibration_error_per_class():
    p = np.array([[0.9, 0.2], [0.9, 0.2], [0.1, np.nan], [0.1, 0.2]])
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, np.nan]])
    np.testing.assert_allclose(calibration_error(p, y), [0.5 * 0.4 + 0.5 * 0.1, 0.3])
    assert np.isnan(calibration_error(p, np.full_like(y, np.nan))).all()
    np.testing.assert_allclose(logits(expit(np.array([-3.0, 0.0, 4.0]))), [-3, 0, 4], atol=1e-6)


class _Dense:
    def __init__(self, kernel, bias):
        self.weights = [kernel, bias]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


class _Output:
    def __init__(self, dense):
        self.layers = [dense]


def test_fold_into_output_rescales_the_logits():
    kernel, bias = RNG.normal(size=(3, 2)).astype(np.float32), np.array([0.5, -1.0], np.float32)
    out = _Output(_Dense(kernel, bias))
    a, b = np.array([2.0, 0.5]), np.array([0.1, 0.3])
    fold_into_output(out, a, b)
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    new_kernel, new_bias = out.layers[-1].weights
    np.testing.assert_allclose(x @ new_kernel + new_bias, a * (x @ kernel + bias) + b, rtol=1e-5)
