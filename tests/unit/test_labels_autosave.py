"""Issue 12 item 4, issue 10 item 8: the export file kept current without a click."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import patchwork_widget.labels.autosave as autosave_module
import patchwork_widget.labels.exporting as exporting_module
from patchwork_widget.labels import LabelStore, journal_path, load_labels, prep_label_dataframe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base() -> pd.DataFrame:
    return prep_label_dataframe([f"img{i}.png" for i in range(6)], ["cat", "dog"])


def test_outfile_follows_changes_without_export(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    store = LabelStore.open(path, df=base, autosave=0.05)
    try:
        assert store.wait_exported(30)  # the starting table, without any click
        store.annotate(2, {"cat": 1})
        store.annotate_many([3, 4], {"dog": 0, "exclude": True})
        assert store.wait_exported(30)
        state = store.export_state
        assert state.state == "exported" and state.error is None and state.changed_at is None
        pd.testing.assert_frame_equal(load_labels(path), store.df)
        store.rename_class("cat", "feline")
        assert store.wait_exported(30)
        assert list(load_labels(path).columns)[-2:] == ["feline", "dog"]
    finally:
        store.close()


def test_export_state_pending_until_exported(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    with LabelStore.open(path, df=base, autosave=None) as store:
        assert store.export_state.state == "pending"  # no file yet
        store.export()
        exported = store.export_state
        assert exported.state == "exported" and exported.exported_at is not None
        store.annotate(0, {"cat": 0})
        pending = store.export_state
        assert pending.state == "pending"
        assert pending.changed_at >= exported.exported_at
        assert pending.as_dict()["path"] == str(path)
    with LabelStore.open(path, autosave=None) as store:  # closed cleanly: known current
        assert store.export_state.state == "exported"
        path.write_text(path.read_text() + "\n")  # changed behind the store's back
    with LabelStore.open(path, autosave=None) as store:
        assert store.export_state.state == "pending"


def test_annotate_never_waits_for_an_export(tmp_path: Path, base, monkeypatch) -> None:
    path = tmp_path / "labels.csv"
    writing, finish = threading.Event(), threading.Event()
    save = exporting_module.save_labels

    def slow_save(df, target):
        writing.set()
        finish.wait(30)
        save(df, target)

    monkeypatch.setattr(exporting_module, "save_labels", slow_save)
    store = LabelStore.open(path, df=base, autosave=0.0)
    try:
        assert writing.wait(30)  # the background export is in progress
        done = threading.Event()
        worker = threading.Thread(target=lambda: (store.annotate(1, {"dog": 1}), done.set()))
        worker.start()
        assert done.wait(30)  # returned while the export was still blocked
        assert not finish.is_set()
        assert store.export_state.state == "pending"
        finish.set()
        assert store.wait_exported(30)
        assert load_labels(path).loc[1, "dog"] == 1.0
    finally:
        finish.set()
        store.close()


def test_failed_export_is_reported_and_retried(tmp_path: Path, base, monkeypatch) -> None:
    path = tmp_path / "labels.csv"
    monkeypatch.setattr(autosave_module, "MAX_WAIT", 0.05)
    failures = threading.Semaphore(0)
    save = exporting_module.save_labels
    broken = [True]

    def flaky_save(df, target):
        if broken[0]:
            failures.release()
            raise OSError(28, "No space left on device")
        save(df, target)

    monkeypatch.setattr(exporting_module, "save_labels", flaky_save)
    store = LabelStore.open(path, df=base, autosave=0.0)
    try:
        assert failures.acquire(timeout=30)
        assert failures.acquire(timeout=30)  # tried again
        state = store.export_state
        assert state.state == "failed"
        assert "No space left on device" in state.error
        broken[0] = False
        assert store.wait_exported(30)
        assert store.export_state.error is None
    finally:
        store.close()


def test_new_files_follow_the_umask(tmp_path: Path, base) -> None:
    old = os.umask(0o027)
    try:
        path = tmp_path / "labels.csv"
        with LabelStore.open(path, df=base, autosave=None) as store:
            store.export()
            assert path.stat().st_mode & 0o777 == 0o640
            store.export(tmp_path / "copy.parquet")
            assert (tmp_path / "copy.parquet").stat().st_mode & 0o777 == 0o640
            path.chmod(0o664)  # a replaced file keeps its permissions
            store.annotate(0, {"cat": 1})
        assert path.stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_open_removes_exports_a_kill_left_unfinished(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    stale = [tmp_path / ".labels.csv.k2j3h4.tmp", tmp_path / ".labels.csv.x.tmp"]
    other = [tmp_path / ".other.csv.k2j3h4.tmp", tmp_path / "labels.csv.tmp"]
    for file in stale + other:
        file.write_text("half a table")
    with LabelStore.open(path, df=base, autosave=None):
        assert not any(file.exists() for file in stale)
        assert all(file.exists() for file in other)


def test_interpreter_exit_exports_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    script = (
        "from patchwork_widget.labels import LabelStore, prep_label_dataframe\n"
        f"store = LabelStore.open({str(path)!r}, autosave=None,\n"
        "    df=prep_label_dataframe(['a.png', 'b.png'], ['cat']))\n"
        "store.annotate(1, {'cat': 1})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    assert load_labels(path).loc[1, "cat"] == 1.0
    assert not Path(f"{journal_path(path)}.lock").exists()
    with LabelStore.open(path, autosave=None) as store:
        assert store._pending == 0  # compacted at exit
        assert store.export_state.state == "exported"


def test_exports_rest_a_multiple_of_their_duration(monkeypatch) -> None:
    """Issue 26: a slow export is followed by a rest of BACKOFF times its duration, so a
    stream of changes cannot keep the export busy all the time."""
    monkeypatch.setattr(autosave_module, "BACKOFF", 2.0)
    spans: list[tuple[float, float]] = []
    three = threading.Event()

    def slow_export() -> bool:
        start = time.monotonic()
        time.sleep(0.1)
        spans.append((start, time.monotonic()))
        if len(spans) == 3:
            three.set()
        return True

    saver = autosave_module.Autosave(slow_export, 0.0, "test", max_wait=0.0)
    try:
        saver.changed()
        while not three.wait(0.01):  # changes keep coming
            saver.changed()
    finally:
        saver.stop()
    for (start, end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start - end >= 2.0 * (end - start)


@pytest.fixture
def by_worker(monkeypatch):
    """Background exports of any table written by the worker process, without rests."""
    monkeypatch.setattr(exporting_module, "PROCESS_ROWS", 0)
    monkeypatch.setattr(autosave_module, "BACKOFF", 0.0)


def _gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_process_writes_the_background_exports(tmp_path: Path, base, by_worker) -> None:
    path = tmp_path / "labels.csv"
    store = LabelStore.open(path, df=base, autosave=0.01)
    try:
        assert store.wait_exported(60)
        pid = store._exports.worker_pid
        assert pid is not None and pid != os.getpid()
        store.annotate(2, {"cat": 1})
        store.rename_class("cat", "feline")  # replayed by the worker from the journal
        store.annotate_many([3, 4], {"dog": 0, "exclude": True})
        store.record_unreadable(5, "truncated")
        store.undo()
        assert store.wait_exported(60)
        pd.testing.assert_frame_equal(load_labels(path), store.df)
        assert store._exports.worker_pid == pid  # one worker for the store's life
        last = store._last_action
    finally:
        store.close()
    assert _gone(pid, 30)
    with LabelStore.open(path, autosave=None) as again:  # the record names the last action
        assert again._last_action == last
        assert again.export_state.state == "exported"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_reports_what_it_could_not_write(tmp_path: Path, base, by_worker,
                                                  monkeypatch) -> None:
    monkeypatch.setattr(autosave_module, "MAX_WAIT", 0.05)
    path = tmp_path / "labels.csv"
    (path / "in the way").mkdir(parents=True)  # a folder where the file should go
    store = LabelStore.open(path, df=base, autosave=0.0)
    try:
        deadline = time.monotonic() + 60
        while store.export_state.state != "failed" and time.monotonic() < deadline:
            time.sleep(0.02)
        state = store.export_state
        assert state.state == "failed"
        assert state.error.startswith(("IsADirectoryError: ", "OSError: "))
        (path / "in the way").rmdir()
        path.rmdir()
        assert store.wait_exported(60)  # retried by the same worker
        pd.testing.assert_frame_equal(load_labels(path), store.df)
    finally:
        store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_a_killed_kernel_leaves_no_export_worker(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    script = (
        "import os, signal\n"
        "import patchwork_widget.labels.exporting as exporting\n"
        "exporting.PROCESS_ROWS = 0\n"
        "from patchwork_widget.labels import LabelStore, prep_label_dataframe\n"
        f"store = LabelStore.open({str(path)!r}, autosave=0.0,\n"
        "    df=prep_label_dataframe(['a.png', 'b.png'], ['cat']))\n"
        "assert store.wait_exported(60)\n"
        "print(store._exports.worker_pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert _gone(int(done.stdout.split()[0]), 30)
