"""The team journal: LabelStore on a real PostgreSQL server, several stores in one process
(issue 16). The server is started by :mod:`postgres_server` (a missing binary fails)."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.labels.errors import JournalUnavailableError
from patchwork_widget.labels.pg_schema import SCHEMA_VERSION
from patchwork_widget.labels.remote import RemoteChange

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import PASSWORD, postgres, wait_until  # noqa: E402,F401  (the fixture)


@pytest.fixture
def base() -> pd.DataFrame:
    return prep_label_dataframe([f"img{i}.png" for i in range(20)], ["cat", "dog"])


@pytest.fixture
def team(tmp_path, postgres, base):  # noqa: F811
    """open(annotator, **kw): a store of this test's own project; all closed at the end."""
    project = f"trees-{uuid.uuid4().hex[:8]}"
    stores: list[LabelStore] = []

    def open_store(annotator: str, **kwargs) -> LabelStore:
        kwargs.setdefault("df", base)
        kwargs.setdefault("autosave", None)
        kwargs.setdefault("journal", postgres.url)
        store = LabelStore.open(
            tmp_path / f"{annotator}-{len(stores)}.csv", project=project, annotator=annotator,
            **kwargs,
        )
        stores.append(store)
        return store

    open_store.project = project
    yield open_store
    for store in stores:
        store.close()


def fetch(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_schema_is_created_with_its_version(team, postgres) -> None:  # noqa: F811
    team("ana")
    assert fetch(postgres.url, "SELECT version FROM patchwork_schema") == [(SCHEMA_VERSION,)]
    team("bob")  # a second open finds the schema current
    assert fetch(postgres.url, "SELECT count(*) FROM patchwork_schema") == [(1,)]


def test_a_newer_schema_is_refused(team, postgres) -> None:  # noqa: F811
    team("ana")
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("UPDATE patchwork_schema SET version = version + 1")
        try:
            with pytest.raises(ValueError, match="schema version .* upgrade patchwork_widget"):
                team("bob")
        finally:
            conn.execute("UPDATE patchwork_schema SET version = version - 1")


def test_an_acknowledged_annotation_is_committed_with_its_annotator(team, postgres) -> None:  # noqa: F811
    ana = team("ana")
    assert ana._journal._conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    ana.annotate(3, {"cat": 1}, seconds=2.0)
    # another connection sees it as soon as annotate returned: it was committed
    rows = fetch(
        postgres.url,
        "SELECT a.annotator, a.seconds, e.row_index, e.field, e.old, e.new "
        "FROM patchwork_actions a JOIN patchwork_events e USING (project) "
        "WHERE a.project = %s AND e.action = a.id",
        (team.project,),
    )
    assert rows == [("ana", 2.0, 3, "cat", None, 1.0)]
    history = ana.history()
    assert history[["row", "field", "new", "user"]].values.tolist() == [[3, "cat", 1.0, "ana"]]


def test_stores_see_each_others_labels_and_class_edits_live(team) -> None:
    ana, bob = team("ana"), team("bob")
    heard: list[RemoteChange] = []
    bob.on_remote_change(heard.append)
    ana.annotate(1, {"cat": 1})
    ana.annotate_many([2, 3], {"dog": 0, "validation": True})
    assert wait_until(lambda: bob.df.loc[3, "dog"] == 0.0)
    assert bob.df.loc[1, "cat"] == 1.0 and bob.df.loc[2, "validation"]
    pd.testing.assert_frame_equal(bob.counts, ana.counts)
    assert bob.counts.loc["cat", "train_positive"] == 1
    assert heard and all(change.annotators == ("ana",) for change in heard)
    assert sum(change.actions for change in heard) == 2 and heard[-1].upto == 2

    bob.add_class("bird")
    bob.rename_class("dog", "hound")
    assert wait_until(lambda: ana.classes == ["cat", "hound", "bird"])
    ana.annotate(4, {"bird": 1})
    assert wait_until(lambda: bob.df.loc[4, "bird"] == 1.0)
    pd.testing.assert_frame_equal(ana.df, bob.df)
    pd.testing.assert_frame_equal(ana.counts, bob.counts)


def test_a_change_is_validated_after_catching_up(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana._journal.unwatch()  # ana hears nothing: only her own write can catch her up
    bob.add_class("bird")
    bob.annotate(0, {"cat": 0})
    assert "bird" not in ana.classes
    ana.annotate(5, {"bird": 1})  # valid once bob's class edit is applied
    assert ana.classes == ["cat", "dog", "bird"]
    assert ana.df.loc[0, "cat"] == 0.0 and ana.df.loc[5, "bird"] == 1.0
    assert ana.history()["action"].unique().tolist() == [1, 2, 3]


def test_the_latest_annotation_wins_and_history_keeps_both(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana.annotate(7, {"cat": 1})
    bob.annotate(7, {"cat": 0})
    assert wait_until(lambda: ana.df.loc[7, "cat"] == 0.0)
    assert bob.df.loc[7, "cat"] == 0.0
    history = bob.history()
    assert history[["user", "new"]].values.tolist() == [["ana", 1.0], ["bob", 0.0]]


def test_undo_reverts_the_annotators_own_last_call(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana.annotate(1, {"cat": 1})
    bob.annotate(2, {"cat": 1})
    assert ana.undo()["rows"] == [1]
    assert ana.undo() is None  # bob's call is not ana's to undo
    assert wait_until(lambda: np.isnan(bob.df.loc[1, "cat"]))
    assert bob.df.loc[2, "cat"] == 1.0


def test_a_reopened_store_resumes_from_the_server(team, tmp_path, postgres) -> None:  # noqa: F811
    ana, bob = team("ana"), team("bob")
    ana.annotate(1, {"cat": 1})
    bob.annotate(2, {"dog": 1})
    bob.remove_class("cat")
    ana.close()
    bob.close()
    carl = team("carl", df=None)  # no df and no export file: the project is the start
    assert carl.classes == ["dog"] and carl.df.loc[2, "dog"] == 1.0
    assert carl.history()["user"].tolist() == ["ana", "bob", "bob", "bob"]
    # compaction at close folded the actions into the project's snapshot
    assert fetch(
        postgres.url, "SELECT upto_action FROM patchwork_snapshots WHERE project=%s",
        (team.project,),
    ) == [(3,)]


def test_compaction_never_covers_an_action_the_store_lacks(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana._journal.unwatch()
    bob.annotate(1, {"cat": 1})
    ana.compact()  # ana lacks bob's action: no snapshot
    assert ana._journal.load_snapshot()[1] == 0
    bob.compact()
    assert bob._journal.load_snapshot()[1] == 1


def test_two_stores_start_one_project_at_once(postgres, tmp_path, base) -> None:  # noqa: F811
    project = f"race-{uuid.uuid4().hex[:8]}"
    opened: list[LabelStore] = []
    errors: list[BaseException] = []

    def open_one(name: str) -> None:
        try:
            opened.append(LabelStore.open(tmp_path / f"{name}.csv", df=base, autosave=None,
                                          journal=postgres.url, project=project,
                                          annotator=name))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in ("ana", "bob", "eve")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors and len(opened) == 3
        opened[0].annotate(0, {"cat": 1})
        assert all(wait_until(lambda s=s: s.df.loc[0, "cat"] == 1.0) for s in opened)
    finally:
        for store in opened:
            store.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"journal": "mysql://host/db", "project": "p"}, "journal must be None .* PostgreSQL"),
        ({"journal": "URL"}, "project must be a non-empty name"),
        ({"journal": "URL", "project": ""}, "project must be a non-empty name"),
        ({"project": "trees"}, "project='trees' needs a team journal"),
        ({"journal": "URL", "project": "p", "user": "ana", "annotator": "bob"},
         "user='ana' and annotator='bob' name the same thing"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, postgres, base, kwargs, message) -> None:  # noqa: F811
    if kwargs.get("journal") == "URL":
        kwargs["journal"] = postgres.url
    with pytest.raises(ValueError, match=message):
        LabelStore.open(tmp_path / "x.csv", df=base, **kwargs)


def test_credentials_are_never_logged(team, postgres, tmp_path, base, caplog,  # noqa: F811
                                      monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    ana = team("ana", journal=postgres.url_without_password)  # password from the environment
    ana.annotate(0, {"cat": 1})
    ana.close()
    bad = postgres.url.replace(f":{postgres.port}/", f":{postgres.port + 1}/")
    with pytest.raises(JournalUnavailableError, match="cannot reach the label journal") as info:
        LabelStore.open(tmp_path / "y.csv", df=base, journal=bad, project="p")
    assert PASSWORD not in str(info.value)
    assert "postgresql://patchwork@127.0.0.1" in str(info.value)
    assert caplog.records and PASSWORD not in caplog.text
    assert "project" in caplog.text  # the opens were logged, without the password


def test_labeling_resumes_after_a_server_restart(team, postgres) -> None:  # noqa: F811
    ana, bob = team("ana"), team("bob")
    ana.annotate(0, {"cat": 1})
    assert wait_until(lambda: bob.df.loc[0, "cat"] == 1.0)
    postgres.restart()
    failures = 0
    for _ in range(20):  # the first call on a dropped connection fails, then it reconnects
        try:
            ana.annotate(1, {"cat": 0})
            break
        except JournalUnavailableError:
            failures += 1
            assert np.isnan(ana.df.loc[1, "cat"])  # never shown as saved without a commit
            time.sleep(0.1)
    assert ana.df.loc[1, "cat"] == 0.0
    assert failures <= 1
    assert wait_until(lambda: bob.df.loc[1, "cat"] == 0.0)  # bob's listener reconnected
    bob.annotate(2, {"dog": 1})
    assert wait_until(lambda: ana.df.loc[2, "dog"] == 1.0)
    assert ana.history()["row"].tolist() == [0, 1, 2]


def test_a_session_sees_another_annotators_label(postgres, tmp_path, base, team) -> None:  # noqa: F811
    from patchwork_widget.session import Session

    session = Session.open(base, outfile=tmp_path / "session.csv", journal=postgres.url,
                           project=team.project, annotator="ana")
    try:
        heard: list[RemoteChange] = []
        session.store.on_remote_change(heard.append)
        team("bob").annotate(6, {"dog": 1})
        assert wait_until(lambda: session.store.df.loc[6, "dog"] == 1.0 and heard)
        assert session.store.counts.loc["dog", "train_positive"] == 1
        assert heard[-1].annotators == ("bob",)
    finally:
        session.close()


def test_time_is_accounted_per_annotator(team) -> None:
    from patchwork_widget.labels import time_per_annotator

    ana, bob = team("ana"), team("bob")
    ana.annotate(1, {"cat": 1}, seconds=2.0)
    ana.annotate_many([2, 3], {"cat": 0}, seconds=3.0)
    bob.annotate(4, {"dog": 1}, seconds=4.0)
    bob.undo()
    table = time_per_annotator(bob.history())
    # sessions, seconds, annotations, images, cells, images / min, cells / min
    assert table.loc["ana"].tolist() == [1, 5.0, 2, 3, 3, 36.0, 36.0]
    assert table.loc["bob"].tolist() == [1, 4.0, 1, 0, 0, 0.0, 0.0]  # undone: time spent, no label


def test_a_widget_hears_another_annotators_labels_and_class_edits(postgres, tmp_path, base, team,  # noqa: F811
                                                                    monkeypatch) -> None:
    from patchwork_widget.widget import PatchworkWidget
    from widget_comm import install

    install(monkeypatch)
    widget = PatchworkWidget(base, outfile=tmp_path / "w.csv", journal=postgres.url,
                             project=team.project, annotator="ana")
    try:
        revision = widget.labeler.revision
        bob = team("bob")
        bob.annotate(6, {"dog": 1})

        def heard() -> bool:
            widget.session.dispatcher.drain()  # the kernel's loop does this in a notebook
            return widget.labeler.revision > revision

        assert wait_until(heard)
        counts = widget.labeler.counts
        assert counts["data"][counts["index"].index("dog")][counts["columns"].index("train yes")] == 1
        widget.session.set_predictions(pd.DataFrame(np.full((20, 2), 0.9), columns=["cat", "dog"]))
        bob.remove_class("cat")
        assert wait_until(lambda: widget.session.dispatcher.drain() or widget.labeler.classes == ["dog"])
        assert "Another annotator changed the classes." in widget.labeler.notices
        assert list(widget.session.predictions.columns) == ["dog"]
    finally:
        widget.close()
