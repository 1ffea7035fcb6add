"""Issue 22 in the Session: a model trained as one label per image suggests rows as a whole,
and suggestion thresholds for a precision target come from held-out predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget.active.suggest import suggestions  # noqa: E402
from patchwork_widget.active.thresholds import QUALITY_COLUMNS, choose_thresholds  # noqa: E402
from patchwork_widget.labels import prep_label_dataframe  # noqa: E402
from patchwork_widget.options.active import ClassEdit  # noqa: E402
from patchwork_widget.session import Session  # noqa: E402

CLASSES = ["cat", "dog", "fox"]


def open_session(tmp_path, image_paths, **kwargs) -> tuple[Session, np.ndarray]:
    """40 rows of three separable classes, 30 labeled one "yes" each; 10 to suggest."""
    rng = np.random.default_rng(0)
    truth = np.arange(40) % 3
    features = (np.eye(3)[truth] * 2.5 + rng.normal(size=(40, 3))).astype(np.float32)
    s = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                     features=features, seed=0, **kwargs)
    for row in range(30):
        s.annotate(row, {c: float(truth[row] == j) for j, c in enumerate(CLASSES)})
    s.build_model({"kind": "pool"})
    s.train().result(timeout=300)
    return s, truth


def test_one_label_per_image_suggests_rows_as_a_whole(tmp_path, image_paths):
    session, truth = open_session(tmp_path, image_paths)
    assert session.derived.single_label and session.model.single_label
    probs = session.predictions[CLASSES].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    written = 0
    for row in range(30, 40):
        session.accept_suggestions(row)
        labels = session.df.loc[row, CLASSES].to_numpy(float)
        want = suggestions(probs[row], None, [True] * 3, 0.9, 0.1, single_label=True)
        np.testing.assert_array_equal(labels, want)
        assert not (np.nan_to_num(labels, nan=1.0) == 0).all()  # never a row of "no" only
        written += int((labels == 1).sum())
        strength = session.row_values([row])[0]["strength"]
        assert strength == (["none"] * 3 if (labels == 1).any() else ["faint"] * 3)
    assert written > 0


def test_suggestion_quality_and_thresholds_for_a_target(tmp_path, image_paths):
    session, truth = open_session(tmp_path, image_paths, suggest_target=0.9)
    quality = session.suggestion_quality()
    assert list(quality.index) == CLASSES and list(quality.columns) == list(QUALITY_COLUMNS)
    # chosen on out-of-fold predictions of the 30 training labels (no validation rows)
    held = session.derived.heldout_probs[CLASSES].to_numpy()
    labels = session.derived.heldout_labels[CLASSES].to_numpy()
    assert held.shape == (30, 3)
    pd.testing.assert_frame_equal(quality, choose_thresholds(held, labels, CLASSES, 0.9, True))
    strict = session.suggestion_quality(0.99)["yes_threshold"]
    both = strict.notna() & quality["yes_threshold"].notna()
    assert (strict[both] >= quality["yes_threshold"][both]).all()
    # accept writes what the rule writes with those thresholds
    probs = session.predictions[CLASSES].to_numpy()
    yes = quality["yes_threshold"].tolist()
    for row in range(30, 40):
        session.accept_suggestions(row)
        want = suggestions(probs[row], None, [True] * 3, yes, [math.nan] * 3, single_label=True)
        np.testing.assert_array_equal(session.df.loc[row, CLASSES].to_numpy(float), want)
    # a rename carries the held-out predictions with it
    session.edit_classes(ClassEdit("rename", "fox", new="vixen"))
    renamed = session.suggestion_quality()
    assert list(renamed.index) == ["cat", "dog", "vixen"]
    np.testing.assert_array_equal(renamed.to_numpy(float), quality.to_numpy(float))
    with pytest.raises(ValueError, match=r"target must be a finite number in \(0.5, 1\)"):
        session.suggestion_quality(1.5)


def test_no_thresholds_before_training_and_a_bad_target(tmp_path, image_paths):
    session = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                           suggest_target=0.95)
    with pytest.raises(ValueError, match="no held-out predictions yet: train a model"):
        session.suggestion_quality()
    with pytest.raises(ValueError, match="suggest_target"):
        Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "m.csv",
                     suggest_target=1.0)


def test_a_declared_mode_wins_and_the_model_tab_says_which(tmp_path, image_paths):
    session, truth = open_session(tmp_path, image_paths, single_label=False)
    assert session.single_label is False and not session.model.single_label
    assert session.output_mode() == ("one or more labels per image (a sigmoid per class), "
                                     "declared")
    assert not session.derived.single_label
    session.train({"single_label": True}).result(timeout=300)  # the run's options win
    assert session.model.single_label
    undeclared = Session.open(prep_label_dataframe(image_paths, CLASSES),
                              outfile=tmp_path / "u.csv")
    undeclared.annotate(0, {"cat": 1.0, "dog": 0.0})
    assert undeclared.output_mode().startswith("one label per image (softmax), from the labels")
    undeclared.annotate(1, {"cat": 1.0, "dog": 1.0})
    assert undeclared.output_mode().startswith("one or more labels per image")
    pytest.importorskip("ipywidgets")
    from patchwork_widget.widget.model_tab import ModelTab

    tab = ModelTab(session)
    tab.build_model()
    assert "Output: one or more labels per image (a sigmoid per class), declared." in \
        tab.status.value


def test_disagreement_ranks_labeled_rows_by_out_of_fold_predictions(tmp_path, image_paths):
    from patchwork_widget.active.orders import disagreement_scores

    session, truth = open_session(tmp_path, image_paths)
    for row in (0, 1, 2):  # three flipped labels
        session.annotate(row, {c: float((truth[row] + 1) % 3 == j) for j, c in enumerate(CLASSES)})
    session.train().result(timeout=300)
    oof = session.derived.out_of_fold[CLASSES].to_numpy()
    labeled = np.arange(40) < 30
    assert np.isfinite(oof[labeled]).all() and np.isnan(oof[~labeled]).all()
    np.testing.assert_array_equal(session.derived.heldout_probs[CLASSES].to_numpy(), oof[labeled])
    labels = session.df[CLASSES].to_numpy(float)
    scores = disagreement_scores(labels, session.predictions[CLASSES].to_numpy(), heldout=oof)
    queue = session.sample({"kind": "all"}, "disagreement", count=30)
    np.testing.assert_allclose(scores[queue], np.sort(scores[labeled])[::-1])
    assert {0, 1, 2} <= set(queue[:5])  # the flipped rows lead
    session.edit_classes(ClassEdit("rename", "fox", new="vixen"))  # carried with the classes
    assert list(session.derived.out_of_fold.columns) == ["cat", "dog", "vixen"]
