"""Session model methods: build, train in the background, predictions, embeddings, orders."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session


@pytest.fixture
def session(tmp_path, image_paths) -> Session:
    rng = np.random.default_rng(0)
    cat = np.arange(40) % 2
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(40, 2))).astype(np.float32)
    s = Session.open(prep_label_dataframe(image_paths, ["cat"]), outfile=tmp_path / "l.csv", features=features, seed=0)
    for row in range(24):
        s.annotate(row, {"cat": float(cat[row]), "validation": row % 4 == 0})
    s.cat = cat
    return s


def test_train_in_the_background_then_predict_and_offer_model_orders(session):
    assert "max entropy" not in {o.name for o in session.orders}  # no predictions yet
    session.build_model({"kind": "pool"}, {"kind": "focal", "gamma": 2.0})
    done = threading.Event()
    progress = []
    job = session.train({"epochs": 3, "batch_size": 8, "learning_rate": 0.05},
                        progress=lambda e, s, logs: progress.append((e, "val_loss" in logs)),
                        on_done=lambda j: done.set())
    assert done.wait(120)
    assert job.result().epochs_completed == 3 and len(session.train_history) == 3
    assert [e for e, val in progress if val] == [1, 2, 3]  # one validated call per epoch
    probs = session.predictions["cat"].to_numpy()
    assert probs[session.cat == 1].mean() > probs[session.cat == 0].mean()
    assert {"max entropy", "highest"} <= {o.name for o in session.orders}
    hist = session.histograms(bins=10)["cat"]
    assert hist["train_positive"].sum() + hist["train_negative"].sum() == 18
    assert session.update_embeddings().shape == (40, 2)
    assert "badge" in {o.name for o in session.orders}


def test_training_needs_a_model_for_the_current_classes(session):
    with pytest.raises(ValueError, match="build a model for the current classes first"):
        session.train()
    session.build_model()
    session.add_class("dog")
    with pytest.raises(ValueError, match="build a model for the current classes first"):
        session.train()
