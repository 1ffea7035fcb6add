"""Sampling on a team journal (issue 16, work split): the session claims the rows it
samples, so annotators get different images; an overlap share goes to two; a killed
annotator's rows come to the others when the lease ends; claims are renewed while labeling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from patchwork_widget.active.online import OnlineOptions
from patchwork_widget.active.subsets import (
    Subset,
    SubsetKind,
    subset_mask,
    subset_options,
)
from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.session import claims as claims_module
from patchwork_widget.session.claims import QueueClaims

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: F401  (the fixture)


def table(n: int = 20):
    return prep_label_dataframe([f"img{i}.png" for i in range(n)], ["cat", "dog"])


@pytest.fixture
def team(tmp_path, postgres):  # noqa: F811
    """open(annotator, nrows=20, **session_kwargs): a Session on this test's own project."""
    project = f"sample-{uuid.uuid4().hex[:8]}"
    sessions: list[Session] = []
    lock = threading.Lock()

    def open_session(annotator: str, nrows: int = 20, **kwargs) -> Session:
        session = Session.open(table(nrows), outfile=tmp_path / f"{annotator}.csv",
                               journal=postgres.url, project=project, annotator=annotator,
                               **kwargs)
        with lock:
            sessions.append(session)
        return session

    open_session.project = project
    yield open_session
    for session in sessions:
        session.close()


def test_two_sessions_sampling_at_once_get_disjoint_queues(team) -> None:
    team("setup", nrows=200).close()  # the project exists before the race
    queues: dict[str, list[int]] = {}
    barrier = threading.Barrier(2)

    def annotator(name: str, seed: int) -> None:
        session = team(name, nrows=200, seed=seed)
        barrier.wait()
        queues[name] = session.sample(count=100)

    threads = [threading.Thread(target=annotator, args=(n, s)) for n, s in (("ana", 1), ("bob", 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(queues["ana"]) == len(queues["bob"]) == 100
    assert not set(queues["ana"]) & set(queues["bob"])
    assert set(queues["ana"]) | set(queues["bob"]) == set(range(200))


def test_a_sample_skips_rows_another_annotator_holds(team) -> None:
    ana, bob = team("ana", seed=1), team("bob", seed=1)  # same seed: the same ranked rows
    mine = ana.sample(count=8)
    theirs = bob.sample(count=8)
    assert len(theirs) == 8 and not set(mine) & set(theirs)
    assert set(bob.sample(count=20)) == set(range(20)) - set(mine)  # the rest, and no more


def test_the_overlap_share_of_a_sample_goes_to_two(team) -> None:
    ana, bob = team("ana", seed=1), team("bob", seed=1, claim_overlap=0.25)
    mine = ana.sample(count=8)
    theirs = bob.sample(count=8)  # ranks the same 8 first: 2 of them may be shared
    assert len(theirs) == 8
    assert set(theirs) & set(mine) == set(mine[:2])
    eve = team("eve", seed=1, claim_overlap=1.0)
    assert not set(eve.sample(count=20)) & set(mine[:2])  # never a third annotator


def test_other_subsets_are_not_claimed(team) -> None:
    ana, bob = team("ana"), team("bob")
    assert len(ana.sample({"kind": "all"}, count=20)) == 20  # reviewing: nothing held
    assert sorted(bob.sample(count=20)) == list(range(20))


def test_a_killed_annotators_sample_goes_to_the_other(team, postgres, tmp_path) -> None:  # noqa: F811
    bob = team("bob", seed=3, claim_lease=60.0)
    script = textwrap.dedent(f"""
        import sys, time
        from patchwork_widget.labels import prep_label_dataframe
        from patchwork_widget.session import Session
        df = prep_label_dataframe([f"img{{i}}.png" for i in range(20)], ["cat", "dog"])
        session = Session.open(df, outfile=sys.argv[1], journal=sys.argv[2],
                               project={team.project!r}, annotator="ana", seed=1,
                               claim_lease=1.0)
        print(sorted(session.sample(count=5)), flush=True)
        time.sleep(600)
    """)
    ana = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "ana.csv"), postgres.url],
                           stdout=subprocess.PIPE, text=True)
    try:
        held = json.loads(ana.stdout.readline())
    finally:
        os.kill(ana.pid, signal.SIGKILL)
        ana.wait(30)
    assert len(held) == 5
    deadline = time.monotonic() + 30
    while not set(held) <= set(bob.sample(count=20)):  # once ana's lease ends
        assert time.monotonic() < deadline, "the killed annotator's claims never expired"
        time.sleep(0.2)


class FakeStore:
    """Records claim calls; hands out every row asked for."""

    read_only = False

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int, float, float]] = []

    def claim(self, candidates, n, lease, overlap):
        self.calls.append((list(candidates), n, lease, overlap))
        return list(candidates)[:n]


def test_claims_are_renewed_after_half_the_lease(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(claims_module.time, "monotonic", lambda: now[0])
    store = FakeStore()
    claims = QueueClaims(store, lease=10.0, overlap=0.5)
    claims.renew([1, 2])
    assert store.calls == []  # nothing sampled yet: nothing to renew
    claims.take(np.array([4, 5, 6]), np.ones(10, bool), 3, more=None)
    assert store.calls == [([4, 5, 6], 3, 10.0, 0.5)]
    now[0] += 4.9
    claims.renew([5, 6])
    assert len(store.calls) == 1  # less than half the lease: not yet
    now[0] += 0.1
    claims.renew([5, 6, 5])
    assert store.calls[-1] == ([5, 6], 2, 10.0, 0.5)
    claims.renew([6])
    assert len(store.calls) == 2  # just renewed
    claims.forget()
    now[0] += 100
    claims.renew([6])
    assert len(store.calls) == 2  # the queue is not claimed any more


def test_a_refused_row_is_replaced_by_the_next_ranked() -> None:
    class Busy(FakeStore):
        def claim(self, candidates, n, lease, overlap):
            self.calls.append((list(candidates), n, lease, overlap))
            return [r for r in candidates if r % 2 == 0][:n]  # odd rows are held by others

    store = Busy()
    ranked = []

    def more(remaining, n):
        ranked.append((np.flatnonzero(remaining).tolist(), n))
        return np.flatnonzero(remaining)[:n]

    queue = QueueClaims(store, overlap=0.5).take(np.array([1, 2, 3]), np.ones(8, bool), 3, more)
    assert queue == [2, 0, 4]
    assert ranked == [([0, 4, 5, 6, 7], 4)]
    assert [call[3] for call in store.calls] == [0.5, 0.0]  # the overlap share offered once


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"claim_lease": 0}, "claim_lease must be a finite number > 0"),
    ({"claim_overlap": 1.5}, r"claim_overlap must be a finite number in \[0, 1\]"),
])
def test_bad_claim_settings_are_refused(tmp_path, kwargs, message) -> None:
    store = LabelStore.open(tmp_path / "solo.csv", df=table(), autosave=None)
    try:
        with pytest.raises(ValueError, match=message):
            Session(store, **kwargs)
    finally:
        store.close()


def test_the_disagreements_subset_holds_the_rows_annotators_differ_on(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana.annotate(3, {"cat": 1})
    bob.annotate(3, {"cat": 0})  # differ
    ana.annotate([4, 5], {"dog": 1})
    bob.annotate(4, {"dog": 1})  # agree
    bob.annotate(6, {"cat": 0, "dog": 0})
    ana.annotate(6, {"dog": 1})  # differ on dog
    bob.annotate(7, {"cat": 1})
    ana.annotate(7, {"cat": 0, "exclude": True})  # differ, but excluded
    subset = {"kind": "disagreements"}
    # ana's table holds her flag: the rows come from the server's history
    assert sorted(ana.sample(subset, count=20)) == [3, 6]
    assert "annotators disagree" in [s.title for s in subset_options(ana.classes)]
    ana.remove_class("dog")
    assert sorted(ana.sample(subset, count=20)) == [3]  # a removed class no longer counts


def test_the_disagreements_subset_needs_its_rows() -> None:
    df = table(3)
    subset = Subset(SubsetKind.DISAGREEMENTS)
    with pytest.raises(ValueError, match="needs the rows where annotators disagree"):
        subset_mask(df, ["cat", "dog"], subset)
    df.loc[1, "exclude"] = True
    mask = subset_mask(df, ["cat", "dog"], subset, disagreements=np.array([True, True, False]))
    assert mask.tolist() == [True, False, False]


def test_a_re_ranked_queue_is_claimed_too(team) -> None:
    """What online learning's re-ranking uses: ranked rows, with others' replaced."""
    ana, bob = team("ana", seed=1), team("bob")
    mine = ana.sample(count=6)
    unlabeled = np.ones(20, dtype=bool)
    theirs = bob.claim_ranked(mine[:4] + [19], unlabeled, 5, "random")
    assert len(theirs) == 5 and not set(theirs) & set(mine)
    assert 19 in theirs  # the free ranked row kept


def test_online_reranking_gives_way_to_another_annotators_rows(team) -> None:
    ana, bob = team("ana", nrows=60, seed=1), team("bob", nrows=60, seed=2)
    held = set(bob.sample(count=30))
    ana.sample(count=5)
    ana.online.options = OnlineOptions(order="random", count=40)
    queue = ana.online.rerank()
    assert len(queue) == 5 + 25  # the 30 rows bob holds are not handed out again
    assert not set(queue[5:]) & held


def test_a_new_sample_gives_up_the_rows_that_left_the_queue(team) -> None:
    ana, bob = team("ana", seed=1), team("bob", seed=2)
    first = ana.sample(count=8)
    second = ana.sample(count=4)  # a new random draw: most of the first rows leave the queue
    left = set(first) - set(second)
    assert left
    assert set(bob.sample(count=20)) == set(range(20)) - set(second)  # the left rows included


def test_reviewing_another_subset_gives_up_the_claimed_queue(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana.sample(count=8)
    ana.sample({"kind": "all"}, count=20)  # reviewing: nothing held any more
    assert sorted(bob.sample(count=20)) == list(range(20))


def test_a_release_the_server_refuses_is_logged_and_the_sample_stands(tmp_path, caplog) -> None:
    from patchwork_widget.labels.errors import JournalUnavailableError

    session = Session.open(table(), outfile=tmp_path / "labels.csv", seed=0)
    session.sample(count=5)

    def away(rows):
        raise JournalUnavailableError("server away")

    session.store.release = away
    queue = session.sample(count=3)
    assert len(queue) == 3 and "claims not released (server away)" in caplog.text
    session.close()
