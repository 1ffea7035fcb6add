"""Session model methods: build, train in the background, predictions, embeddings, orders."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget.labels import prep_label_dataframe  # noqa: E402
from patchwork_widget.session import EventKind, Session  # noqa: E402


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


FAST = {"epochs": 3, "batch_size": 8, "learning_rate": 0.05}


def test_train_in_the_background_then_predict_and_offer_model_orders(session):
    assert "max entropy" not in {o.name for o in session.orders}  # no predictions yet
    session.build_model({"kind": "pool"}, {"kind": "focal", "gamma": 2.0})
    owner = threading.get_ident()
    progress, done = [], []
    job = session.train(FAST, update_embeddings=True,
                        progress=lambda e, s, logs: progress.append((e, "val_loss" in logs, threading.get_ident())),
                        on_done=lambda task: done.append((task, threading.get_ident())))
    result = job.result(timeout=120)
    assert result.epochs_completed == 3 and len(session.train_history) == 3
    assert done == [(job, owner)]  # called once, on the owner thread, after results are in place
    assert [e for e, val, _ in progress if val] == [1, 2, 3]  # one validated call per epoch
    assert {thread for *_, thread in progress} == {owner}
    probs = session.predictions["cat"].to_numpy()
    assert probs[session.cat == 1].mean() > probs[session.cat == 0].mean()
    assert {"max entropy", "highest", "badge"} <= {o.name for o in session.orders}
    hist = session.histograms(bins=10)["cat"]
    assert hist["train_positive"].sum() + hist["train_negative"].sum() == 18
    assert session.embeddings.shape == (40, 2)


def test_result_returns_only_once_predictions_are_in_place(session):
    session.build_model({"kind": "pool"})
    for _ in range(3):
        job = session.train({"epochs": 1, "batch_size": 8})
        job.result(timeout=120)
        assert session.derived.predictions is not None and job.done()
        session.derived.predictions = None


def test_a_class_renamed_while_training_gets_its_predictions_under_the_new_name(session):
    session.build_model({"kind": "pool"})
    events = []
    session.subscribe(events.append)
    job = session.train(FAST)
    session.rename_class("cat", "kitten")  # the run goes on, on its own snapshot
    session.add_class("dog")
    job.result(timeout=120)
    assert list(session.predictions.columns) == ["kitten"]
    assert session.row_values([30])[0]["suggest"][1] is None  # nothing for the new class
    end = [e for e in events if e.kind is EventKind.TASK_END]
    assert len(end) == 1 and end[0].task.exception() is None
    with pytest.raises(ValueError, match="build a model for the current classes first"):
        session.train()


def test_a_failure_after_training_ends_the_task_with_the_error(session, monkeypatch):
    from patchwork_widget import models

    def broken_predict(*args, **kwargs):
        raise RuntimeError("cannot predict")

    monkeypatch.setattr(models, "predict", broken_predict)
    session.build_model({"kind": "pool"})
    events = []
    session.subscribe(events.append)
    job = session.train({"epochs": 1})
    with pytest.raises(RuntimeError, match="cannot predict"):
        job.result(timeout=120)
    assert [e.task.exception() for e in events if e.kind is EventKind.TASK_END] == [job.exception()]
    assert session.predictions is None
    session.train({"epochs": 1}, update_predictions=False).result(timeout=120)  # not stuck


def test_training_needs_a_model_for_the_current_classes(session):
    with pytest.raises(ValueError, match="build a model for the current classes first"):
        session.train()
    session.build_model()
    session.add_class("dog")
    with pytest.raises(ValueError, match="build a model for the current classes first"):
        session.train()


def test_cancel_stops_a_run_and_keeps_the_last_completed_epoch(session):
    session.build_model({"kind": "pool"})
    started = threading.Event()
    job = session.train({"solver": "minibatch", "epochs": 1000, "batch_size": 8},
                        progress=lambda *step: started.set())
    deadline = threading.Event()
    while not job.done() and not deadline.wait(0.05):  # progress arrives on this thread
        session.dispatcher.drain()
        if started.is_set():
            job.cancel()
    result = job.result(timeout=60)
    assert result.cancelled and result.epochs_completed < 1000
    assert session.predictions is not None  # predicted with the weights it kept
