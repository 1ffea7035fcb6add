"""Issue 10, FEATURES L4: kill -9 at random points loses no acknowledged change.

One journal lives through many worker processes, each killed at a random moment: while it
opens and replays what the previous ones left, while it annotates or edits classes, while it
exports (the store exports after every change), compacts, or closes and reopens. After each
kill the table must hold every acknowledged operation and nothing never attempted: exactly
the acknowledged ones, plus perhaps the one in flight. Kill points follow the worker's
progress (after a random number of acknowledged operations, then a few milliseconds), not
the machine's speed. ``PATCHWORK_KILL_TRIALS`` sets the number of kills (default 50, about
1 s each, mostly Python start-up).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from patchwork_widget.labels import LabelStore, journal_path, load_labels

sys.path.insert(0, str(Path(__file__).parent))
import label_store_worker as worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 2000
TRIALS = int(os.environ.get("PATCHWORK_KILL_TRIALS", "50"))


def _run_and_kill(path: Path, seed: int, after: int, delay: float) -> list[str]:
    """Start a chaos worker; kill it ``delay`` s after its ``after``-th ``ack`` (or after its
    imports when ``after`` is 0). Return its complete output lines."""
    proc = subprocess.Popen(
        [sys.executable, worker.__file__, "chaos", str(path), str(seed), str(N_ROWS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: list[bytes] = []
    try:
        first = proc.stdout.readline()
        assert first == b"imported\n", (first, proc.stderr.read().decode()[-2000:])
        while sum(line == b"ack\n" for line in lines) < after:
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode()[-2000:]  # the worker died by itself
            lines.append(line)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        lines.append(proc.stdout.read())
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    return b"".join(lines).decode().split("\n")[:-1]  # a line without "\n" was cut by the kill


def _journal_table(path: Path) -> pd.DataFrame | None:
    """The journal's table (read-only, so nothing is compacted between kills), or None."""
    if not journal_path(path).exists():
        return None
    try:
        with LabelStore.open(path, read_only=True) as store:
            return store.df.copy()
    except ValueError as error:  # killed while creating it: the journal is empty
        assert "empty or still being created" in str(error)
        return None


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b)
    except AssertionError:
        return False
    return True


def test_random_kills_lose_no_acknowledged_change(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    rng = random.Random(2026)
    table = worker.start_table(N_ROWS)
    acknowledged = expected_acks = 0
    for trial in range(TRIALS):
        # one kill in eight while opening (replaying what the previous workers left)
        after = 0 if rng.random() < 0.125 else rng.randint(1, 40)
        delay = rng.uniform(0.0, 0.05) if after == 0 else rng.uniform(0.0, 0.01)
        lines = _run_and_kill(path, seed=trial, after=after, delay=delay)
        ops = [json.loads(line[4:]) for line in lines if line.startswith("try ")]
        acks = sum(line == "ack" for line in lines)
        assert acks >= after and len(ops) - acks in (0, 1), lines[-3:]
        expected_acks += after
        done = table
        for op in ops[:acks]:
            done = worker.apply_reference(done, op)
        found = _journal_table(path)
        if found is None:
            assert acks == 0, f"trial {trial}: {acks} acknowledged but no journal"
            continue
        if _same(found, done):
            table = done
        else:
            assert len(ops) > acks, f"trial {trial}: acknowledged changes lost"
            table = worker.apply_reference(done, ops[-1])
            assert _same(found, table), f"trial {trial}: table is neither before nor after"
        acknowledged += acks

    assert acknowledged >= expected_acks > 10 * TRIALS  # the kills landed mid-work
    with LabelStore.open(path) as store:  # a writer open cleans what killed exports left
        pd.testing.assert_frame_equal(store.df, table)
        assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    exported = load_labels(path)  # written whole at close
    pd.testing.assert_frame_equal(exported, table)
