"""FEATURES L4: the journal's snapshot format (Arrow, format 2) and journals of format 1.

A format-1 journal is built here as version 1 of the library wrote it (the SQL below is its
schema), so that the migration is tested against the layout found on users' disks.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from patchwork_widget.labels import LabelStore, journal_path, prep_label_dataframe
from patchwork_widget.labels.journal import FORMAT_VERSION
from patchwork_widget.labels.records import (
    decode_snapshot,
    decode_table,
    encode_snapshot,
    encode_table,
    stream_size,
    write_stream,
)

_FORMAT_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto_action INTEGER NOT NULL,
    nrows INTEGER NOT NULL,
    classes TEXT NOT NULL,
    filepath BLOB NOT NULL,
    flags BLOB NOT NULL,
    labels BLOB NOT NULL
);
CREATE TABLE actions (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL, detail TEXT,
    seconds REAL, undoes INTEGER, user TEXT NOT NULL, session TEXT NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, action INTEGER NOT NULL REFERENCES actions (id),
    row INTEGER NOT NULL, field TEXT NOT NULL, old REAL, new REAL
);
CREATE INDEX events_by_action ON events (action);
"""


def _table() -> pd.DataFrame:
    df = prep_label_dataframe([f"img{i}.png" for i in range(6)] + ["=cmd|' /C calc'!A0"],
                              ["cat", "dog"])
    df.loc[[0, 3], "cat"] = 1.0
    df.loc[[1], "dog"] = 0.0
    df.loc[2, "exclude"] = True
    df.loc[4, "validation"] = True
    return df


def _format_1_journal(path: Path, df: pd.DataFrame) -> None:
    """A format-1 journal of ``df`` with one pending annotate action (row 5: dog = 1)."""
    db = sqlite3.connect(journal_path(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_FORMAT_1)
    db.execute("INSERT INTO meta VALUES ('format', '1')")
    db.execute("INSERT INTO snapshot VALUES (1, 0, ?, ?, ?, ?, ?)", encode_snapshot(df))
    db.execute("INSERT INTO actions VALUES (1, ?, 'annotate', NULL, 2.0, NULL, 'ana', 's1')",
               (time.time(),))
    db.execute("INSERT INTO events (action, row, field, old, new) VALUES (1, 5, 'dog', NULL, 1)")
    db.close()


def _format(path: Path) -> str:
    with sqlite3.connect(journal_path(path)) as db:
        return db.execute("SELECT value FROM meta WHERE key='format'").fetchone()[0]


def test_a_new_journal_holds_its_snapshot_as_arrow(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    df = _table()
    LabelStore.open(path, df=df, autosave=None).close(export=False)
    assert _format(path) == FORMAT_VERSION == "2"
    with sqlite3.connect(journal_path(path)) as db:
        stream = db.execute("SELECT arrow FROM snapshot").fetchone()[0]
    table = pa.ipc.open_stream(stream).read_all()  # any Arrow reader can read it
    assert table.column_names == ["filepath", "exclude", "validation", "cat", "dog"]
    assert table.column("filepath").to_pylist() == df["filepath"].tolist()
    assert table.column("cat").to_pylist() == [1, None, None, 1, None, None, None]
    assert table.column("dog").to_pylist() == [None, 0, None, None, None, None, None]


@pytest.mark.parametrize("rows, classes", [(0, ["cat"]), (3, []), (0, []), (5, ["a", "b"])])
def test_the_arrow_snapshot_gives_back_the_table(rows: int, classes: list[str]) -> None:
    df = prep_label_dataframe([f"p{i}é漢" for i in range(rows)], classes)
    if rows and classes:
        df.loc[[1, 4], classes[0]] = [1.0, 0.0]
        df.loc[2, "exclude"] = True
    out = decode_table(*_stream(df))
    pd.testing.assert_frame_equal(out, df)
    pd.testing.assert_frame_equal(decode_snapshot(*encode_snapshot(df)), df)  # format 1 too
    if rows and classes:  # the live table changes its columns in place
        out.iat[0, 3] = 1.0
        out.iat[0, 1] = True
        assert df.iat[0, 3] != 1.0 and not df.iat[0, 1]


def _stream(df: pd.DataFrame) -> tuple[int, str, bytes]:
    nrows, classes, table = encode_table(df)
    sink = pa.BufferOutputStream()
    write_stream(table, sink)
    stream = sink.getvalue().to_pybytes()
    assert len(stream) == stream_size(table)
    return nrows, classes, stream


def test_a_snapshot_that_does_not_match_its_record_is_refused() -> None:
    nrows, classes, stream = _stream(_table())
    with pytest.raises(ValueError, match="does not match its record"):
        decode_table(nrows + 1, classes, stream)


def test_a_writer_migrates_a_format_1_journal(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    df = _table()
    _format_1_journal(path, df)
    expected = df.copy()
    expected.loc[5, "dog"] = 1.0

    with LabelStore.open(path, read_only=True) as reader:  # a reader changes nothing
        pd.testing.assert_frame_equal(reader.df, expected)
    assert _format(path) == "1"

    with LabelStore.open(path, autosave=None) as store:
        assert _format(path) == "2"
        pd.testing.assert_frame_equal(store.df, expected)
        history = store.history()  # the actions are untouched
        assert history[["action", "row", "field", "new", "seconds", "user"]].values.tolist() \
            == [[1, 5, "dog", 1.0, 2.0, "ana"]]
        store.annotate(6, {"cat": 0})
        expected.loc[6, "cat"] = 0.0
    with LabelStore.open(path, autosave=None) as again:
        pd.testing.assert_frame_equal(again.df, expected)
        assert len(again.history()) == 2


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    LabelStore.open(path, df=_table(), autosave=None).close(export=False)
    with sqlite3.connect(journal_path(path)) as db:
        db.execute("UPDATE meta SET value='9' WHERE key='format'")
    with pytest.raises(ValueError, match=r"journal format '9' is not supported; "
                                         r"this version reads formats \['1', '2'\]"):
        LabelStore.open(path)
