"""Two team annotators on one machine in one working directory, each with the default
export file (issue 24: a shared JupyterHub folder): each gets their own export file, and
when a refusal is right it says what to pass."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from patchwork_widget.labels.opening import default_export

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: E402,F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]

#: One annotator's notebook: Session.open with no outfile, label a row, wait for a line,
#: then (up to 30 s) for the team's two labels, and close.
ANNOTATOR = """
import sys
import time
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
url, project, name, row = sys.argv[1:]
df = prep_label_dataframe([f"img{i}.png" for i in range(6)], ["cat"])
try:
    session = Session.open(df, journal=url, project=project, annotator=name)
except Exception as error:
    print(f"refused {type(error).__name__}: {error}", flush=True)
    sys.exit(3)
session.annotate([int(row)], {"cat": 1})
print(f"ack {session.store.path}", flush=True)
sys.stdin.readline()
deadline = time.monotonic() + 30
while session.df["cat"].notna().sum() < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
session.close()
"""


def start(folder: Path, url: str, project: str, name: str, row: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", ANNOTATOR, url, project, name, str(row)], cwd=folder, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def first_line(process: subprocess.Popen) -> str:
    line = process.stdout.readline().strip()
    if not line:
        raise AssertionError(f"the annotator process said nothing: {process.stderr.read()}")
    return line


def test_two_annotators_in_one_folder_with_defaults(postgres, tmp_path) -> None:  # noqa: F811
    project = f"folder-{uuid.uuid4().hex[:8]}"
    ana = start(tmp_path, postgres.url, project, "ana", 1)
    bob = None
    try:
        assert first_line(ana) == "ack patchwork_labels.ana.csv"
        bob = start(tmp_path, postgres.url, project, "bob", 2)  # while ana's store is open
        assert first_line(bob) == "ack patchwork_labels.bob.csv"
        for process in (ana, bob):
            process.communicate("\n", timeout=120)
            assert process.returncode == 0
    finally:
        for process in (ana, bob):
            if process is not None and process.poll() is None:
                process.kill()
    for name in ("ana", "bob"):  # each export holds the whole team's labels
        table = pd.read_csv(tmp_path / f"patchwork_labels.{name}.csv")
        assert table["cat"].notna().tolist() == [False, True, True, False, False, False]


def test_one_annotator_twice_in_one_folder_is_told_what_to_pass(postgres, tmp_path) -> None:  # noqa: F811
    project = f"folder-{uuid.uuid4().hex[:8]}"
    first = start(tmp_path, postgres.url, project, "ana", 1)
    try:
        assert first_line(first).startswith("ack ")
        second = start(tmp_path, postgres.url, project, "ana", 2)
        second.wait(timeout=120)
        refusal = first_line(second)
        assert second.returncode == 3
        assert refusal.startswith("refused JournalLockedError")
        assert "each store needs its own export file: pass another one, e.g. outfile=" in refusal
        first.communicate("\n", timeout=120)
    finally:
        if first.poll() is None:
            first.kill()


@pytest.mark.parametrize(("path", "journal", "annotator", "expected"), [
    ("patchwork_labels.csv", None, "ana", "patchwork_labels.csv"),
    ("patchwork_labels.csv", "postgresql://h/db", "ana", "patchwork_labels.ana.csv"),
    ("data/labels.parquet", "postgres://h/db", "ana", "data/labels.ana.parquet"),
    ("labels.csv", "postgresql://h/db", "a/b c", "labels.a_b_c.csv"),
])
def test_the_default_export_of_a_team_journal_is_the_annotators(path, journal, annotator,
                                                               expected) -> None:
    assert default_export(path, journal, annotator=annotator) == Path(expected)
