"""Issue 22: suggestion thresholds for a precision target, against a brute-force search
(TF-free)."""

import math

import numpy as np
import pytest
from scipy.stats import beta

from patchwork_widget.active.suggest import suggestions
from patchwork_widget.active.thresholds import QUALITY_COLUMNS, choose_thresholds

NAN = np.nan


def lower(right, n):
    return beta.ppf(0.5, right + 0.5, n - right + 0.5)


def brute_force_yes(p, y, target):
    """The lowest distinct output above 0.5 whose "yes" at or above it reach the target."""
    for t in sorted(set(p[p > 0.5].tolist())):
        written = p >= t
        if lower((y[written] == 1).sum(), written.sum()) >= target:
            return t
    return NAN


def brute_force_no(p, y, target):
    for t in sorted(set(p[p < 0.5].tolist()), reverse=True):
        written = p <= t
        if lower((y[written] == 0).sum(), written.sum()) >= target:
            return t
    return NAN


def test_thresholds_equal_a_brute_force_search_per_class():
    rng = np.random.default_rng(0)
    n, c = 400, 3
    y = (rng.random((n, c)) < [0.3, 0.5, 0.1]).astype(float)
    noise = [0.15, 0.35, 0.6]  # an easy, a middling and a hopeless class
    p = np.clip(y * 0.6 + 0.2 + rng.normal(0, noise, (n, c)), 0, 1)
    p = np.round(p, 2)  # ties: a threshold writes every row of an equal output
    y[rng.random((n, c)) < 0.2] = NAN
    got = choose_thresholds(p, y, ["a", "b", "c"], target=0.95)
    assert list(got.columns) == list(QUALITY_COLUMNS)
    for j, name in enumerate("abc"):
        keep = ~np.isnan(y[:, j])
        want_yes = brute_force_yes(p[keep, j], y[keep, j], 0.95)
        want_no = brute_force_no(p[keep, j], y[keep, j], 1 - 0.05 / 3)  # a row's budget
        row = got.loc[name]
        assert (math.isnan(want_yes) and math.isnan(row.yes_threshold)) or \
            row.yes_threshold == want_yes
        assert (math.isnan(want_no) and math.isnan(row.no_threshold)) or \
            row.no_threshold == want_no
        assert row.heldout == keep.sum()
        if not math.isnan(row.yes_threshold):
            written = p[keep, j] >= row.yes_threshold
            assert row.yes_coverage == pytest.approx(written.mean())
            assert row.yes_precision >= 0.95
    assert not math.isnan(got.loc["a", "yes_threshold"])


def test_too_few_heldout_rows_give_no_suggestion():
    # two right "yes": their estimated precision (0.90) is below 0.95
    p = np.array([[0.99], [0.98]])
    got = choose_thresholds(p, np.ones((2, 1)), ["a"])
    assert math.isnan(got.loc["a", "yes_threshold"]) and got.loc["a", "yes_coverage"] == 0.0
    out = suggestions([0.999], None, [True], yes=got["yes_threshold"].tolist(),
                      no=[0.1])
    assert np.isnan(out).all()


def test_single_label_thresholds_follow_the_arg_max_rows():
    rng = np.random.default_rng(1)
    n = 600
    truth = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), truth] += 3.0
    truth[rng.random(n) < 0.3] = 2  # 30% of the rows are "c" whatever the model says:
    # its arg-max rows are right, a's hardly ever
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.eye(3)[truth]
    got = choose_thresholds(p, y, ["a", "b", "c"], single_label=True)
    assert got["no_threshold"].isna().all()
    top = p.argmax(axis=1)
    for j, name in enumerate("abc"):
        mine = top == j
        want = brute_force_yes(p[mine, j], (truth[mine] == j).astype(float), 0.95)
        t = got.loc[name, "yes_threshold"]
        assert (math.isnan(want) and math.isnan(t)) or t == want
    assert math.isnan(got.loc["a", "yes_threshold"])
    assert got.loc["c", "yes_threshold"] > 0.5 and got.loc["c", "yes_coverage"] > 0.1


@pytest.mark.parametrize("kwargs,match", [
    (dict(target=0.4), r"target must be a precision in \(0.5, 1\); got 0.4"),
    (dict(target=True), "target must be a precision"),
    (dict(single_label="yes"), "single_label must be True or False"),
    (dict(classes=["a"]), r"probs and labels must both have shape \(n, 1\)"),
])
def test_bad_arguments(kwargs, match):
    args = dict(probs=np.full((3, 2), 0.5), labels=np.ones((3, 2)), classes=["a", "b"])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        choose_thresholds(**args)
