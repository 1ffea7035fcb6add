"""B10: the suggestion rule decides what accept writes (TF-free)."""

import subprocess
import sys

import numpy as np
import pytest

from patchwork_widget.active.suggest import (
    Strength,
    accept_changes,
    has_positive_labels,
    strengths,
    suggestions,
)

NAN = np.nan
CLASSES = ["a", "b", "c", "d", "e"]
PROBS = np.array([[0.95, 0.05, 0.5, NAN, 0.99],
                  [0.2, 0.91, 0.09, 0.95, 0.93]])
LABELS = np.array([[NAN, NAN, NAN, NAN, NAN],
                   [NAN, 1.0, NAN, NAN, NAN]])
POSITIVES = np.array([True, True, True, True, False])


def test_yes_and_no_only_past_the_thresholds_and_only_on_unlabeled_classes():
    got = suggestions(PROBS, LABELS, POSITIVES)
    np.testing.assert_array_equal(got, [[1.0, 0.0, NAN, NAN, NAN],
                                        [NAN, NAN, 0.0, 1.0, NAN]])


def test_never_yes_for_a_class_without_positive_labels_but_no_is_allowed():
    got = suggestions([0.99, 0.01], None, [False, False])
    np.testing.assert_array_equal(got, [NAN, 0.0])


def test_nan_output_suggests_nothing():
    assert np.isnan(suggestions([NAN], None, [True])).all()
    assert strengths([NAN], None, [True]).tolist() == ["none"]


def test_per_class_thresholds():
    got = suggestions([0.8, 0.8, 0.25], None, [True] * 3, yes=[0.75, 0.9, 0.9],
                      no=[0.1, 0.1, 0.3])
    np.testing.assert_array_equal(got, [1.0, NAN, 0.0])


def test_strengths_for_the_view():
    got = strengths(PROBS, LABELS, POSITIVES)
    assert got.tolist() == [["solid", "solid", "faint", "none", "faint"],
                            ["faint", "none", "solid", "solid", "faint"]]
    assert {s.value for s in Strength} == {"solid", "faint", "none"}


def test_accept_changes_for_one_row():
    assert accept_changes(PROBS[0], LABELS[0], CLASSES, POSITIVES) == {"a": 1.0, "b": 0.0}
    assert accept_changes([0.5] * 5, None, CLASSES, POSITIVES) == {}
    with pytest.raises(ValueError, match="one row"):
        accept_changes(PROBS, LABELS, CLASSES, POSITIVES)


def test_has_positive_labels_over_chosen_rows():
    y = np.array([[1.0, 0.0], [NAN, 1.0], [0.0, NAN]])
    assert has_positive_labels(y).tolist() == [True, True]
    assert has_positive_labels(y, [0, 2]).tolist() == [True, False]
    assert has_positive_labels(y, np.array([False, False, True])).tolist() == [False, False]


@pytest.mark.parametrize("kwargs,match", [
    (dict(yes=0.5), r"yes thresholds must be numbers in \(0.5, 1\]; got 0.5"),
    (dict(yes=float("nan")), "yes thresholds"),
    (dict(no=0.5), r"no thresholds must be numbers in \[0, 0.5\); got 0.5"),
    (dict(no=[0.1, 0.1]), "one number per class"),
    (dict(yes="high"), "yes must be a number"),
])
def test_bad_thresholds_are_refused_with_the_allowed_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        suggestions([0.5, 0.5, 0.5], None, [True] * 3, **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="has_positives"):
        suggestions([0.5, 0.5], None, [True])
    with pytest.raises(ValueError, match="labels must have the shape"):
        suggestions([0.5, 0.5], [NAN], [True, True])


def test_the_rule_imports_no_tensorflow():
    code = ("import sys, patchwork_widget.active.suggest; "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
