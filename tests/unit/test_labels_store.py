"""FEATURES L3, L4: LabelStore annotate / undo / class edits / export / open rules."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import patchwork_widget.labels.store as store_module
from patchwork_widget.labels import (
    LabelStore,
    journal_path,
    label_counts,
    load_labels,
    merge_classes,
    prep_label_dataframe,
    remove_class,
    rename_class,
)

nan = np.nan


@pytest.fixture
def base() -> pd.DataFrame:
    return prep_label_dataframe([f"img{i}.png" for i in range(8)], ["cat", "dog", "bird"])


@pytest.fixture
def store(tmp_path: Path, base: pd.DataFrame):
    with LabelStore.open(tmp_path / "labels.csv", df=base) as opened:
        yield opened


def _reopen(store: LabelStore) -> LabelStore:
    store.close(export=False)
    return LabelStore.open(store.path)


# -- opening --------------------------------------------------------------------------------


def test_open_creates_wal_journal_beside_export(tmp_path: Path, base: pd.DataFrame) -> None:
    path = tmp_path / "labels.csv"
    with LabelStore.open(path, df=base) as store:
        assert journal_path(path) == tmp_path / "labels.csv.journal.sqlite"
        assert journal_path(path).exists()
        pd.testing.assert_frame_equal(store.df, base)
        assert store.df is not base
        assert store._journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(journal_path(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_existing_journal_wins_over_df_with_same_paths(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.parquet"
    with LabelStore.open(path, df=base) as store:
        store.annotate(1, {"cat": 1})
    other = base.copy()
    other.loc[1, "cat"] = 0.0
    with LabelStore.open(path, df=other) as store:
        assert store.df.loc[1, "cat"] == 1.0


def test_df_with_other_paths_than_journal_is_refused(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    LabelStore.open(path, df=base).close()
    renamed = base.copy()
    renamed.loc[5, "filepath"] = "elsewhere.png"
    with pytest.raises(ValueError, match=re.escape("row 5: the journal labels.csv.journal")):
        LabelStore.open(path, df=renamed)
    with pytest.raises(ValueError, match="holds 8 rows but df has 3"):
        LabelStore.open(path, df=base.iloc[:3])


def test_classes_must_match(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    LabelStore.open(path, df=base, classes=["cat", "dog", "bird"]).close()
    with pytest.raises(ValueError, match=re.escape("has classes ['cat', 'dog', 'bird'], not ['cat']")):
        LabelStore.open(path, classes=["cat"])


def test_open_without_journal_starts_from_export_file(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    base.loc[2, "dog"] = 1.0
    base.to_csv(path, index=False)
    with LabelStore.open(path) as store:
        pd.testing.assert_frame_equal(store.df, base)


def test_open_with_nothing_to_start_from(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pass df"):
        LabelStore.open(tmp_path / "labels.csv")
    assert list(tmp_path.iterdir()) == []  # no empty journal left behind


def test_wrong_classes_create_no_journal(tmp_path: Path, base) -> None:
    with pytest.raises(ValueError, match="not \\['cat'\\]"):
        LabelStore.open(tmp_path / "labels.csv", df=base, classes=["cat"])
    assert list(tmp_path.iterdir()) == []
    with LabelStore.open(tmp_path / "labels.csv", df=base, classes=["cat", "dog", "bird"]):
        pass


def test_open_rejects_unknown_extension(tmp_path: Path, base) -> None:
    with pytest.raises(ValueError, match=re.escape("allowed: ['.csv', '.parquet']")):
        LabelStore.open(tmp_path / "labels.xlsx", df=base)


def test_empty_journal_file_from_interrupted_creation(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    sqlite3.connect(journal_path(path)).close()  # exists but holds no tables
    with LabelStore.open(path, df=base) as store:
        pd.testing.assert_frame_equal(store.df, base)


# -- annotate -------------------------------------------------------------------------------


def test_annotate_accepts_every_value_form(store: LabelStore) -> None:
    df = store.df
    store.annotate(0, {"cat": 1, "dog": 0, "bird": None})
    store.annotate(1, {"cat": True, "dog": False, "bird": 1.0, "exclude": 1})
    store.annotate(2, {"cat": np.float64(0), "dog": nan, "validation": np.bool_(True)})
    store.annotate(np.int64(3), {"cat": np.int32(1), "exclude": 0.0, "validation": 1.0})
    assert store.df is df
    assert df.loc[0:3, "cat"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert df.loc[0:3, "dog"].tolist()[:2] == [0.0, 0.0]
    assert np.isnan(df.loc[2, "dog"]) and np.isnan(df.loc[0, "bird"])
    assert df.loc[1, "bird"] == 1.0
    assert df["exclude"].tolist() == [False, True, False, False, False, False, False, False]
    assert df["validation"].tolist()[:4] == [False, False, True, True]
    assert df["exclude"].dtype == bool and df["cat"].dtype == np.float64


BAD_ANNOTATIONS = [
    ((8, {"cat": 1}), "unknown row 8; rows are 0 to 7"),
    ((-1, {"cat": 1}), "unknown row -1"),
    ((1.0, {"cat": 1}), "row 1.0 is not an integer"),
    ((True, {"cat": 1}), "row True is not an integer"),
    (("2", {"cat": 1}), "row '2' is not an integer"),
    ((0, {"cow": 1}), "unknown field 'cow'; fields are ['cat', 'dog', 'bird', 'exclude', 'validation']"),
    ((0, {"filepath": "x"}), "unknown field 'filepath'"),
    ((0, {}), "non-empty mapping"),
    ((0, {"cat": 2}), "class 'cat': 2 is not allowed; a label is None or NaN"),
    ((0, {"cat": 0.5}), "class 'cat': 0.5 is not allowed"),
    ((0, {"cat": "1"}), "class 'cat': '1' is not allowed"),
    ((0, {"dog": 1, "cat": -1}), "class 'cat': -1 is not allowed"),
    ((0, {"exclude": None}), "flag 'exclude': None is not allowed; use True/False or 0/1"),
    ((0, {"validation": 2}), "flag 'validation': 2 is not allowed"),
    ((0, {"exclude": "True"}), "flag 'exclude': 'True' is not allowed"),
    ((0, {"exclude": nan}), "flag 'exclude': nan is not allowed"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ANNOTATIONS)
def test_bad_annotation_writes_nothing(store: LabelStore, args, message: str) -> None:
    store.annotate(4, {"cat": 1, "validation": True})
    df_before, counts_before = store.df.copy(), store.counts
    history_before = store.history()
    with pytest.raises(ValueError, match=re.escape(message)):
        store.annotate(*args)
    pd.testing.assert_frame_equal(store.df, df_before)
    pd.testing.assert_frame_equal(store.counts, counts_before)
    pd.testing.assert_frame_equal(store.history(), history_before)
    assert store.undo()["rows"] == [4]  # the failed call left nothing to undo


class _EventsFail:
    """A connection whose event insert fails, after the action row went in."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    def executemany(self, *args):
        raise sqlite3.OperationalError("disk I/O error")


def test_failed_journal_write_changes_nothing(store: LabelStore) -> None:
    store.annotate(2, {"dog": 1})
    df_before, counts_before = store.df.copy(), store.counts
    real = store._journal._db
    store._journal._db = _EventsFail(real)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        store.annotate(3, {"dog": 0, "validation": True})
    store._journal._db = real
    assert not real.in_transaction  # rolled back: no orphan action row
    pd.testing.assert_frame_equal(store.df, df_before)
    pd.testing.assert_frame_equal(store.counts, counts_before)
    assert store.history()["action"].tolist() == [1]
    store.annotate(3, {"dog": 0})
    assert store.undo()["rows"] == [3] and store.undo()["rows"] == [2]


@pytest.mark.parametrize("seconds", [-1, nan, np.inf, "3", True, 86_400])
def test_bad_seconds_writes_nothing(store: LabelStore, seconds) -> None:
    with pytest.raises(ValueError, match="seconds must be None or a finite number >= 0"):
        store.annotate(0, {"cat": 1}, seconds=seconds)
    assert store.history().empty and store.df["cat"].isna().all()


def test_the_store_refuses_labels_on_an_unreadable_image_whoever_calls(store: LabelStore) -> None:
    store.record_unreadable(4, "truncated PNG")
    for changes in ({"cat": 1}, {"validation": True}, {"cat": 1, "exclude": True}):
        with pytest.raises(ValueError, match=r"row 4's image cannot be read \(truncated PNG\): "
                                             "only 'exclude' can be set on it"):
            store.annotate_many([2, 4], changes)
    assert store.df.loc[[2, 4], "cat"].isna().all() and not store.df.loc[[2, 4], "validation"].any()
    assert store.history()["kind"].tolist() == []  # nothing journaled
    store.annotate(4, {"exclude": True})
    assert bool(store.df.loc[4, "exclude"])


def test_annotate_says_what_it_gave(store: LabelStore) -> None:
    first = store.annotate_many([1, 2], {"cat": 1, "dog": 0, "exclude": True})
    assert (first.rows, first.cells, first.images) == ([1, 2], 4, 2)
    again = store.annotate_many([2, 3], {"cat": 1, "dog": None})  # row 2's cat is already 1
    assert (again.rows, again.cells, again.images) == ([2, 3], 1, 1)
    flags = store.annotate(5, {"validation": True})
    assert (flags.rows, flags.cells, flags.images) == ([5], 0, 0)


def test_open_takes_the_label_file_as_outfile_and_its_old_name_path_with_a_warning(
        tmp_path: Path, base) -> None:
    with pytest.warns(DeprecationWarning, match=r"LabelStore.open\(path=\.\.\.\) is now "
                                                r"LabelStore.open\(outfile=\.\.\.\)"):
        store = LabelStore.open(path=tmp_path / "a.csv", df=base)
    assert store.path == tmp_path / "a.csv"
    store.close()
    with pytest.raises(TypeError, match="give outfile= only"):
        LabelStore.open(tmp_path / "a.csv", path=tmp_path / "b.csv")
    with pytest.raises(TypeError, match="missing its argument 'outfile'"):
        LabelStore.open(df=base)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['outfiel'\]"):
        LabelStore.open(tmp_path / "c.csv", df=base, outfiel="x")


def test_annotate_many_is_one_action(store: LabelStore) -> None:
    store.annotate_many([1, 5, 6], {"dog": 1, "validation": True}, seconds=4.0)
    assert store.df.loc[[1, 5, 6], "dog"].tolist() == [1.0, 1.0, 1.0]
    assert store.df["validation"].sum() == 3
    history = store.history()
    assert len(history) == 6 and history["action"].nunique() == 1
    assert sorted(zip(history["row"], history["field"])) == sorted(
        (r, f) for r in (1, 5, 6) for f in ("dog", "validation")
    )
    with pytest.raises(ValueError, match="repeat a row"):
        store.annotate_many([2, 2], {"dog": 1})
    with pytest.raises(ValueError, match="no rows given"):
        store.annotate_many([], {"dog": 1})
    with pytest.raises(ValueError, match="unknown row 9"):
        store.annotate_many([2, 9], {"dog": 1})
    assert store.df.loc[2, "dog"] != 1.0


def test_history_records_old_new_seconds_user_session(tmp_path: Path, base) -> None:
    path = tmp_path / "labels.csv"
    with LabelStore.open(path, df=base, user="ann") as store:
        store.annotate(3, {"cat": 1, "exclude": True}, seconds=2.5)
        store.annotate(3, {"cat": 0})
        first_session = store.history()["session"].iloc[0]
    with LabelStore.open(path, user="bob") as store:
        store.annotate(3, {"cat": None}, seconds=1.0)
        history = store.history()
    assert list(history.columns) == [
        "action", "time", "kind", "row", "field", "old", "new", "seconds", "user", "session",
        "undone",
    ]
    assert str(history["time"].dtype) == "datetime64[ns, UTC]"
    assert history["row"].tolist() == [3, 3, 3, 3]
    assert history["field"].tolist() == ["cat", "exclude", "cat", "cat"]
    np.testing.assert_array_equal(history["old"], [nan, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(history["new"], [1.0, 1.0, 0.0, nan])
    np.testing.assert_array_equal(history["seconds"], [2.5, 2.5, nan, 1.0])
    assert history["user"].tolist() == ["ann", "ann", "ann", "bob"]
    assert history["session"].tolist()[:3] == [first_session] * 3
    assert history["session"].iloc[3] != first_session
    assert history["action"].tolist() == [1, 1, 2, 3]
    assert (history["kind"] == "annotate").all() and not history["undone"].any()


# -- undo -----------------------------------------------------------------------------------


def test_undo_reverts_calls_newest_first(store: LabelStore, base) -> None:
    store.annotate(0, {"cat": 1, "dog": 0}, seconds=1)
    after_first = store.df.copy()
    store.annotate(0, {"cat": 0, "exclude": True})
    store.annotate_many([2, 3], {"bird": 1})
    first = store.undo()
    assert first["action"] == 3 and first["rows"] == [2, 3] and list(first["restored"]) == ["bird"]
    np.testing.assert_array_equal(first["restored"]["bird"], [nan, nan])
    pd.testing.assert_frame_equal(store.df.loc[[2, 3]], base.loc[[2, 3]])
    reverted = store.undo()
    assert reverted["action"] == 2 and reverted["rows"] == [0]
    assert reverted["restored"] == {"cat": [1.0], "exclude": [False]}
    pd.testing.assert_frame_equal(store.df, after_first)
    pd.testing.assert_frame_equal(store.counts, label_counts(after_first))
    store.undo()
    pd.testing.assert_frame_equal(store.df, base)
    assert store.undo() is None
    history = store.history()
    assert history.groupby("action")["undone"].first().tolist() == [True, True, True, False, False, False]
    assert history.groupby("action")["kind"].first().tolist() == ["annotate"] * 3 + ["undo"] * 3


def test_undo_survives_reopen(store: LabelStore, base) -> None:
    store.annotate(1, {"dog": 1})
    store.annotate(2, {"dog": 0})
    store.undo()
    reopened = _reopen(store)
    try:
        expected = base.copy()
        expected.loc[1, "dog"] = 1.0
        pd.testing.assert_frame_equal(reopened.df, expected)
        assert reopened.undo()["action"] == 1  # action 2 was already undone
        pd.testing.assert_frame_equal(reopened.df, base)
        assert reopened.undo() is None
    finally:
        reopened.close()


def test_class_edit_clears_undo(store: LabelStore) -> None:
    store.annotate(1, {"dog": 1})
    store.add_class("fish")
    assert store.undo() is None
    store.annotate(2, {"fish": 1})
    assert store.undo()["rows"] == [2]


# -- class edits on the store: same as the pure functions, and replayed ---------------------------


def _labelled_store(tmp_path: Path) -> tuple[LabelStore, pd.DataFrame]:
    df = prep_label_dataframe([f"f{i}" for i in range(6)], ["cat", "dog", "bird"])
    store = LabelStore.open(tmp_path / "labels.parquet", df=df)
    for row, changes in [
        (0, {"cat": 1, "bird": 0}),
        (1, {"cat": 0, "dog": 0}),
        (2, {"dog": 1, "exclude": True}),
        (3, {"cat": 1, "dog": 1, "bird": 1}),
        (4, {"cat": 0, "bird": 1, "validation": True}),
        (5, {"dog": 0, "bird": 0}),
    ]:
        store.annotate(row, changes)
    return store, store.df.copy()


@pytest.mark.parametrize(
    ("edit", "pure", "expected_classes"),
    [
        (lambda s: s.add_class("fish"), None, {
            "cat": [1, 0, nan, 1, 0, nan], "dog": [nan, 0, 1, 1, nan, 0],
            "bird": [0, nan, nan, 1, 1, 0], "fish": [nan] * 6}),
        (lambda s: s.rename_class("dog", "hound"), lambda d: rename_class(d, "dog", "hound"), {
            "cat": [1, 0, nan, 1, 0, nan], "hound": [nan, 0, 1, 1, nan, 0],
            "bird": [0, nan, nan, 1, 1, 0]}),
        (lambda s: s.remove_class("cat"), lambda d: remove_class(d, "cat"), {
            "dog": [nan, 0, 1, 1, nan, 0], "bird": [0, nan, nan, 1, 1, 0]}),
        (lambda s: s.merge_classes("cat", "dog"), lambda d: merge_classes(d, "cat", "dog"), {
            "cat": [1, 0, 1, 1, nan, nan], "bird": [0, nan, nan, 1, 1, 0]}),
        (lambda s: s.merge_classes("dog", "bird", into="pet"),
         lambda d: merge_classes(d, "dog", "bird", into="pet"), {
            "cat": [1, 0, nan, 1, 0, nan], "pet": [nan, nan, 1, 1, 1, 0]}),
    ],
)
def test_store_class_edits_keep_labels_on_rows(tmp_path: Path, edit, pure, expected_classes) -> None:
    store, before = _labelled_store(tmp_path)
    expected = before[["filepath", "exclude", "validation"]].copy()
    for name, values in expected_classes.items():
        expected[name] = np.array(values, dtype=float)
    df = store.df
    edit(store)
    assert store.df is df
    pd.testing.assert_frame_equal(store.df, expected)
    if pure is not None:
        pd.testing.assert_frame_equal(pure(before), expected)
    pd.testing.assert_frame_equal(store.counts, label_counts(expected))
    assert store.classes == list(expected_classes)
    reopened = LabelStore.open(store.path)  # replay, without compaction
    pd.testing.assert_frame_equal(reopened.df, expected)
    reopened.close(export=False)
    store.close(export=False)  # compacts
    with LabelStore.open(store.path) as compacted:
        pd.testing.assert_frame_equal(compacted.df, expected)
        pd.testing.assert_frame_equal(compacted.counts, label_counts(expected))


def test_removed_and_merged_values_stay_in_history(tmp_path: Path) -> None:
    store, _ = _labelled_store(tmp_path)
    store.merge_classes("cat", "dog", into="animal")
    store.remove_class("bird")
    history = store.history()
    merge = history[history["kind"] == "merge_classes"]
    assert merge["row"].iloc[0] == -1 and merge["field"].iloc[0] == "cat + dog -> animal"
    cells = merge.iloc[1:]
    dropped_cat = cells[cells["field"] == "cat"]
    assert dropped_cat["row"].tolist() == [0, 1, 3, 4]
    assert dropped_cat["old"].tolist() == [1.0, 0.0, 1.0, 0.0] and dropped_cat["new"].isna().all()
    animal = cells[cells["field"] == "animal"]
    assert animal["row"].tolist() == [0, 1, 2, 3] and animal["new"].tolist() == [1, 0, 1, 1]
    remove = history[history["kind"] == "remove_class"]
    assert remove["field"].tolist() == ["bird"] * 5
    assert remove["row"].tolist() == [-1, 0, 3, 4, 5]
    assert remove["old"].tolist()[1:] == [0.0, 1.0, 1.0, 0.0]
    store.close(export=False)


def test_store_class_edit_errors_write_nothing(store: LabelStore) -> None:
    for edit, message in [
        (lambda: store.add_class("cat"), "class 'cat' already exists"),
        (lambda: store.rename_class("cow", "ox"), "unknown class 'cow'"),
        (lambda: store.remove_class("validation"), "unknown class 'validation'"),
        (lambda: store.merge_classes("cat", "cat"), "with itself"),
        (lambda: store.merge_classes("cat", "dog", into="exclude"), "'exclude' is reserved"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            edit()
    assert store.history().empty and store.classes == ["cat", "dog", "bird"]


# -- concurrency -----------------------------------------------------------------------------


def test_eight_threads_lose_nothing(tmp_path: Path) -> None:
    n_threads, calls = 8, 60
    df = prep_label_dataframe([f"f{i}" for i in range(n_threads * calls)], ["a", "b"])
    store = LabelStore.open(tmp_path / "labels.csv", df=df)
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        barrier.wait()
        try:
            for i in range(calls):
                row = t * calls + i
                store.annotate(row, {"a": i % 2, "b": t % 2, "validation": i % 3 == 0}, seconds=0.1)
        except BaseException as err:  # reported below; a thread's error is otherwise lost
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    expected = df.copy()
    rows = np.arange(n_threads * calls)
    expected["a"] = (rows % calls % 2).astype(float)
    expected["b"] = (rows // calls % 2).astype(float)
    expected["validation"] = rows % calls % 3 == 0
    history = store.history()
    assert len(history) == 3 * n_threads * calls
    assert history["action"].nunique() == n_threads * calls
    pd.testing.assert_frame_equal(store.df, expected)
    pd.testing.assert_frame_equal(store.counts, label_counts(expected))
    reopened = _reopen(store)
    pd.testing.assert_frame_equal(reopened.df, expected)
    reopened.close(export=False)


# -- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trip(tmp_path: Path, base, suffix: str) -> None:
    path = tmp_path / f"labels{suffix}"
    with LabelStore.open(path, df=base) as store:
        store.annotate(0, {"cat": 1, "dog": 0})
        store.annotate(7, {"bird": 1, "exclude": True, "validation": True})
        assert store.export() == path
        pd.testing.assert_frame_equal(load_labels(path), store.df)
        other = tmp_path / ("copy.parquet" if suffix == ".csv" else "copy.csv")
        assert store.export(str(other)) == other
        pd.testing.assert_frame_equal(load_labels(other), store.df)
        store.annotate(1, {"cat": 0})
        expected = store.df.copy()
    pd.testing.assert_frame_equal(load_labels(path), expected)  # close() exports


@pytest.mark.parametrize(("suffix", "writer"), [(".csv", "to_csv"), (".parquet", "to_parquet")])
def test_failed_export_leaves_old_file_intact(
    tmp_path: Path, base, monkeypatch: pytest.MonkeyPatch, suffix: str, writer: str
) -> None:
    path = tmp_path / f"labels{suffix}"
    store = LabelStore.open(path, df=base)
    store.annotate(0, {"cat": 1})
    store.export()
    old_bytes = path.read_bytes()
    store.annotate(1, {"cat": 1})
    real = getattr(pd.DataFrame, writer)

    def half_then_fail(self, handle, *args, **kwargs):
        real(self.iloc[:2], handle, *args, **kwargs)  # part of the table reaches the disk
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, writer, half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        store.export()
    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("labels" + suffix + ".journal")) == [path.name]
    monkeypatch.undo()
    store.export()
    pd.testing.assert_frame_equal(load_labels(path), store.df)
    store.close()


# -- compaction and lifecycle ------------------------------------------------------------------


def test_open_compacts_long_journals(tmp_path: Path, base, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "COMPACT_AFTER", 5)
    path = tmp_path / "labels.csv"
    store = LabelStore.open(path, df=base)
    for row in range(8):
        store.annotate(row, {"dog": row % 2})
    expected = store.df.copy()
    store._journal.close()  # as if the process died: no close(), no compaction
    with LabelStore.open(path) as reopened:
        assert reopened._pending == 0  # folded into the snapshot on open
        upto = reopened._journal._db.execute("SELECT upto_action FROM snapshot").fetchone()[0]
        assert upto == 8
        pd.testing.assert_frame_equal(reopened.df, expected)
        assert len(reopened.history()) == 8  # compaction keeps the history


def test_closed_store_refuses_work(store: LabelStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError, match="is closed"):
        store.annotate(0, {"cat": 1})
    with pytest.raises(ValueError, match="is closed"):
        store.history()
    assert os.path.exists(store.path)
