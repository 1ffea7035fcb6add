"""Annotator processes on one team project (issue 16): concurrent labeling, and a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: E402,F401  (the fixture)

WORKER = Path(__file__).with_name("team_worker.py")


def start(url: str, project: str, annotator: str, folder: Path, first: int, count: int,
          nrows: int, expect: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), url, project, annotator, str(folder / f"{annotator}.csv"),
         str(first), str(count), str(nrows), str(expect)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    return process


def actions_by_row(url: str, project: str) -> dict[int, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT e.row_index, a.annotator FROM patchwork_events e JOIN patchwork_actions a "
            "ON a.project = e.project AND a.id = e.action WHERE e.project = %s",
            (project,),
        ).fetchall()
    found: dict[int, list[str]] = {}
    for row, annotator in rows:
        found.setdefault(row, []).append(annotator)
    return found


def test_two_annotators_label_5000_each_at_once(postgres, tmp_path) -> None:  # noqa: F811
    project, n = f"pair-{uuid.uuid4().hex[:8]}", 5000
    ana = start(postgres.url, project, "ana", tmp_path, 0, n, 2 * n, 2 * n)
    bob = start(postgres.url, project, "bob", tmp_path, n, n, 2 * n, 2 * n)
    for process in (ana, bob):
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=300)[0].splitlines() for process in (ana, bob)]
    assert [process.returncode for process in (ana, bob)] == [0, 0]
    for lines, first in zip(outputs, (0, n)):
        acked = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
        assert acked == list(range(first, first + n))
        assert lines[-1] == f"seen {2 * n}"  # each saw the other's 5,000 live
    found = actions_by_row(postgres.url, project)
    assert sorted(found) == list(range(2 * n))
    assert all(found[row] == ["ana" if row < n else "bob"] for row in found)  # each once


def test_a_killed_annotator_keeps_every_acknowledged_label(postgres, tmp_path) -> None:  # noqa: F811
    project, n = f"kill-{uuid.uuid4().hex[:8]}", 1500
    ana = start(postgres.url, project, "ana", tmp_path, 0, n, 2 * n, 0)
    bob = start(postgres.url, project, "bob", tmp_path, n, n, 2 * n, 0)
    for process in (ana, bob):
        process.stdin.write("go\n")
        process.stdin.flush()
    acked = []
    for line in ana.stdout:
        acked.append(int(line.split()[1]))
        if len(acked) == 500:
            os.kill(ana.pid, signal.SIGKILL)
            break
    acked += [int(line.split()[1]) for line in ana.stdout if line.startswith("ack ")]
    ana.wait(60)
    assert ana.returncode == -signal.SIGKILL
    bob_lines = bob.communicate(timeout=300)[0].splitlines()
    assert bob.returncode == 0
    found = actions_by_row(postgres.url, project)
    assert all(found.get(row) == ["ana"] for row in acked)  # acknowledged, so committed
    assert sum(1 for row in range(n) if row in found) in (len(acked), len(acked) + 1)
    assert all(found[row] == ["bob"] for row in range(n, 2 * n))
    assert bob_lines[-1].startswith("seen ")


@pytest.mark.parametrize("name", ["initdb", "pg_ctl"])
def test_a_missing_server_binary_fails_with_a_clear_message(name, monkeypatch) -> None:
    import postgres_server

    monkeypatch.setenv("PATCHWORK_PG_BIN", "/nonexistent")
    monkeypatch.setattr(postgres_server, "Path", _NoDebianLayout)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql"):
        postgres_server.find_binary(name)


class _NoDebianLayout(type(Path())):
    """A Path whose glob finds nothing (as on a machine without Debian's package)."""

    def glob(self, pattern: str):  # noqa: ARG002
        return iter(())
