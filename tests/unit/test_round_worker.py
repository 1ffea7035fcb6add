"""Online rounds in a worker process (session.round_worker): the same training as in a thread,
errors carried back, and a dead worker is a failed round that keeps the model."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.session.round_worker import RoundProcess, WorkerDied

N = 300


@pytest.fixture
def session(tmp_path) -> Session:
    rng = np.random.default_rng(0)
    cat = (np.arange(N) % 2).astype(float)
    features = (np.stack([cat, 1 - cat], axis=1) * 2 + rng.normal(size=(N, 2))).astype(np.float32)
    paths = [str(tmp_path / f"img_{i:04d}.png") for i in range(N)]
    s = Session.open(prep_label_dataframe(paths, ["cat"]), outfile=tmp_path / "l.csv",
                     features=features, seed=0)
    for row in range(40):
        s.annotate(row, {"cat": cat[row], "validation": row % 3 == 0})
    s.sample(count=60)
    yield s
    s.close()


def test_a_round_in_the_worker_trains_as_a_round_in_a_thread(session):
    session.build_model()
    start = [w.copy() for w in session.model.output.get_weights()]
    worker = RoundProcess(session.features)
    try:
        session.train(runner=worker.run).result(timeout=120)
        by_process = session.predictions.copy()
        process_weights = session.model.output.get_weights()
        process_history = session.train_history.copy()
    finally:
        worker.close()
    session.model.output.set_weights(start)
    session.model.trained = False
    session.train().result(timeout=120)  # the reference: the same run in a thread
    np.testing.assert_allclose(by_process.to_numpy(), session.predictions.to_numpy(), atol=1e-5)
    for a, b in zip(process_weights, session.model.output.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert process_history["val_auc"].iloc[-1] == pytest.approx(session.train_history["val_auc"].iloc[-1])
    assert session.model.trained


def test_an_error_in_the_worker_fails_the_round_with_it_and_labeling_goes_on(session):
    session.build_model(loss={"kind": "focal"})
    status = session.start_online(every=5, train={"solver": "lbfgs"}, runner="process")
    assert status["runner"] == "process"
    with pytest.raises(ValueError, match="solver 'lbfgs' cannot train this model"):
        session.online.job.result(timeout=120)
    status = session.online_status()
    assert status["state"] == "stopped" and "round 1 failed: solver 'lbfgs'" in status["reason"]
    session.annotate(100, {"cat": 1.0})
    assert session.df.at[100, "cat"] == 1.0


def test_killing_the_worker_mid_round_stops_online_mode_and_keeps_the_model(session):
    session.build_model()
    session.train().result(timeout=120)
    model, predictions = session.model, session.predictions
    weights = [w.copy() for w in model.output.get_weights()]
    # a round long enough to be killed in the middle
    session.start_online(every=5, train={"solver": "minibatch", "epochs": 200}, runner="process")
    worker = session.online.worker
    assert worker.ready.wait(120)  # started in the background
    assert not session.online.job.done()  # the first round, training
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied, match="ended"):
        session.online.job.result(timeout=60)  # a failed round, not a hang
    status = session.online_status()
    assert status["state"] == "stopped" and "round 1 failed" in status["reason"]
    assert session.model is model and session.predictions is predictions
    for a, b in zip(model.output.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    session.annotate(200, {"cat": 0.0})  # labeling goes on
    assert session.df.at[200, "cat"] == 0.0
    session.start_online(every=5, runner="process")  # online mode starts again, a new worker
    assert session.online.job.result(timeout=120) is not None
    assert session.online_status()["rounds"] == 1


def test_a_rename_before_the_round_reaches_the_worker_trains_on_the_rounds_classes(session):
    """The deterministic form of the race in the test above: the class is renamed after the
    round's snapshot was taken and before its thread sends the model to the worker."""
    session.build_model()
    worker = RoundProcess(session.features)

    def renamed_first(model, request, inputs, cancel, report):
        model.classes = ["kitten"]  # what edit_classes does to the model on the owner thread
        return worker.run(model, request, inputs, cancel, report)

    try:
        session.train(runner=renamed_first).result(timeout=120)
    finally:
        worker.close()
    assert session.model.trained and session.model.classes == ["kitten"]


def test_the_worker_needs_features():
    with pytest.raises(ValueError, match="needs pre-extracted features"):
        RoundProcess(None)


def test_a_class_renamed_during_a_round_in_the_worker_stays_renamed(session):
    from patchwork_widget.options.active import ClassEdit

    session.build_model()
    session.start_online(every=5, train={"solver": "minibatch", "epochs": 200}, runner="process")
    assert session.online.worker.ready.wait(120)
    assert not session.online.job.done()  # the first round, training
    session.edit_classes(ClassEdit("rename", "cat", new="kitten"))
    session.online.job.result(timeout=300)
    session.dispatcher.drain()
    assert session.model.classes == ["kitten"]  # the round's weights, not its class names
    assert list(session.predictions.columns) == ["kitten"]


def test_with_runner_auto_rounds_train_in_a_thread_until_the_worker_has_started(session, monkeypatch):
    """The worker is slow to start (here: it never does): the first rounds land anyway,
    trained in the kernel, and the status says the worker is starting."""
    monkeypatch.setattr(RoundProcess, "warm", lambda self: None)  # the start never ends
    status = session.start_online(every=5)
    assert status["runner"] == "process" and status["worker"] == "starting"
    session.online.job.result(timeout=120)
    for row in range(200, 205):
        session.annotate(row, {"cat": float(row % 2)})
    session.online.job.result(timeout=120)
    status = session.online_status()
    assert status["rounds"] == 2 and status["state"] == "running"
    assert session.online.worker.pid is None  # both rounds trained without it
    assert status["worker"] == "starting"
    session.stop_online()
