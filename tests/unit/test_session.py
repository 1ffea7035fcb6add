"""Session: subsets, sampling, annotation, predictions and class edits without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask, subset_options
from patchwork_widget.labels import journal_path, prep_label_dataframe
from patchwork_widget.session import Session

CLASSES = ["cat", "dog", "contains: x"]


@pytest.fixture
def session(tmp_path, image_paths) -> Session:
    df = prep_label_dataframe(image_paths, CLASSES)
    return Session.open(df, outfile=tmp_path / "labels.csv", seed=1)


def _label(session: Session) -> None:
    """A fixed pattern of labels over the first rows."""
    session.annotate(0, {"cat": 1, "dog": 0, "contains: x": 1})  # fully labeled
    session.annotate(1, {"cat": 0})  # partial
    session.annotate(2, {"dog": 1, "exclude": True})  # excluded
    session.annotate(3, {"contains: x": 0, "validation": True})  # partial, validation
    session.annotate(4, {"cat": 1, "dog": 1, "contains: x": 0})  # fully labeled


EXPECTED = {
    Subset(SubsetKind.ALL): set(range(40)),
    Subset(SubsetKind.UNLABELED): set(range(5, 40)),
    Subset(SubsetKind.PARTIAL): {1, 3},
    Subset(SubsetKind.FULLY_LABELED): {0, 4},
    Subset(SubsetKind.CONTAINS, "cat"): {0, 4},
    Subset(SubsetKind.NOT_CONTAINS, "cat"): {1},
    Subset(SubsetKind.UNLABELED_FOR, "cat"): {3} | set(range(5, 40)),
    Subset(SubsetKind.CONTAINS, "contains: x"): {0},
    Subset(SubsetKind.NOT_CONTAINS, "contains: x"): {3, 4},
    Subset(SubsetKind.CONTAINS, "dog"): {4},  # row 2 is excluded
    Subset(SubsetKind.VALIDATION): {3},
    Subset(SubsetKind.EXCLUDED): {2},
}


@pytest.mark.parametrize("subset", list(EXPECTED), ids=lambda s: s.title)
def test_subsets_hold_exactly_the_expected_rows(session, subset):
    _label(session)
    mask = subset_mask(session.df, session.classes, subset)
    assert set(np.flatnonzero(mask)) == EXPECTED[subset]
    queue = session.sample(subset, "random", count=100)
    assert set(queue) == EXPECTED[subset] and len(queue) == len(set(queue))


def test_a_class_named_like_a_subset_is_just_a_class(session):
    options = subset_options(session.classes)
    titles = [o.title for o in options]
    assert "contains: contains: x" in titles
    assert Subset.from_dict({"kind": "contains", "cls": "contains: x"}).cls == "contains: x"


@pytest.mark.parametrize(
    "value, message",
    [
        ({"kind": "bogus"}, "unknown subset kind"),
        ({"kind": "contains"}, "needs a class name"),
        ({"kind": "unlabeled", "cls": "cat"}, "takes no class"),
        ("unlabeled", "mapping with a 'kind'"),
    ],
)
def test_bad_subsets_are_rejected_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message):
        Subset.from_dict(value)


def test_sampling_is_random_but_seeded(tmp_path, image_paths):
    def queue(seed, name):
        df = prep_label_dataframe(image_paths, CLASSES)
        return Session.open(df, outfile=tmp_path / name, seed=seed).sample(count=10)

    first, again, other = queue(3, "a.csv"), queue(3, "b.csv"), queue(4, "c.csv")
    assert first == again and first != other
    assert len(set(first)) == 10


def test_sample_rejects_unknown_orders_and_counts(session):
    with pytest.raises(ValueError, match="unknown order 'bald'; available: random"):
        session.sample(order="bald")
    with pytest.raises(ValueError, match="count must be a positive integer"):
        session.sample(count=0)


def test_annotations_are_journaled_and_survive_reopening(tmp_path, session):
    _label(session)
    session.annotate([10, 11, 12], {"dog": 0}, seconds=3.0)
    expected = session.df.copy()
    session.store.close(export=False)
    assert journal_path(tmp_path / "labels.csv").exists()
    reopened = Session.open(tmp_path / "labels.csv")
    pd.testing.assert_frame_equal(reopened.df, expected)


def test_undo_reverts_the_latest_annotation(session):
    session.annotate(7, {"cat": 1})
    session.annotate([8, 9], {"dog": 0})
    assert session.undo() == [8, 9]
    assert session.df.loc[[8, 9], "dog"].isna().all()
    assert session.df.at[7, "cat"] == 1.0


def test_pace_counts_images_per_minute_of_screen_time(session):
    session.annotate(0, {"cat": 1, "dog": 0}, seconds=20.0)  # one image, two cells
    session.annotate(0, {"cat": 1}, seconds=10.0)  # no change, time still spent
    session.annotate(1, {"exclude": True}, seconds=30.0)  # a flag is not a label
    session.annotate([2, 3], {"dog": 1}, seconds=60.0)  # two images, two cells
    pace = session.pace()
    assert pace["images"] == 3 and pace["cells"] == 4 and pace["seconds"] == 120.0
    assert pace["images_per_minute"] == pytest.approx(1.5)
    assert pace["cells_per_minute"] == pytest.approx(2.0)
    assert pace["labels_per_minute"] == pace["images_per_minute"]  # the older key


def test_accept_writes_only_confident_suggestions_on_unset_classes(session):
    probs = np.tile([0.95, 0.05, 0.6], (40, 1))
    probs[6] = [0.05, 0.95, 0.95]
    session.annotate([0, 1], {"cat": 1, "dog": 1, "contains: x": 0})  # what the model learned from
    session.set_predictions(pd.DataFrame(probs, columns=CLASSES))
    session.annotate(5, {"dog": 1})
    (values,) = session.row_values([5])
    assert values["suggest"] == pytest.approx([0.95, 0.05, 0.6])
    assert values["strength"] == ["solid", "none", "faint"]  # dog labeled; 0.6 is not sure
    session.accept_suggestions(5)
    assert session.df.loc[5, CLASSES].tolist()[:2] == [1.0, 1.0]  # cat from p, dog kept
    assert np.isnan(session.df.at[5, "contains: x"])  # 0.6: nothing written
    session.accept_suggestions(6)  # "contains: x" has no positive training label: no yes
    row = session.df.loc[6, CLASSES].tolist()
    assert row[:2] == [0.0, 1.0] and np.isnan(row[2])


def test_suggestion_thresholds_are_validated(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, CLASSES)
    with pytest.raises(ValueError, match="suggest_yes must be a finite number in \\(0.5, 1\\]"):
        Session.open(df, outfile=tmp_path / "l.csv", suggest_yes=0.4)


def test_accept_without_predictions_and_misaligned_predictions_fail(session):
    with pytest.raises(ValueError, match="no predictions yet"):
        session.accept_suggestions(0)
    with pytest.raises(ValueError, match="one row per table row"):
        session.set_predictions(pd.DataFrame({"cat": [0.5]}))


def test_class_edits_keep_labels_on_their_rows(session):
    _label(session)
    before = session.df[["cat"]].copy()
    session.add_class("bird")
    session.rename_class("cat", "feline")
    assert session.classes == ["feline", "dog", "contains: x", "bird"]
    np.testing.assert_array_equal(session.df["feline"].to_numpy(), before["cat"].to_numpy())
    assert session.df["bird"].isna().all()
    session.remove_class("bird")
    assert session.classes == ["feline", "dog", "contains: x"]


def test_row_values_are_json_ready(session):
    session.annotate(0, {"cat": 1, "validation": True})
    (values,) = session.row_values([0])
    assert values == {
        "row": 0,
        "name": "img_0000.png",
        "labels": [1.0, None, None],
        "exclude": False,
        "validation": True,
        "suggest": None,
        "strength": None,
    }


def test_features_must_align_with_the_table(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, CLASSES)
    with pytest.raises(ValueError, match="features must have 40 rows; got 3"):
        Session.open(df, outfile=tmp_path / "l.csv", features=np.zeros((3, 4)))


def test_model_options_from_dicts_reject_unknown_fields(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, CLASSES)
    session = Session.open(df, outfile=tmp_path / "m.csv", features=np.zeros((40, 4), np.float32))
    with pytest.raises(ValueError, match=r"unknown fine-tuning option\(s\) \['colour'\]"):
        session.build_model({"colour": "red"})
    with pytest.raises(ValueError, match=r"unknown loss option\(s\) \['kind_of'\]"):
        session.build_model(None, {"kind_of": "bce"})
