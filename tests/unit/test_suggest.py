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


# one label per image: the row is suggested as a whole
ONE = np.array([[0.93, 0.05, 0.02],    # clears 0.9: yes a, no b and c
                [0.60, 0.30, 0.10],    # top below 0.9: nothing (the per-class rule wrote "no" c)
                [0.04, 0.03, 0.93],    # c has no training positive: its arg-max is not a candidate
                [0.02, 0.95, 0.03]])   # already labeled "yes" on a: nothing
ONE_LABELS = np.array([[NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN], [1.0, NAN, NAN]])
ONE_POSITIVES = np.array([True, True, False])


def test_single_label_writes_the_arg_max_and_no_for_the_rest_only_past_the_threshold():
    got = suggestions(ONE, ONE_LABELS, ONE_POSITIVES, single_label=True)
    np.testing.assert_array_equal(got, [[1.0, 0.0, 0.0], [NAN] * 3, [NAN] * 3, [NAN] * 3])


def test_single_label_never_writes_a_row_of_no_only():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(4, 0.3), size=500)
    labels = np.where(rng.random((500, 4)) < 0.2, 0.0, NAN)
    got = suggestions(probs, labels, [True] * 4, yes=0.6, single_label=True)
    written = ~np.isnan(got).all(axis=1)
    assert written.any()
    assert ((got[written] == 1).sum(axis=1) == 1).all()
    # every written row's "yes" is the arg-max of its open classes
    open_probs = np.where(np.isnan(labels), probs, -1.0)
    np.testing.assert_array_equal(np.nanargmax(got[written], axis=1),
                                  open_probs[written].argmax(axis=1))
    # the per-class rule writes rows of "no" only on the same outputs
    multi = suggestions(probs, labels, [True] * 4, yes=0.6, no=0.1)
    all_no = (multi == 0).any(axis=1) & ~(multi == 1).any(axis=1)
    assert all_no.any()


def test_single_label_skips_classes_labeled_no_and_keeps_per_class_thresholds():
    # b is labeled "no": the candidate is c; yes thresholds per class
    got = suggestions([0.1, 0.8, 0.1 - 1e-9], [NAN, 0.0, NAN], [True] * 3, single_label=True)
    np.testing.assert_array_equal(got, [NAN, NAN, NAN])
    got = suggestions([0.05, 0.1, 0.85], [NAN, 0.0, NAN], [True] * 3, yes=[0.9, 0.9, 0.8],
                      single_label=True)
    np.testing.assert_array_equal(got, [0.0, NAN, 1.0])
    assert accept_changes([0.05, 0.1, 0.85], [NAN, 0.0, NAN], ["a", "b", "c"], [True] * 3,
                          yes=0.8, single_label=True) == {"a": 0.0, "c": 1.0}
    assert strengths([0.05, 0.1, 0.85], [NAN, 0.0, NAN], [True] * 3, yes=0.8,
                     single_label=True).tolist() == ["solid", "none", "solid"]
    assert strengths([0.3, 0.3, 0.4], None, [True] * 3, single_label=True).tolist() == \
        ["faint"] * 3


def test_single_label_is_checked():
    with pytest.raises(ValueError, match="single_label must be True or False; got 'yes'"):
        suggestions([0.5, 0.5], None, [True, True], single_label="yes")


def test_a_per_class_nan_threshold_suggests_nothing_on_that_side():
    got = suggestions([[0.99, 0.01, 0.99], [0.01, 0.99, 0.01]], None, [True] * 3,
                      yes=[NAN, 0.9, 0.9], no=[0.1, NAN, 0.1])
    np.testing.assert_array_equal(got, [[NAN, NAN, 1.0], [0.0, 1.0, 0.0]])
