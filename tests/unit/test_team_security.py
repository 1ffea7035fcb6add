"""Per-annotator database roles (issue 16, security): an annotator connecting with her own
role writes annotations only under her own name, in projects granted to her."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from patchwork_widget.labels import LabelStore, pg_schema, prep_label_dataframe
from patchwork_widget.labels.errors import ProjectLockedError
from patchwork_widget.labels.pg_roles import grant_annotator, revoke_annotator
from patchwork_widget.labels.records import encode_snapshot

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import database_at_version, postgres  # noqa: F401  (the fixture)


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
        (last,) = conn.execute("SELECT patchwork_lock(%s)", (project,)).fetchone()
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


# -- issue 24: an annotator role cannot block a project ----------------------------------


def last_action(url: str, project: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT last_action FROM patchwork_projects WHERE project=%s",
                            (project,)).fetchone()[0]


@pytest.mark.parametrize("statement", [
    "UPDATE patchwork_projects SET last_action = 0 WHERE project = %s",  # back: blocks all
    "UPDATE patchwork_projects SET last_action = last_action + 5 WHERE project = %s",  # gaps
    "SELECT last_action FROM patchwork_projects WHERE project = %s FOR UPDATE",  # holds all
    "SELECT last_action FROM patchwork_projects WHERE project = %s FOR NO KEY UPDATE",
])
def test_an_annotator_cannot_move_or_hold_a_projects_counter(granted, tmp_path, postgres,  # noqa: F811
                                                             statement) -> None:
    project, people = granted
    url, ana, _ = people["ana"]
    other = f"other-{uuid.uuid4().hex[:8]}"  # a project never granted to her
    LabelStore.open(tmp_path / "o.csv", df=table(), autosave=None, journal=postgres.url,
                    project=other, annotator="owner").close()
    store = open_as(tmp_path, project, url, ana)
    store.annotate(1, {"cat": 1})
    for target in (project, other):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, (target,))
    store.annotate(2, {"cat": 1})  # the project still takes writes, ids without gaps
    assert store.history()["action"].tolist() == [1, 2]
    assert last_action(postgres.url, project) == 2
    store.close()


def test_the_write_turn_is_only_for_granted_projects(granted, tmp_path, postgres) -> None:  # noqa: F811
    project, people = granted
    url, ana, _ = people["ana"]
    other = f"other-{uuid.uuid4().hex[:8]}"
    LabelStore.open(tmp_path / "o.csv", df=table(), autosave=None, journal=postgres.url,
                    project=other, annotator="owner").close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT patchwork_lock(%s)", (project,)).fetchone() == (0,)
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                                     match=f"may not write project {other}"):
        conn.execute("SELECT patchwork_lock(%s)", (other,))


@pytest.mark.parametrize("action", [1, 3, 0])  # a repeated id, a gap, going back
def test_action_ids_follow_the_newest_action_without_gaps(granted, action) -> None:
    project, people = granted
    url, ana, _ = people["ana"]
    insert_action(url, project, ana)  # id 1
    with psycopg.connect(url) as conn, pytest.raises(
            (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation)):
        conn.execute("INSERT INTO patchwork_actions VALUES (%s, %s, 0, 'annotate', NULL, "
                     "NULL, NULL, %s, 'forged')", (project, action, ana))
    insert_action(url, project, ana)  # id 2: the counter did not move
    with psycopg.connect(url) as conn:
        ids = conn.execute("SELECT id FROM patchwork_actions WHERE project=%s ORDER BY id",
                           (project,)).fetchall()
    assert ids == [(1,), (2,)]


def test_an_annotator_cannot_rewrite_anothers_export_record(granted, tmp_path) -> None:
    project, people = granted
    (ana_url, ana, _), (bob_url, bob, _) = people["ana"], people["bob"]
    store = open_as(tmp_path, project, bob_url, bob)
    store.annotate(1, {"cat": 1})
    store.export()
    place = f"{socket.gethostname()}:{store.path.resolve()}"
    with psycopg.connect(ana_url) as conn:
        before = conn.execute("SELECT record FROM patchwork_exports WHERE project=%s AND "
                              "place=%s", (project, place)).fetchall()
        assert len(before) == 1  # she reads it
        changed = conn.execute("UPDATE patchwork_exports SET record = '{}' WHERE project=%s "
                               "AND place=%s", (project, place)).rowcount
        assert changed == 0
        after = conn.execute("SELECT record FROM patchwork_exports WHERE project=%s AND "
                             "place=%s", (project, place)).fetchall()
    assert after == before
    with psycopg.connect(ana_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO patchwork_exports (project, place, annotator, record) "
                     "VALUES (%s, 'elsewhere', %s, '{}')", (project, bob))
    store.close()


def test_a_held_write_turn_times_out_naming_the_holder(granted, tmp_path, postgres,  # noqa: F811
                                                       monkeypatch) -> None:
    project, people = granted
    url, ana, _ = people["ana"]
    monkeypatch.setattr(pg_schema, "LOCK_TIMEOUT", 0.5)
    store = open_as(tmp_path, project, url, ana)
    store.annotate(0, {"cat": 0})
    holder = psycopg.connect(postgres.url, application_name="psql")  # holds the turn
    holder.execute("SELECT last_action FROM patchwork_projects WHERE project=%s FOR UPDATE",
                   (project,))
    release = threading.Timer(15, holder.rollback)  # before the fix the call waited: fail
    release.start()
    try:
        with pytest.raises(ProjectLockedError, match=(
                rf"project '{project}' is locked by role 'patchwork' \(server process "
                rf"{holder.info.backend_pid}\), which held .*nothing was saved; "
                "try again")):
            store.annotate(1, {"cat": 1})
        assert store.df["cat"].notna().tolist() == [True] + [False] * 9
        store.compact()  # an optimisation: skipped, not an error
        holder.rollback()
        store.annotate(1, {"cat": 1})  # the turn is free again
        assert store.df.loc[1, "cat"] == 1.0
    finally:
        release.cancel()
        holder.close()
        store.close()


def test_a_version_3_database_is_upgraded(postgres, tmp_path) -> None:  # noqa: F811
    """Projects written with schema 3 upgrade in place, and the annotator roles set up then
    lose the UPDATE of patchwork_projects."""
    url = database_at_version(postgres, 3)
    with psycopg.connect(url, autocommit=True) as conn:
        # a project as schema 3 wrote it: two actions and an export record
        conn.execute("INSERT INTO patchwork_projects VALUES ('p', 2, 0)")
        conn.execute("INSERT INTO patchwork_snapshots VALUES ('p', 0, %s, %s, %s, %s, %s)",
                     encode_snapshot(table()))
        for action, row in ((1, 3), (2, 4)):
            conn.execute("INSERT INTO patchwork_actions VALUES ('p', %s, 0, 'annotate', NULL, "
                         "NULL, NULL, 'ana', 's')", (action,))
            conn.execute("INSERT INTO patchwork_events VALUES ('p', %s, 0, %s, 'cat', NULL, 1, "
                         "'ana')", (action, row))
        conn.execute("INSERT INTO patchwork_exports VALUES ('p', 'h:/x.csv', '{}')")
        conn.execute("CREATE ROLE patchwork_annotator NOLOGIN") if not conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname='patchwork_annotator'").fetchone() else None
        conn.execute("GRANT SELECT, INSERT, UPDATE ON patchwork_projects TO patchwork_annotator")
    store = LabelStore.open(tmp_path / "m.csv", df=table(), autosave=None, journal=url,
                            project="p", annotator="ana")
    try:
        assert store.df["cat"].notna().tolist() == [False] * 3 + [True] * 2 + [False] * 5
        store.annotate(5, {"cat": 0})
        assert store.history()["action"].tolist() == [1, 2, 3]
        with psycopg.connect(url) as conn:
            assert pg_schema.schema_version(conn) == pg_schema.SCHEMA_VERSION
            assert conn.execute("SELECT has_table_privilege('patchwork_annotator', "
                                "'patchwork_projects', 'UPDATE')").fetchone() == (False,)
            assert conn.execute("SELECT relrowsecurity FROM pg_class WHERE relname = "
                                "'patchwork_exports'").fetchone() == (True,)
    finally:
        store.close()


def test_an_annotator_opening_an_old_database_first_is_told_who_upgrades_it(
        postgres, tmp_path) -> None:  # noqa: F811
    url = database_at_version(postgres, 3)
    name, password = f"early_{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    role_url = f"postgresql://{name}:{password}@127.0.0.1:{postgres.port}/{url.rsplit('/', 1)[1]}"
    with pytest.raises(PermissionError, match=(
            "has schema version 3 and this version of patchwork_widget needs 4, which this "
            "role may not create .*the database's owner upgrades it by opening a project once")):
        LabelStore.open(tmp_path / "e.csv", df=table(), autosave=None, journal=role_url,
                        project="p", annotator=name)
    with psycopg.connect(url) as conn:
        assert pg_schema.schema_version(conn) == 3  # untouched


def test_an_annotator_holding_the_turn_is_named(granted, tmp_path, monkeypatch) -> None:
    """A granted annotator can hold her project's turn only through patchwork_lock in an
    open transaction: the others wait the lock timeout and are told who it is."""
    project, people = granted
    (ana_url, ana, _), (bob_url, bob, _) = people["ana"], people["bob"]
    monkeypatch.setattr(pg_schema, "LOCK_TIMEOUT", 0.5)
    store = open_as(tmp_path, project, ana_url, ana)
    with psycopg.connect(bob_url, application_name=f"patchwork_widget {bob}") as holder:
        holder.execute("SELECT patchwork_lock(%s)", (project,))
        with pytest.raises(ProjectLockedError, match=(
                rf"project '{project}' is locked by annotator '{bob}' \(role '{bob}', server "
                rf"process {holder.info.backend_pid}\)")):
            store.annotate(1, {"cat": 1})
    store.annotate(1, {"cat": 1})
    assert store.history()["action"].tolist() == [1]
    store.close()
