"""Claims with a lease (issue 16, work split): different annotators get different rows; an
overlap share goes to two; a killed annotator's claims expire; a version-1 schema is migrated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.labels import pg_schema

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import database_at_version, postgres  # noqa: E402,F401  (the fixture)


def table():
    return prep_label_dataframe([f"img{i}.png" for i in range(20)], ["cat"])


@pytest.fixture
def team(tmp_path, postgres):  # noqa: F811
    project = f"claims-{uuid.uuid4().hex[:8]}"
    stores: list[LabelStore] = []

    def open_store(annotator: str) -> LabelStore:
        store = LabelStore.open(tmp_path / f"{annotator}.csv", df=table(), autosave=None,
                                journal=postgres.url, project=project, annotator=annotator)
        stores.append(store)
        return store

    open_store.project = project
    yield open_store
    for store in stores:
        store.close()


def test_annotators_get_different_rows(team) -> None:
    ana, bob = team("ana"), team("bob")
    assert ana.claim(range(20), 5) == [0, 1, 2, 3, 4]
    assert bob.claim(range(20), 5) == [5, 6, 7, 8, 9]
    assert ana.claim(range(20), 5) == [0, 1, 2, 3, 4]  # her own, renewed
    assert bob.claim([3, 4, 12, 13], 3) == [12, 13]


def test_an_overlap_share_goes_to_two_annotators(team) -> None:
    ana, bob, eve = team("ana"), team("bob"), team("eve")
    ana.claim(range(20), 5)
    assert bob.claim(range(20), 10, overlap=0.2) == [0, 1, 5, 6, 7, 8, 9, 10, 11, 12]
    # rows 0 and 1 are held by two annotators now: never handed to a third
    assert eve.claim(range(20), 3, overlap=1.0) == [2, 3, 4]


def test_released_rows_go_to_the_next_annotator_at_once(team) -> None:
    ana, bob = team("ana"), team("bob")
    assert ana.claim(range(20), 5) == [0, 1, 2, 3, 4]
    ana.release([1, 3, 17])  # 17 was never claimed: ignored
    assert bob.claim(range(20), 4) == [1, 3, 5, 6]


def test_close_releases_the_claims(team) -> None:
    ana, bob = team("ana"), team("bob")
    ana.claim(range(20), 5)
    ana.close()
    assert bob.claim(range(20), 3) == [0, 1, 2]


def test_a_killed_annotators_claims_expire(team, postgres) -> None:  # noqa: F811
    bob = team("bob")
    script = textwrap.dedent(f"""
        import sys, time
        from patchwork_widget.labels import LabelStore, prep_label_dataframe
        df = prep_label_dataframe([f"img{{i}}.png" for i in range(20)], ["cat"])
        store = LabelStore.open(sys.argv[1], df=df, autosave=None, journal=sys.argv[2],
                                project={team.project!r}, annotator="ana")
        print(store.claim(range(20), 4, lease=1.0), flush=True)
        time.sleep(600)
    """)
    ana = subprocess.Popen(
        [sys.executable, "-c", script, str(Path(bob.path).with_name("ana.csv")), postgres.url],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert ana.stdout.readline().strip() == "[0, 1, 2, 3]"
    finally:
        os.kill(ana.pid, signal.SIGKILL)
        ana.wait(30)
    assert bob.claim(range(20), 2, lease=60) == [4, 5]  # ana's lease still runs
    deadline = time.monotonic() + 30
    while bob.claim(range(4), 4, lease=60) != [0, 1, 2, 3]:  # expired: they come to bob
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_the_sqlite_journal_hands_out_the_first_rows(tmp_path) -> None:
    with LabelStore.open(tmp_path / "solo.csv", df=table(), autosave=None) as store:
        assert store.claim(range(5, 20), 3) == [5, 6, 7]
        assert store.claim([], 3) == []
        store.release([5, 6])  # nothing recorded, nothing to give up
        with pytest.raises(ValueError, match="unknown row 99"):
            store.release([99])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((range(5), -1), "n must be an integer >= 0"),
        ((range(5), 2, 0), "lease must be a number of seconds > 0"),
        ((range(5), 2, 10, 1.5), "overlap must be a fraction from 0 to 1"),
        (([1, 1], 2), "repeat a row"),
        (([99], 1), "unknown row 99"),
    ],
)
def test_bad_claims_are_refused(team, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        team("ana").claim(*args)


def test_a_version_1_database_is_migrated(postgres, tmp_path) -> None:  # noqa: F811
    url = database_at_version(postgres, 1)
    store = LabelStore.open(tmp_path / "m.csv", df=table(), autosave=None, journal=url,
                            project="p", annotator="ana")
    try:
        assert store.claim(range(3), 2) == [0, 1]
        with psycopg.connect(url) as conn:
            assert pg_schema.schema_version(conn) == pg_schema.SCHEMA_VERSION
    finally:
        store.close()
