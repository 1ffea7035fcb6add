"""Per-annotator database roles (issue 16, security): an annotator connecting with her own
role writes annotations only under her own name, in projects granted to her."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.labels.pg_roles import grant_annotator, revoke_annotator

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: F401  (the fixture)


def table():
    return prep_label_dataframe([f"img{i}.png" for i in range(10)], ["cat"])


@pytest.fixture
def granted(postgres, tmp_path, caplog):  # noqa: F811
    """A project opened by the owner, and two annotators' roles (names unique per test:
    roles belong to the whole server); yields (project, {name: (url, annotator)})."""
    project = f"secure-{uuid.uuid4().hex[:8]}"
    owner = LabelStore.open(tmp_path / "owner.csv", df=table(), autosave=None,
                            journal=postgres.url, project=project, annotator="owner")
    people = {}
    with caplog.at_level(logging.DEBUG):
        for name in ("ana", "bob"):
            annotator, password = f"{name}_{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
            grant_annotator(postgres.url, project, annotator, password=password)
            url = f"postgresql://{annotator}:{password}@127.0.0.1:{postgres.port}/postgres"
            people[name] = (url, annotator, password)
    logged = caplog.text
    assert all(password not in logged for _, _, password in people.values())
    assert "s3cret" not in logged  # nor the owner's
    yield project, people
    owner.close()


def open_as(tmp_path, project, url, annotator) -> LabelStore:
    return LabelStore.open(tmp_path / f"{annotator}-{uuid.uuid4().hex[:4]}.csv", df=table(),
                           autosave=None, journal=url, project=project, annotator=annotator)


def insert_action(url: str, project: str, annotator: str) -> None:
    with psycopg.connect(url) as conn:
        (last,) = conn.execute("SELECT last_action FROM patchwork_projects WHERE project=%s "
                               "FOR UPDATE", (project,)).fetchone()
        conn.execute("INSERT INTO patchwork_actions VALUES (%s, %s, 0, 'annotate', NULL, NULL, "
                     "NULL, %s, 'forged')", (project, last + 1, annotator))


def test_an_annotator_labels_under_her_own_role(granted, tmp_path, postgres) -> None:  # noqa: F811
    project, people = granted
    url, ana, _ = people["ana"]
    store = open_as(tmp_path, project, url, ana)
    store.annotate(1, {"cat": 1})
    store.annotate_many([2, 3], {"cat": 0})
    assert store.undo() is not None
    assert store.claim(range(10), 2) == [0, 1]
    store.close()  # compaction is the owner's: skipped, not an error
    history = open_as(tmp_path, project, url, ana)
    assert history.df["cat"].notna().tolist() == [False, True] + [False] * 8
    assert history.df.loc[1, "cat"] == 1.0
    assert set(history.history()["user"]) == {ana}
    history.close()


def test_ana_cannot_insert_an_action_as_bob(granted) -> None:
    project, people = granted
    url, ana, _ = people["ana"]
    _, bob, _ = people["bob"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        insert_action(url, project, bob)
    insert_action(url, project, ana)  # under her own name it is an action like any other


def test_a_store_opened_under_another_name_is_refused(granted, tmp_path) -> None:
    project, people = granted
    url = people["ana"][0]
    _, bob, _ = people["bob"]
    store = open_as(tmp_path, project, url, bob)  # reading is allowed
    with pytest.raises(PermissionError, match=f"refused '{bob}'.*row-level security"):
        store.annotate(1, {"cat": 1})
    assert store.df["cat"].isna().all()  # nothing applied
    with pytest.raises(PermissionError, match="row-level security"):
        store.claim(range(10), 2)
    store.close()


def test_events_and_claims_cannot_be_forged(granted, postgres) -> None:  # noqa: F811
    project, people = granted
    (ana_url, ana, _), (_, bob, _) = people["ana"], people["bob"]
    insert_action(ana_url, project, ana)
    with psycopg.connect(postgres.url) as conn:  # an action of bob's, by the owner
        (last,) = conn.execute("SELECT max(id) FROM patchwork_actions WHERE project=%s",
                               (project,)).fetchone()
        conn.execute("INSERT INTO patchwork_actions VALUES (%s, %s, 0, 'annotate', NULL, NULL, "
                     "NULL, %s, 'owner')", (project, last + 1, bob))
    event = ("INSERT INTO patchwork_events (project, action, seq, row_index, field, new, "
             "annotator) VALUES (%s, %s, 0, 1, 'cat', 1, %s)")
    with psycopg.connect(ana_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(event, (project, last + 1, bob))  # as bob
    with psycopg.connect(ana_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(event, (project, last + 1, ana))  # into bob's action
    for statement in ("UPDATE patchwork_actions SET annotator = %s",
                      "DELETE FROM patchwork_events WHERE annotator <> %s"):
        with psycopg.connect(ana_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, (ana,))
    with psycopg.connect(ana_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO patchwork_claims VALUES (%s, 1, %s, 's', 1e12)", (project, bob))


def test_a_project_not_granted_is_refused(granted, tmp_path, postgres) -> None:  # noqa: F811
    project, people = granted
    url, ana, _ = people["ana"]
    other = f"other-{uuid.uuid4().hex[:8]}"
    LabelStore.open(tmp_path / "o.csv", df=table(), autosave=None, journal=postgres.url,
                    project=other, annotator="owner").close()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_action(url, other, ana)
    revoke_annotator(postgres.url, project, ana)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_action(url, project, ana)


@pytest.mark.parametrize(("args", "message"), [
    (("", "ana"), "project must be a non-empty name"),
    (("p", " "), "annotator must be a non-empty name"),
])
def test_bad_grants_are_refused(postgres, args, message) -> None:  # noqa: F811
    with pytest.raises(ValueError, match=message):
        grant_annotator(postgres.url, *args)


def test_an_annotator_starts_a_project_granted_before_it_exists(granted, tmp_path, postgres) -> None:  # noqa: F811
    _, people = granted
    url, ana, _ = people["ana"]
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"
    grant_annotator(postgres.url, fresh, ana)  # no password: hers stays
    store = open_as(tmp_path, fresh, url, ana)
    store.annotate(0, {"cat": 0})
    assert store.history()["user"].tolist() == [ana]
    store.close()
