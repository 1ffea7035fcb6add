"""DESIGN "One writer per journal" (FEATURES L4): takeover, refusal, read-only, stale locks,
fresh-create races, and compaction that never covers actions it did not apply."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import (
    JournalLockedError,
    LabelStore,
    ReadOnlyStoreError,
    StoreTakenOverError,
    journal_path,
    prep_label_dataframe,
)
from patchwork_widget.labels.journal import Journal

sys.path.insert(0, str(Path(__file__).parent))
import label_store_worker as worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def base() -> pd.DataFrame:
    return prep_label_dataframe([f"img{i}.png" for i in range(8)], ["cat", "dog"])


def _read_until(proc: subprocess.Popen, last: str, timeout: float = 60) -> list[str]:
    """Lines from the worker's stdout up to and including ``last``."""
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline().decode().strip()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line == last:
            return lines
    raise AssertionError(f"worker said {lines}; stderr: {proc.stderr.read().decode()[-2000:]}")


def _holder(path: Path, rows: list[int]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, worker.__file__, "hold", str(path), "8", *map(str, rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )


# -- one process, two stores -----------------------------------------------------------------


def test_second_store_in_process_takes_over_and_first_stops_writing(tmp_path, base) -> None:
    """Issue 10 item 1: a = open; b = open; a.annotate; b.annotate; a.close; b.close."""
    path = tmp_path / "labels.csv"
    a = LabelStore.open(path, df=base)
    a.annotate(0, {"cat": 1})
    b = LabelStore.open(path, df=base)  # the cell run again
    assert b.df.loc[0, "cat"] == 1.0  # b holds what a acknowledged
    with pytest.raises(StoreTakenOverError, match="took over .* use the newer store"):
        a.annotate(2, {"cat": 1})
    with pytest.raises(StoreTakenOverError):
        a.add_class("bird")
    b.annotate(1, {"dog": 0})
    assert a.closed and not b.closed
    a.close()  # writes nothing: the file belongs to b now
    b.annotate(3, {"cat": 0})
    b.close()
    with LabelStore.open(path) as c:
        assert c.df.loc[0, "cat"] == 1.0
        assert c.df.loc[1, "dog"] == 0.0
        assert c.df.loc[3, "cat"] == 0.0
        assert np.isnan(c.df.loc[2, "cat"])
    exported = pd.read_csv(path)
    assert exported.loc[0, "cat"] == 1.0 and exported.loc[3, "cat"] == 0.0


def test_takeover_waits_for_a_call_in_flight(tmp_path, base, monkeypatch) -> None:
    path = tmp_path / "labels.csv"
    a = LabelStore.open(path, df=base, autosave=None)
    entered, release = threading.Event(), threading.Event()
    append = a._journal.append

    def slow_append(*args, **kwargs):
        entered.set()
        release.wait(10)
        return append(*args, **kwargs)

    monkeypatch.setattr(a._journal, "append", slow_append)
    annotating = threading.Thread(target=a.annotate, args=(5, {"cat": 1}))
    annotating.start()
    assert entered.wait(10)
    opened: list[LabelStore] = []
    opening = threading.Thread(target=lambda: opened.append(LabelStore.open(path)))
    opening.start()
    opening.join(0.3)
    assert opening.is_alive()  # waits for the annotation in flight
    release.set()
    annotating.join(10)
    opening.join(10)
    b = opened[0]
    assert b.df.loc[5, "cat"] == 1.0
    b.close()
    a.close()


def test_close_time_compaction_never_drops_actions_it_did_not_apply(tmp_path, base) -> None:
    """A writer that bypassed the lock (an older version, a hand edit) keeps its action."""
    path = tmp_path / "labels.csv"
    store = LabelStore.open(path, df=base, autosave=None)
    store.annotate(0, {"cat": 1})
    foreign = Journal(journal_path(path), "someone", "other-session")
    foreign.append("annotate", [(1, "dog", None, 1.0)], seconds=1.0)
    foreign.close()
    store.annotate(2, {"cat": 0})
    store.close()
    with LabelStore.open(path) as reopened:
        assert reopened.df.loc[1, "dog"] == 1.0  # not erased by the close-time snapshot
        assert reopened.df.loc[0, "cat"] == 1.0


def test_takeover_of_a_store_mid_export_keeps_the_newer_table(tmp_path, base) -> None:
    path = tmp_path / "labels.csv"
    a = LabelStore.open(path, df=base, autosave=0.0)
    for row in range(8):
        a.annotate(row, {"cat": 1})
    b = LabelStore.open(path)
    b.annotate(0, {"cat": 0})
    b.close()
    assert pd.read_csv(path).loc[0, "cat"] == 0.0
    a.close()
    assert pd.read_csv(path).loc[0, "cat"] == 0.0


# -- two processes -----------------------------------------------------------------------------


def test_second_process_is_refused_with_the_holder_then_reads_only(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    proc = _holder(path, [0, 4])
    try:
        _read_until(proc, "holding")
        with pytest.raises(JournalLockedError) as caught:
            LabelStore.open(path, df=worker.start_table(8))
        message = str(caught.value)
        assert f"process {proc.pid}" in message
        assert socket.gethostname() in message
        assert "read_only=True" in message
        assert caught.value.holder["pid"] == proc.pid
        with LabelStore.open(path, read_only=True) as reader:
            assert reader.read_only
            assert reader.df.loc[[0, 4], "cat"].tolist() == [1.0, 1.0]
            assert len(reader.history()) == 2
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                reader.annotate(1, {"cat": 1})
            with pytest.raises(ReadOnlyStoreError):
                reader.export()
            reader.export(tmp_path / "copy.csv")  # another file is fine
        assert journal_path(path).exists()  # the reader's close deleted nothing
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_lock_of_a_killed_process_is_not_in_the_way(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    proc = _holder(path, [2, 3])
    try:
        acks = _read_until(proc, "holding")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert acks == ["ack 2", "ack 3", "holding"]
    with LabelStore.open(path, df=worker.start_table(8)) as store:  # no error, no waiting
        assert store.df.loc[[2, 3], "cat"].tolist() == [1.0, 1.0]


def test_wait_for_the_other_writer(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    proc = _holder(path, [1])
    try:
        _read_until(proc, "holding")
        threading.Timer(0.5, proc.kill).start()
        with LabelStore.open(path, df=worker.start_table(8), wait=30) as store:
            assert store.df.loc[1, "cat"] == 1.0
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_read_only_needs_a_journal(tmp_path, base) -> None:
    with pytest.raises(ValueError, match="read_only=True needs an existing journal"):
        LabelStore.open(tmp_path / "labels.csv", df=base, read_only=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("wait", -1, "wait must be a number of seconds >= 0; got -1"),
        ("wait", float("nan"), "wait must be a number of seconds >= 0; got nan"),
        ("read_only", "yes", "read_only must be True or False; got 'yes'"),
        ("autosave", -2, "autosave must be None .* or a number of seconds >= 0; got -2"),
    ],
)
def test_open_rejects_bad_arguments(tmp_path, base, name, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        LabelStore.open(tmp_path / "labels.csv", df=base, **{name: value})
    assert list(tmp_path.iterdir()) == []


def test_fresh_create_races_lose_nothing(tmp_path: Path) -> None:
    """Issue 10 item 2: two processes create the same fresh journals at once, 25 times."""
    paths = [str(tmp_path / f"race{i}" / "labels.csv") for i in range(25)]
    for path in paths:
        Path(path).parent.mkdir()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, worker.__file__, "race", str(go), name, str(row), *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        for name, row in (("first", 0), ("second", 1))
    ]
    time.sleep(2)  # let both import and wait for the go file
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        outputs.append(out.decode().splitlines())
    for lines in outputs:
        assert lines == [f"ok {path}" for path in paths], lines
    for path in paths:
        with LabelStore.open(path, read_only=True) as store:
            assert store.df.loc[[0, 1], "dog"].tolist() == [1.0, 1.0], path
            assert sorted(store.history()["user"]) == ["first", "second"]
