"""FEATURES L4, B2: every acknowledged annotation survives kill -9; replay is exact."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import LabelStore, label_counts, prep_label_dataframe

sys.path.insert(0, str(Path(__file__).parent))
import label_store_worker as worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 3000


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _complete_lines(path: Path) -> list[str]:
    text = path.read_text()
    return text.split("\n")[:-1]  # a last line without "\n" was cut by the kill


@pytest.mark.parametrize(
    ("seed", "after_ready", "delay"),
    [
        (1, False, 0.4),  # usually while importing or creating the journal
        (2, True, 0.0),
        (3, True, 0.05),
        (4, True, 0.3),
        (5, True, 0.8),
        (6, True, 1.5),
    ],
)
def test_sigkill_keeps_every_acknowledged_annotation(
    tmp_path: Path, seed: int, after_ready: bool, delay: float
) -> None:
    export = tmp_path / "labels.csv"
    out = tmp_path / "worker.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, str(Path(worker.__file__)), str(export), str(seed), str(N_ROWS)],
            stdout=handle,
            stderr=subprocess.PIPE,
            env=env,
        )
    try:
        if after_ready:
            assert _wait_for(lambda: out.read_text().startswith("ready\n"), 60), (
                proc.stderr.read().decode() if proc.poll() is not None else "worker slow"
            )
        time.sleep(delay)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()

    acks = [line for line in _complete_lines(out) if line.startswith("ack ")]
    assert acks == [f"ack {i}" for i in range(len(acks))]
    k = len(acks)

    expected = {0: worker.start_table(N_ROWS)}
    table = expected[0]
    for i, op in enumerate(itertools.islice(worker.operations(seed, N_ROWS), k + 1), 1):
        table = worker.apply_reference(table, op)
        if i >= k:
            expected[i] = table

    with LabelStore.open(export, df=worker.start_table(N_ROWS)) as store:
        done = len(store.history()["action"].unique())
        assert done in (k, k + 1), (done, k)
        pd.testing.assert_frame_equal(store.df, expected[done])
        pd.testing.assert_frame_equal(store.counts, label_counts(expected[done]))
    if after_ready and delay >= 0.3:
        assert k > 0  # the kill landed mid-stream, not before the first annotation


def test_replay_of_class_edits_and_annotations_without_close(tmp_path: Path) -> None:
    """A second open (as after a crash, without close or compaction) replays everything."""
    df = prep_label_dataframe([f"f{i}" for i in range(50)], ["a", "b", "c"])
    path = tmp_path / "labels.parquet"
    first = LabelStore.open(path, df=df)
    first.annotate(0, {"a": 1, "b": 0})
    first.annotate(1, {"a": 0, "c": 1, "validation": True})
    first.annotate_many([2, 3, 4], {"b": 1, "exclude": 1})
    first.rename_class("a", "alpha")
    first.annotate(5, {"alpha": 1})
    first.add_class("d")
    first.annotate(0, {"d": 0, "alpha": None})
    first.merge_classes("b", "c", into="bc")
    first.annotate(6, {"bc": 0})
    first.remove_class("d")
    first.annotate(7, {"alpha": 0})
    first.undo()
    first.annotate(8, {"alpha": 1})

    expected = df.copy()
    expected.loc[[2, 3, 4], "exclude"] = True
    expected.loc[1, "validation"] = True
    alpha = np.full(50, np.nan)
    alpha[[1, 5, 8]] = [0, 1, 1]
    bc = np.full(50, np.nan)
    bc[[2, 3, 4, 1, 6]] = 1, 1, 1, 1, 0
    expected = expected[["filepath", "exclude", "validation"]].assign(alpha=alpha, bc=bc)

    pd.testing.assert_frame_equal(first.df, expected)
    counts, history = first.counts, first.history()
    second = LabelStore.open(path)  # takes over from first, which never closed
    try:
        pd.testing.assert_frame_equal(second.df, expected)
        pd.testing.assert_frame_equal(second.counts, counts)
        pd.testing.assert_frame_equal(second.history(), history)
    finally:
        second.close(export=False)
        first.close(export=False)
