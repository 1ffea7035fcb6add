"""Derived state stays consistent through class edits (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.options.active import ClassEdit
from patchwork_widget.session import EventKind, Session

CLASSES = ["cat", "dog"]


@pytest.fixture
def session(tmp_path, image_paths) -> Session:
    rng = np.random.default_rng(0)
    cat = np.arange(40) % 2
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(40, 2))).astype(np.float32)
    s = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                     features=features, seed=0)
    for row in range(10):
        s.annotate(row, {"cat": float(cat[row]), "dog": float(1 - cat[row])})
    return s


def _propagated(session: Session) -> Session:
    session.build_graph(k=5)
    session.propagate()
    return session


@pytest.mark.parametrize("edit", [
    ClassEdit("add", "bird"), ClassEdit("rename", "cat", new="kitten"),
    ClassEdit("remove", "dog"), ClassEdit("merge", "cat", other="dog", new="pet"),
], ids=lambda e: e.kind.value)
def test_every_order_offered_after_a_class_edit_still_samples(session, edit):
    _propagated(session)
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.3), columns=CLASSES))
    session.edit_classes(edit)
    for choice in session.orders:  # random included: it raised KeyError after propagation
        queue = session.sample({"kind": "all"}, choice, count=5)
        assert len(queue) == 5


def test_rename_carries_predictions_and_scores_to_the_new_name(session):
    _propagated(session)
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.3), columns=CLASSES))
    before = session.propagation["cat"].copy()
    notices = session.rename_class("cat", "kitten")
    assert list(session.predictions.columns) == ["kitten", "dog"]
    pd.testing.assert_series_equal(session.propagation["kitten"], before, check_names=False)
    assert any("renamed" in n for n in notices)
    names = {(o.name, o.cls) for o in session.orders}
    assert ("propagation score", "kitten") in names and ("highest", "kitten") in names


def test_an_added_class_keeps_suggestions_for_the_others_and_says_to_retrain(session):
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.95), columns=CLASSES))
    events = []
    session.subscribe(events.append)
    notices = session.add_class("bird")
    values = session.row_values([20])[0]
    assert values["suggest"] == [0.95, 0.95, None]  # kept, and nothing for the new class
    assert any("train again" in n for n in notices)
    assert events[-1].kind is EventKind.CLASSES and events[-1].notices == tuple(notices)
    assert "max entropy" not in {o.name for o in session.orders}  # needs every class
    session.accept_suggestions(20)
    assert np.isnan(session.df.at[20, "bird"]) and session.df.at[20, "cat"] == 1.0


def test_nan_predictions_give_no_suggestion_and_accept_writes_nothing_for_them(session):
    probs = np.full((40, 2), 0.9)
    probs[20] = np.nan
    session.set_predictions(pd.DataFrame(probs, columns=CLASSES))
    assert session.row_values([20])[0]["suggest"] == [None, None]
    session.accept_suggestions(20)
    assert session.df.loc[20, CLASSES].isna().all()


def test_pseudo_labels_cover_only_the_classes_the_scores_cover(session):
    _propagated(session)
    session.add_class("bird")
    frame = session.pseudo_labels(0.6)
    assert list(frame.columns) == ["filepath", "cat", "dog"]


def test_a_bad_class_edit_names_the_value_and_the_allowed_kinds():
    with pytest.raises(ValueError, match="'split'.*'add', 'rename', 'remove', 'merge'|"
                                         "'add', 'rename', 'remove', 'merge'.*'split'"):
        ClassEdit("split", "cat")
    with pytest.raises(ValueError, match="unknown class edit field"):
        ClassEdit.from_dict({"kind": "add", "name": "x", "colour": "red"})


def test_an_order_that_can_rank_nothing_says_why_instead_of_an_empty_queue(session):
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.3), columns=CLASSES))
    queue = list(session.queue)
    with pytest.raises(ValueError, match="order 'disagreement' can rank none of the 30 images in "
                                         "'unlabeled': it ranks labeled images"):
        session.sample({"kind": "unlabeled"}, "disagreement", count=5)
    assert session.queue == queue
    assert len(session.sample({"kind": "all"}, "disagreement", count=5)) == 5
    assert session.sampled == {"subset": {"kind": "all", "cls": None, "title": "all images"},
                               "order": {"name": "disagreement", "cls": None, "random_fraction": 0.0,
                                         "title": "disagreement", "purpose": "label errors"},
                               "count": 5}


def test_the_suggestion_rule_uses_what_the_model_saw_and_follows_renames(session):
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.95), columns=CLASSES))
    session.add_class("bird")
    session.annotate(11, {"bird": 1})  # a positive the model never saw
    assert session.row_values([20])[0]["strength"] == ["solid", "solid", "none"]
    session.rename_class("cat", "kitten")
    assert session.row_values([20])[0]["strength"] == ["solid", "solid", "none"]


def test_session_propagates_with_balanced_channels(session):
    from patchwork_widget.active.propagate import propagate

    session.annotate(list(range(10, 16)), {"cat": 0.0, "dog": 1.0})  # more "no" than "yes" of cat
    session.build_graph(k=5)
    labels = session.df[CLASSES].to_numpy(float)
    for balance in (False, True):
        np.testing.assert_allclose(session.propagate(balance=balance)[CLASSES].to_numpy(),
                                   propagate(session.graph, labels, balance=balance))
    with pytest.raises(ValueError, match="balance must be True or False"):
        session.propagate(balance=1)
