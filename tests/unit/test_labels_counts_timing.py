"""FEATURES L5 (counts, full and incremental) and L6 (time accounting)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwork_widget.labels import (
    COUNT_COLUMNS,
    LabelStore,
    add_class,
    cells_per_minute,
    images_per_minute,
    label_counts,
    labels_per_minute,
    merge_classes,
    prep_label_dataframe,
    remove_class,
    rename_class,
    time_per_annotator,
    time_per_class,
    time_per_image,
    time_per_session,
)

nan = np.nan

# -- L5: label_counts on a hand-built table ---------------------------------------------------


def test_label_counts_exact() -> None:
    df = prep_label_dataframe([f"f{i}" for i in range(7)], ["cat", "dog"])
    df["cat"] = [1, 0, 1, nan, 1, nan, nan]
    df["dog"] = [0, nan, 1, 0, 1, nan, nan]
    df["validation"] = [False, False, True, True, True, False, False]
    df["exclude"] = [False, False, False, False, True, True, False]
    expected = pd.DataFrame(
        [[1, 1, 1, 1, 0, 1, 2, 7], [0, 1, 2, 1, 1, 0, 2, 7]],
        index=pd.Index(["cat", "dog"], name="class", dtype=object),
        columns=COUNT_COLUMNS,
    )
    pd.testing.assert_frame_equal(label_counts(df), expected)


def test_label_counts_without_classes() -> None:
    out = label_counts(prep_label_dataframe(["a"], []))
    assert out.empty and list(out.columns) == COUNT_COLUMNS


# -- L5: incremental counts equal a full recount under random operations --------------------------

N_ROWS = 12
FIELD_SLOTS = 6
LABELS = st.sampled_from([None, 0, 1, nan, True, False])

annotate_op = st.tuples(
    st.just("annotate"),
    st.integers(0, N_ROWS - 1),
    st.dictionaries(st.integers(0, FIELD_SLOTS - 1), LABELS | st.booleans(), min_size=1, max_size=3),
)
many_op = st.tuples(
    st.just("many"),
    st.sets(st.integers(0, N_ROWS - 1), min_size=1, max_size=5),
    st.integers(0, FIELD_SLOTS - 1),
    LABELS,
)
edit_op = st.one_of(
    st.tuples(st.just("undo")),
    st.tuples(st.just("add")),
    st.tuples(st.just("rename"), st.integers(0, 10)),
    st.tuples(st.just("remove"), st.integers(0, 10)),
    st.tuples(st.just("merge"), st.integers(0, 10), st.integers(0, 10), st.booleans()),
)
operations = st.lists(st.one_of(annotate_op, annotate_op, many_op, edit_op), max_size=25)


def _field(df: pd.DataFrame, slot: int) -> str:
    fields = [c for c in df.columns if c != "filepath"]
    return fields[slot % len(fields)]


def _cell(field: str, value: object) -> object:
    if field in ("exclude", "validation"):
        return bool(value) if value is not None and value == value else False
    return nan if value is None else float(value)


def _run(store: LabelStore, ref: pd.DataFrame, undo: list, op: tuple, serial: int) -> pd.DataFrame:
    """Apply ``op`` to the store and to a reference frame; return the new reference."""
    classes = [c for c in ref.columns if c not in ("filepath", "exclude", "validation")]
    kind = op[0]
    if kind in ("annotate", "many"):
        if kind == "annotate":
            rows = [op[1]]
            changes = {_field(ref, slot): value for slot, value in op[2].items()}
        else:
            rows = sorted(op[1])
            changes = {_field(ref, op[2]): op[3]}
        changes = {f: _cell(f, v) for f, v in changes.items()}
        undo.append(ref.copy())
        store.annotate_many(rows, changes)
        ref = ref.copy()
        for field, value in changes.items():
            ref.loc[rows, field] = value
        return ref
    if kind == "undo":
        assert (store.undo() is None) == (not undo)
        return undo.pop() if undo else ref
    if kind == "add":
        undo.clear()
        store.add_class(f"new{serial}")
        return add_class(ref, f"new{serial}")
    if not classes:
        return ref
    if kind == "rename":
        undo.clear()
        old = classes[op[1] % len(classes)]
        store.rename_class(old, f"ren{serial}")
        return rename_class(ref, old, f"ren{serial}")
    if kind == "remove":
        undo.clear()
        name = classes[op[1] % len(classes)]
        store.remove_class(name)
        return remove_class(ref, name)
    a, b = classes[op[1] % len(classes)], classes[op[2] % len(classes)]
    if a == b:
        return ref
    undo.clear()
    into = f"m{serial}" if op[3] else None
    store.merge_classes(a, b, into)
    return merge_classes(ref, a, b, into)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_incremental_counts_equal_full_recount(ops: list) -> None:
    start = prep_label_dataframe([f"f{i}" for i in range(N_ROWS)], ["a", "b", "c"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.parquet"
        store = LabelStore.open(path, df=start)
        ref, undo = start, []
        for serial, op in enumerate(ops):
            ref = _run(store, ref, undo, op, serial)
            pd.testing.assert_frame_equal(store.df, ref)
            pd.testing.assert_frame_equal(store.counts, label_counts(store.df))
        store.close(export=False)
        with LabelStore.open(path) as reopened:
            pd.testing.assert_frame_equal(reopened.df, ref)
            pd.testing.assert_frame_equal(reopened.counts, label_counts(ref))


# -- L6: time accounting on a hand-built history ----------------------------------------------------

T0 = pd.Timestamp("2025-01-01 12:00:00", tz="UTC")


def _history() -> pd.DataFrame:
    rows = [
        # action, minute, kind, row, field, old, new, seconds, user, session, undone
        (1, 0, "annotate", 0, "cat", nan, 1.0, 6.0, "ann", "s1", False),
        (1, 0, "annotate", 0, "dog", nan, 0.0, 6.0, "ann", "s1", False),
        (1, 0, "annotate", 0, "exclude", 0.0, 1.0, 6.0, "ann", "s1", False),
        (2, 1, "annotate", 1, "cat", nan, 1.0, 4.0, "ann", "s1", False),
        (2, 1, "annotate", 2, "cat", nan, 1.0, 4.0, "ann", "s1", False),
        (3, 2, "annotate", 1, "cat", 1.0, 1.0, 3.0, "ann", "s1", False),
        (4, 10, "annotate", 2, "dog", nan, 1.0, 5.0, "bob", "s2", True),
        (5, 11, "undo", 2, "dog", 1.0, nan, nan, "bob", "s2", False),
        (6, 12, "add_class", -1, "fish", nan, nan, nan, "bob", "s2", False),
        (7, 13, "annotate", 3, "fish", nan, 0.0, nan, "bob", "s2", False),
        (8, 14, "annotate", 3, "fish", 0.0, nan, 2.0, "bob", "s2", False),
    ]
    columns = ["action", "minute", "kind", "row", "field", "old", "new", "seconds", "user",
               "session", "undone"]
    df = pd.DataFrame(rows, columns=columns)
    df.insert(1, "time", T0 + pd.to_timedelta(df.pop("minute"), unit="min"))
    return df


def test_time_per_image() -> None:
    expected = pd.DataFrame(
        {"seconds": [6.0, 5.0, 7.0, 2.0], "annotations": [1, 2, 2, 2]},
        index=pd.Index([0, 1, 2, 3], name="row"),
    )
    pd.testing.assert_frame_equal(time_per_image(_history()), expected)


def test_time_per_class() -> None:
    expected = pd.DataFrame(
        {"seconds": [9.0, 7.0, 2.0, 2.0], "cells": [3, 1, 0, 1]},
        index=pd.Index(["cat", "dog", "exclude", "fish"], name="field"),
    )
    pd.testing.assert_frame_equal(time_per_class(_history()), expected)


def test_time_per_session_counts_images_and_cells() -> None:
    out = time_per_session(_history())
    assert out.index.tolist() == ["s1", "s2"]
    assert out["user"].tolist() == ["ann", "bob"]
    assert out["start"].tolist() == [T0, T0 + pd.Timedelta(minutes=10)]
    assert out["end"].tolist() == [T0 + pd.Timedelta(minutes=2), T0 + pd.Timedelta(minutes=14)]
    assert out["seconds"].tolist() == [13.0, 7.0]
    assert out["annotations"].tolist() == [3, 3]
    # s1: call 1 gives row 0 two cells (one image), call 2 rows 1 and 2 one each (two
    # images), call 3 changes nothing; s2: only call 7 gives a cell (call 4 was undone)
    assert out["images"].tolist() == [3, 1] and out["cells"].tolist() == [4, 1]
    np.testing.assert_allclose(out["images_per_minute"], [3 / (13 / 60), 1 / (7 / 60)])
    np.testing.assert_allclose(out["cells_per_minute"], [4 / (13 / 60), 1 / (7 / 60)])
    assert images_per_minute(_history()) == pytest.approx(4 / (20 / 60))
    assert cells_per_minute(_history()) == pytest.approx(15.0)


def test_time_per_annotator_counts_images_and_cells() -> None:
    out = time_per_annotator(_history())
    assert out.index.tolist() == ["ann", "bob"]
    assert out["images"].tolist() == [3, 1] and out["cells"].tolist() == [4, 1]
    np.testing.assert_allclose(out["images_per_minute"], [3 / (13 / 60), 1 / (7 / 60)])


def test_labels_per_minute_is_deprecated_and_keeps_counting_cells() -> None:
    with pytest.warns(DeprecationWarning, match="images_per_minute"):
        assert labels_per_minute(_history()) == pytest.approx(15.0)


def test_the_pace_without_seconds_is_nan() -> None:
    history = _history()
    history["seconds"] = nan
    assert np.isnan(images_per_minute(history)) and np.isnan(cells_per_minute(history))
    assert time_per_session(history)["images_per_minute"].isna().all()


def test_timing_from_a_real_store(tmp_path: Path) -> None:
    df = prep_label_dataframe(["a", "b", "c"], ["cat", "dog"])
    with LabelStore.open(tmp_path / "labels.csv", df=df) as store:
        store.annotate(0, {"cat": 1, "dog": 0}, seconds=4.0)
        store.annotate_many([1, 2], {"cat": 0}, seconds=3.0)
        store.annotate(2, {"dog": 1}, seconds=1.0)
        store.undo()
        history = store.history()
    pd.testing.assert_series_equal(
        time_per_image(history)["seconds"],
        pd.Series([4.0, 1.5, 2.5], index=pd.Index([0, 1, 2], name="row"), name="seconds"),
    )
    assert time_per_class(history)["cells"].to_dict() == {"cat": 3, "dog": 1}
    assert cells_per_minute(history) == pytest.approx(4 / (8 / 60))
    assert images_per_minute(history) == pytest.approx(3 / (8 / 60))  # rows 0, 1 and 2
