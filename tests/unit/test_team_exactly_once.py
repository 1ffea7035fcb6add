"""Exactly-once saves on the team journal (issue 24): a connection lost right after the
COMMIT was sent is settled by the call's idempotency key, never reported as "nothing was
saved" when it was, and a retry never writes the change twice."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.labels.errors import (
    JournalUnavailableError,
    OutcomeUnknownError,
    ProjectLockedError,
)
from patchwork_widget.session import Session
from patchwork_widget.widget import protocol

sys.path.insert(0, str(Path(__file__).parent))
from cutting_proxy import CuttingProxy  # noqa: E402
from postgres_server import PASSWORD, USER, postgres  # noqa: E402,F401  (the fixture)


@pytest.fixture
def proxy(postgres):  # noqa: F811
    cutter = CuttingProxy(postgres.port)
    yield cutter
    cutter.close()


@pytest.fixture(params=["latest"])
def store(proxy, tmp_path, request):
    """A store whose connections go through the proxy (with the resolution rule given)."""
    opened = LabelStore.open(
        tmp_path / "ana.csv", df=prep_label_dataframe([f"img{i}.png" for i in range(10)], ["cat"]),
        autosave=None, journal=proxy.url(USER, PASSWORD),
        project=f"once-{uuid.uuid4().hex[:8]}", annotator="ana", resolution=request.param,
    )
    yield opened
    opened.close()


def saved(postgres, store) -> list[tuple]:  # noqa: F811
    """(id, kind, key) of the project's actions, read directly from the server."""
    with psycopg.connect(postgres.url) as conn:
        return conn.execute("SELECT id, kind, key FROM patchwork_actions WHERE project=%s "
                            "ORDER BY id", (store._journal.project,)).fetchall()


def test_a_commit_whose_answer_is_lost_is_acknowledged(proxy, store, postgres) -> None:  # noqa: F811
    store.annotate(0, {"cat": 1})
    proxy.cut("after")
    store.annotate(1, {"cat": 1})  # committed; the reply was lost; the store asked again
    assert proxy.cuts == 1
    assert store.df.loc[1, "cat"] == 1.0
    actions = saved(postgres, store)
    assert [a[:2] for a in actions] == [(1, "annotate"), (2, "annotate")]
    assert len({key for _, _, key in actions}) == 2  # every call has its own key
    store.annotate(2, {"cat": 0})  # and labeling goes on
    assert store.history()["action"].tolist() == [1, 2, 3]
    assert store.undo()["rows"] == [2]


@pytest.mark.parametrize("store", ["latest", "majority"], indirect=True)
def test_a_retry_after_an_unknown_outcome_saves_once(proxy, store, postgres) -> None:  # noqa: F811
    proxy.cut("after")
    proxy.refuse = True  # the server cannot be asked: the outcome stays unknown
    with pytest.raises(OutcomeUnknownError, match="may already be saved") as raised:
        store.annotate(3, {"cat": 1}, seconds=2.0)
    assert "nothing was saved" not in str(raised.value)
    assert store.df["cat"].isna().all()  # not shown as saved while unknown
    assert len(saved(postgres, store)) == 1  # but it was committed
    proxy.refuse = False
    store.annotate(3, {"cat": 1}, seconds=2.5)  # the user's retry: acknowledged, not rewritten
    history = store.history()
    assert history[["action", "row", "new"]].values.tolist() == [[1, 3, 1.0]]
    assert history["seconds"].tolist() == [2.0]  # time per image counted once
    assert store.df.loc[3, "cat"] == 1.0
    assert store.undo()["rows"] == [3]  # the retried call is the one to undo
    assert store.df["cat"].isna().all()


def test_a_different_call_after_an_unknown_outcome_is_written(proxy, store, postgres) -> None:  # noqa: F811
    proxy.cut("after")
    proxy.refuse = True
    with pytest.raises(OutcomeUnknownError):
        store.annotate(3, {"cat": 1})
    proxy.refuse = False
    store.annotate(4, {"cat": 0})  # not a retry: saved as well, after the first
    assert store.history()[["action", "row"]].values.tolist() == [[1, 3], [2, 4]]
    assert store.df.loc[3, "cat"] == 1.0 and store.df.loc[4, "cat"] == 0.0


def test_a_commit_that_never_reached_the_server_is_not_saved(proxy, store, postgres) -> None:  # noqa: F811
    proxy.cut("before")
    with pytest.raises(JournalUnavailableError, match="nothing was saved") as raised:
        store.annotate(5, {"cat": 1})
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert saved(postgres, store) == []
    assert store.df["cat"].isna().all()
    store.annotate(5, {"cat": 1})  # the retry saves it, once
    assert [a[:2] for a in saved(postgres, store)] == [(1, "annotate")]


@pytest.mark.parametrize(("error", "message"), [
    (OutcomeUnknownError("the label journal lost the connection after the change was sent; "
                         "it may already be saved"),
     "may already be saved: the label journal lost the connection after the change was "
     "sent; it may already be saved; try again"),
    (JournalUnavailableError("the label journal is unreachable; nothing was saved"),
     "not saved: the label journal is unreachable; nothing was saved; try again"),
    (ProjectLockedError("project 'p' is locked by annotator 'bob'; nothing was saved; "
                        "try again"),
     "not saved: project 'p' is locked by annotator 'bob'; nothing was saved; try again"),
])
def test_the_browser_hears_whether_a_change_may_be_saved(tmp_path, monkeypatch, error,
                                                         message) -> None:
    session = Session.open(prep_label_dataframe([f"img{i}.png" for i in range(3)], ["cat"]),
                           outfile=tmp_path / "labels.csv")
    try:
        def fail(*args, **kwargs):
            raise error

        monkeypatch.setattr(session, "annotate", fail)
        (reply, _), = protocol.handle(session, {"type": "annotate", "id": "v:1", "rows": [0],
                                                "changes": {"cat": 1}})
        assert reply == {"type": "error", "id": "v:1", "message": message}
    finally:
        session.close()
