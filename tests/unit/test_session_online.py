"""Online active learning (A6): rounds in the background, re-ranking, stop rules, and no label
lost, duplicated or reordered while rounds run."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget.labels import LabelStore, prep_label_dataframe  # noqa: E402
from patchwork_widget.session import EventKind, Session  # noqa: E402
from patchwork_widget.session.online import KEEP_AHEAD  # noqa: E402

N = 400


@pytest.fixture
def session(tmp_path) -> Session:
    rng = np.random.default_rng(0)
    cat = (np.arange(N) % 2).astype(float)
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(N, 2))).astype(np.float32)
    paths = [str(tmp_path / f"img_{i:04d}.png") for i in range(N)]
    s = Session.open(prep_label_dataframe(paths, ["cat"]), outfile=tmp_path / "l.csv",
                     features=features, seed=0)
    for row in range(12):
        s.annotate(row, {"cat": cat[row], "validation": row % 3 == 0})
    s.cat = cat
    s.sample(count=60)
    return s


def wait_round(session: Session) -> dict:
    session.online.job.result(timeout=120)
    return session.online_status()


def label(session: Session, rows) -> None:
    for row in rows:
        session.annotate(int(row), {"cat": session.cat[row]})


def test_a_round_after_every_n_labels_then_the_queue_is_reranked_behind_the_cursor(session):
    events = []
    session.subscribe(events.append)
    session.start_online(every=5, order="margin", explore=0.0, count=30)
    status = wait_round(session)
    assert status["state"] == "running" and status["rounds"] == 1
    session.cursor = 4
    on_screen = session.queue[:5 + KEEP_AHEAD]
    label(session, on_screen[:4])  # not yet a round: 4 < 5
    assert session.online_status()["images_since_update"] == 4 and not session.online_status()["training"]
    label(session, [on_screen[4]])
    status = wait_round(session)
    assert status["rounds"] == 2 and status["images_since_update"] == 0
    # the image on screen, the rows before it and the rest of its grid page stay
    assert session.queue[:5 + KEEP_AHEAD] == on_screen
    rest = session.queue[5 + KEEP_AHEAD:]
    assert len(rest) == 30 and len(set(rest)) == 30 and not set(rest) & set(on_screen)
    assert session.df.loc[rest, "cat"].isna().all()
    margin = 1 - np.abs(2 * session.predictions["cat"].to_numpy()[rest] - 1)
    assert np.all(np.diff(margin) <= 1e-9)  # explore 0: pure margin order
    kinds = [e.kind for e in events]
    assert EventKind.QUEUE in kinds and EventKind.ONLINE in kinds


def test_exploration_mixes_random_rows_into_the_reranked_part(session):
    with pytest.raises(ValueError, match="order 'highest' needs a class name"):
        session.start_online(every=5, order="highest")  # refused before anything starts
    assert session.online_status()["state"] == "off"
    session.start_online(every=5, order={"name": "highest", "cls": "cat"}, explore=0.5, count=20)
    wait_round(session)
    session.cursor = 0
    label(session, [session.queue[0]] + list(range(12, 16)))
    wait_round(session)
    kept = session.queue[:1 + KEEP_AHEAD]
    rest = session.queue[1 + KEEP_AHEAD:]
    p = session.predictions["cat"].to_numpy()
    unlabeled = np.flatnonzero(session.df["cat"].isna().to_numpy())
    unlabeled = unlabeled[~np.isin(unlabeled, kept)]
    top = set(unlabeled[np.argsort(-p[unlabeled], kind="stable")[:10]].tolist())
    assert len(rest) == 20 and len(set(rest)) == 20
    assert top <= set(rest)  # half ranked (the 10 highest) ...
    assert len(set(rest) - top) == 10  # ... and half drawn at random


def test_pause_keeps_the_model_and_resume_starts_the_waiting_round(session):
    session.start_online(every=5, explore=0.0)
    wait_round(session)
    session.pause_online()
    label(session, range(20, 30))
    status = session.online_status()
    assert status["state"] == "paused" and status["rounds"] == 1 and not status["training"]
    model = session.model
    session.resume_online()
    status = wait_round(session)
    assert status["state"] == "running" and status["rounds"] == 2 and session.model is model


def test_a_validation_threshold_stops_it(session):
    label(session, range(12, 60))
    for row in range(60, 90):
        session.annotate(row, {"cat": session.cat[row], "validation": True})
    session.start_online(every=5, stop={"macro_auc": 0.8})
    status = wait_round(session)
    assert status["state"] == "stopped" and "macro AUC" in status["reason"]
    assert status["history"][0]["val_auc"] >= 0.8
    label(session, range(90, 100))
    assert not session.online_status()["training"]  # no more rounds


@pytest.mark.parametrize("runner", ["thread", "process"])
def test_a_per_class_threshold_stops_it_with_the_auc_of_the_rounds_predictions(session, runner):
    from patchwork_widget.models import validation_metrics

    label(session, range(12, 60))
    for row in range(60, 90):
        session.annotate(row, {"cat": session.cat[row], "validation": True})
    session.start_online(every=5, stop={"class_auc": {"cat": 0.8}}, runner=runner)
    status = wait_round(session)
    assert status["state"] == "stopped" and "every class reached" in status["reason"]
    # computed where the round trained; the reference: the round's predictions on this thread
    reference = validation_metrics(session.predictions, session.df, ["cat"])["auc"]["cat"]
    assert status["history"][0]["class_auc"]["cat"] == pytest.approx(reference)


def test_everything_labeled_stops_it(session):
    label(session, range(12, N - 3))
    session.start_online(every=2)
    wait_round(session)
    label(session, range(N - 3, N))
    status = wait_round(session)
    assert status["state"] == "stopped" and "every image of the subset is labeled" in status["reason"]


def test_the_users_stop_and_a_failing_round(session, monkeypatch):
    session.start_online(every=5)
    wait_round(session)
    session.stop_online()
    assert session.online_status()["state"] == "stopped"
    session.start_online(every=5, runner="thread")  # the patched fit below is this process's
    wait_round(session)
    from patchwork_widget import models

    def broken_fit(*args, **kwargs):
        raise FloatingPointError("NaN loss")

    monkeypatch.setattr(models, "fit", broken_fit)
    model = session.model
    label(session, range(20, 25))
    with pytest.raises(FloatingPointError):
        session.online.job.result(timeout=60)
    status = session.online_status()
    assert status["state"] == "stopped" and "round 2 failed: NaN loss" in status["reason"]
    assert session.model is model and session.predictions is not None  # the last good model stays
    session.annotate(30, {"cat": 1.0})  # labeling goes on


def test_a_round_whose_loss_became_nan_stops_it(session, monkeypatch):
    from dataclasses import replace

    from patchwork_widget import models

    fit = models.fit

    def diverging_fit(*args, **kwargs):  # the minibatch solver's answer to a NaN loss
        return replace(fit(*args, **kwargs), stopped="training stopped: the loss became nan")

    session.start_online(every=5, runner="thread")  # the patched fit is this process's
    wait_round(session)
    monkeypatch.setattr(models, "fit", diverging_fit)
    label(session, range(20, 25))
    status = wait_round(session)
    assert status["state"] == "stopped" and status["rounds"] == 1
    assert "round 2 failed: training stopped: the loss became nan" in status["reason"]
    session.annotate(30, {"cat": 1.0})  # labeling goes on


def test_bad_online_options_name_the_field():
    with pytest.raises(ValueError, match=r"unknown online option\(s\) \[.evry.\]; valid: \[.count., .every."):
        Session.start_online(None, evry=5)  # checked before the session is touched


def test_many_threads_annotating_while_rounds_run_lose_nothing(session, tmp_path):
    """10,000 annotations from four threads while rounds run every 50 labels (in the worker
    process, started and warm before the threads start)."""
    assert session.start_online(every=50, explore=0.2, count=40)["runner"] == "process"
    wait_round(session)
    per_thread, threads = 2500, 4
    rng = np.random.default_rng(1)
    plans = [[(int(r), float(v)) for r, v in zip(rng.integers(12, N, per_thread),
                                                  rng.integers(0, 2, per_thread))]
             for _ in range(threads)]
    errors = []

    def worker(index, plan):
        try:  # seconds encode (thread, step) so the history shows each thread's order
            for step, (row, value) in enumerate(plan):
                session.annotate(row, {"cat": value}, seconds=index * 10 + step / 1e4)
        except Exception as err:  # surfaced below
            errors.append(err)

    workers = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(plans)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        session.dispatcher.drain()  # the owner thread applies rounds meanwhile
        threading.Event().wait(0.01)
    if session.online.job is not None:
        session.online.job.result(timeout=120)
    session.dispatcher.drain()
    assert not errors
    assert session.online_status()["rounds"] >= 2
    history = session.history
    annotations = history[history["kind"] == "annotate"].iloc[12 * 2:]  # after the seed labels
    assert len(annotations) == threads * per_thread  # one row each: every annotation once
    assert np.all(np.diff(annotations["action"].to_numpy()) > 0)
    for index, plan in enumerate(plans):  # each thread's annotations in its own order
        mine = annotations[(annotations["seconds"] // 10) == index]
        steps = np.round((mine["seconds"].to_numpy() - index * 10) * 1e4).astype(int)
        assert steps.tolist() == list(range(per_thread))
        assert mine["row"].tolist() == [row for row, _ in plan]
        assert mine["new"].tolist() == [value for _, value in plan]
    # the table equals the replay of the journal
    table = session.df.copy()
    session.store.close()
    with LabelStore.open(tmp_path / "l.csv", read_only=True) as replay:
        pd.testing.assert_frame_equal(replay.df, table)
    queue = session.queue[session.cursor + 1:]
    assert len(queue) == len(set(queue))


def test_the_online_tab_starts_pauses_and_shows_rounds(tmp_path, monkeypatch):
    from patchwork_widget.widget import PatchworkWidget
    from widget_comm import browser_sends, install, replies

    install(monkeypatch)
    rng = np.random.default_rng(0)
    cat = (np.arange(60) % 2).astype(float)
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(60, 2))).astype(np.float32)
    paths = [str(tmp_path / f"img_{i}.png") for i in range(60)]
    w = PatchworkWidget(prep_label_dataframe(paths, ["cat"]), features=features,
                        outfile=tmp_path / "l.csv", seed=0)
    for row in range(6):
        w.session.annotate(row, {"cat": cat[row]})
    w.sample({"kind": "unlabeled"}, count=50)
    tab = w.online_tab
    tab.every.value, tab.order.value = 3, "margin"
    tab.start_button.click()
    w.session.online.job.result(timeout=120)
    assert tab.start_button.disabled and not tab.pause_button.disabled
    assert "1 round(s)" in tab.status.value and w.labeler.stats["online"]["rounds"] == 1
    browser_sends(w.labeler, {"type": "cursor", "id": 1, "index": 2})
    assert w.session.cursor == 2
    browser_sends(w.labeler, {"type": "cursor", "id": 2, "index": 10_000})
    assert replies(w.labeler)[-1][0]["type"] == "error" and w.session.cursor == 2
    head = list(w.labeler.queue[:3 + KEEP_AHEAD])
    for row in head[:3]:
        browser_sends(w.labeler, {"type": "annotate", "id": 3, "rows": [row], "changes": {"cat": cat[row]}})
    w.session.online.job.result(timeout=120)
    assert w.labeler.queue[:3 + KEEP_AHEAD] == head and w.labeler.stats["online"]["rounds"] == 2
    tab.pause_button.click()
    assert tab.pause_button.description == "Resume" and "paused" in tab.status.value
    tab.stop_button.click()
    assert not tab.start_button.disabled and "stopped by the user" in tab.status.value
    w.tabs.selected_index = 4
    rounds = [r for r in w.session.online_status()["history"] if np.isfinite(r["val_auc"])]
    assert list(tab.figure.data[0]) == [r["images"] for r in rounds]


# -- issue 23: validation held out when none is labeled, images as the unit, the user's queue --


@pytest.fixture
def unvalidated(tmp_path) -> Session:
    """Two classes, 40 labeled training images, no validation row."""
    rng = np.random.default_rng(0)
    cat = (np.arange(N) % 2).astype(float)
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(N, 2))).astype(np.float32)
    paths = [str(tmp_path / f"img_{i:04d}.png") for i in range(N)]
    s = Session.open(prep_label_dataframe(paths, ["cat", "dog"]), outfile=tmp_path / "l.csv",
                     features=features, seed=0)
    for row in range(40):
        s.annotate(row, {"cat": cat[row], "dog": 1.0 - cat[row]})
    s.cat = cat
    s.sample(count=60)
    return s


def label_both(session: Session, rows) -> None:
    for row in rows:
        session.annotate(int(row), {"cat": session.cat[row], "dog": 1.0 - session.cat[row]})


def test_without_validation_rows_rounds_hold_out_the_same_labeled_images(unvalidated):
    from patchwork_widget.labels.groups import holdout_mask

    session = unvalidated
    session.start_online(every=5, explore=0.0)
    first = wait_round(session)
    assert first["state"] == "running" and 0 < first["held_out"] < 40
    assert np.isfinite(first["history"][0]["val_auc"])  # a figure for the chart and the rule
    assert not session.df["validation"].any()  # the table is not changed
    snapshot = session.df.copy()
    held = holdout_mask(snapshot, session.classes, 0.2)
    assert held.sum() == first["held_out"] and not held[40:].any()
    label_both(session, range(40, 45))
    second = wait_round(session)
    later = holdout_mask(session.df.copy(), session.classes, 0.2)
    assert (later[:40] == held[:40]).all()  # the same images each round
    assert second["held_out"] == later.sum()


def test_the_auc_stop_rule_fires_without_validation_rows(unvalidated):
    unvalidated.start_online(every=5, stop={"macro_auc": 0.8})
    status = wait_round(unvalidated)
    assert status["state"] == "stopped" and "macro AUC" in status["reason"]


def test_labeled_validation_rows_are_used_as_they_are(session):
    session.start_online(every=5)
    status = wait_round(session)
    assert status["held_out"] == 0 and np.isfinite(status["history"][0]["val_auc"])


def test_holdout_zero_leaves_the_figures_missing(unvalidated):
    unvalidated.start_online(every=5, holdout=0.0)
    status = wait_round(unvalidated)
    assert status["held_out"] == 0 and np.isnan(status["history"][0]["val_auc"])
    with pytest.raises(ValueError, match="holdout"):
        unvalidated.start_online(every=5, holdout=0.6)


def test_the_cadence_counts_images_not_class_cells(unvalidated):
    session = unvalidated
    session.start_online(every=3, explore=0.0)
    wait_round(session)
    label_both(session, range(40, 42))  # two images, four cells: not yet a round
    status = session.online_status()
    assert status["images_since_update"] == 2 and not status["training"]
    assert status["labels_since_update"] == 2  # the old key, kept for scripts that read it
    label_both(session, [42])
    status = wait_round(session)
    assert status["rounds"] == 2 and status["history"][-1]["images"] == 43 - status["held_out"]


def test_a_queue_the_user_set_is_kept_until_re_ranked_on_request(session):
    from patchwork_widget.session.navigation import more_like_this

    session.start_online(every=5, explore=0.0, count=30)
    wait_round(session)
    mine = more_like_this(session, 200, count=20)
    label(session, mine[:5])  # a round: the user's queue stays
    status = wait_round(session)
    assert status["rounds"] == 2 and session.queue == mine and status["queue_kept"]
    session.rerank_online()  # the user hands it back
    assert session.queue[:1 + KEEP_AHEAD] == mine[:1 + KEEP_AHEAD] and session.queue != mine
    assert not session.online_status()["queue_kept"]
    ranked = list(session.queue)
    done = ranked[1 + KEEP_AHEAD:6 + KEEP_AHEAD]  # labeled past the kept page
    label(session, done)
    wait_round(session)
    assert session.queue[:1 + KEEP_AHEAD] == ranked[:1 + KEEP_AHEAD]
    assert not set(done) & set(session.queue[1 + KEEP_AHEAD:])  # online mode's queue: re-ranked


def test_the_online_tab_says_what_it_holds_out_and_whose_queue_it_is(unvalidated, monkeypatch):
    from patchwork_widget.session.navigation import more_like_this
    from patchwork_widget.widget.online_tab import OnlineTab
    from widget_comm import install

    install(monkeypatch)
    tab = OnlineTab(unvalidated)
    tab.every.value = 5
    assert tab.every.description == "retrain every (images)"
    tab.start_button.click()
    wait_round(unvalidated)
    unvalidated.dispatcher.drain()
    held = unvalidated.online_status()["held_out"]
    assert "model updated 0 images ago" in tab.status.value
    assert f"No labeled validation rows: {held} labeled image(s) held out" in tab.status.value
    tab.show()
    x, ys = tab.figure.data
    assert len(x) == 1 and np.isfinite(ys[0]).all()
    assert np.isfinite(np.asarray(tab.figure.lines.y, dtype=float)).all()
    mine = more_like_this(unvalidated, 200, count=20)
    label_both(unvalidated, mine[:5])
    wait_round(unvalidated)
    unvalidated.dispatcher.drain()
    assert "Keeping your queue" in tab.status.value and not tab.rerank_button.disabled
    tab.rerank_button.click()
    assert unvalidated.queue != mine and "Keeping your queue" not in tab.status.value
