"""What every label journal stores, whatever its backend: action kinds, cell events, the
snapshot encoding and the shape of the history."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from .schema import FILEPATH, FLAGS, class_columns

CLASS_EDITS = ("add_class", "rename_class", "remove_class", "merge_classes")

#: The action kind recording that a row's image cannot be read (or reads again).
UNREADABLE = "unreadable"

#: One changed cell: (row, field, old, new), with None for NaN.
Event = tuple[int, str, float | None, float | None]


def encode_snapshot(df: pd.DataFrame) -> tuple[int, str, bytes, bytes, bytes]:
    """Encode a label table as (nrows, classes JSON, paths, flags, labels) blobs (the team
    journal's snapshot, and SQLite journals of format 1; format 2 is :func:`encode_table`).

    Paths are NUL-separated UTF-8, flags uint8, labels int8 with -1 for NaN; the paths are
    joined from their Arrow buffers, without a Python string per path.
    """
    classes = class_columns(df)
    paths = _arrow_paths(df)
    offsets = np.frombuffer(paths.buffers()[1], dtype=np.int64)[
        paths.offset:paths.offset + len(paths) + 1]
    data = np.frombuffer(paths.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    joined = np.insert(data, offsets[1:-1] - offsets[0], 0).tobytes()
    flags = np.stack([df[f].to_numpy(dtype=bool) for f in FLAGS]).astype(np.uint8)
    labels = np.full((len(classes), len(df)), -1, dtype=np.int8)
    for i, name in enumerate(classes):
        values = df[name].to_numpy()
        labels[i][values == 0] = 0
        labels[i][values == 1] = 1
    return len(df), json.dumps(classes), joined, flags.tobytes(), labels.tobytes()


def decode_snapshot(
    nrows: int, classes_json: str, paths: bytes, flags: bytes, labels: bytes
) -> pd.DataFrame:
    """Inverse of :func:`encode_snapshot` (the paths split by NumPy into an Arrow array)."""
    classes = json.loads(classes_json)
    raw = np.frombuffer(paths, dtype=np.uint8)
    separators = np.flatnonzero(raw == 0)
    if nrows and len(separators) != nrows - 1:
        raise ValueError(f"the snapshot holds {len(separators) + 1} paths, not {nrows}")
    offsets = np.zeros(nrows + 1, dtype=np.int64)
    if nrows:
        offsets[1:-1] = separators - np.arange(nrows - 1)
        offsets[-1] = len(raw) - (nrows - 1)
    data = np.delete(raw, separators)
    filepaths = pa.LargeStringArray.from_buffers(nrows, pa.py_buffer(offsets),
                                                 pa.py_buffer(data))
    filepaths.validate(full=True)  # UTF-8
    flag_arr = np.frombuffer(flags, dtype=np.uint8).reshape(len(FLAGS), nrows)
    label_arr = np.frombuffer(labels, dtype=np.int8).reshape(len(classes), nrows)
    columns: dict[str, pa.Array] = {FILEPATH: filepaths}
    for i, flag in enumerate(FLAGS):
        columns[flag] = pa.array(flag_arr[i].astype(bool))
    for i, name in enumerate(classes):
        columns[name] = pa.array(label_arr[i], mask=label_arr[i] < 0)
    return _frame(pa.table(columns), classes)


def _arrow_paths(df: pd.DataFrame) -> pa.LargeStringArray:
    """The ``filepath`` column as one Arrow large_string array (no copy when pandas holds
    it as Arrow strings already)."""
    paths = pa.array(df[FILEPATH].array, type=pa.large_string())
    return paths.combine_chunks() if isinstance(paths, pa.ChunkedArray) else paths


def _frame(table: pa.Table, classes: list[str]) -> pd.DataFrame:
    """A label table from its Arrow form (columns filepath, flags, int8 classes with nulls):
    paths kept as Arrow strings, flags bool, classes float64 with NaN, one block each."""
    df = table.to_pandas(split_blocks=True, self_destruct=True)
    if not isinstance(df[FILEPATH].dtype, pd.StringDtype):  # pandas without str inference
        df[FILEPATH] = df[FILEPATH].astype("str")
    # int8 without nulls comes back as int8, an empty table's columns as object
    df = df.astype({**{flag: bool for flag in FLAGS}, **{name: float for name in classes}})
    return df.set_axis(pd.RangeIndex(len(df)), axis=0)


def encode_table(df: pd.DataFrame) -> tuple[int, str, pa.Table]:
    """A label table as (nrows, classes JSON, Arrow table) for a snapshot (format 2).

    The Arrow table holds ``filepath`` (large_string), the flags (bool) and one int8 column
    per class (0 or 1, null for unlabeled), so any Arrow reader can read a journal's
    snapshot. Paths held by pandas as Arrow strings are not copied. Store it as an Arrow
    IPC stream with :func:`stream_size` and :func:`write_stream`.
    """
    classes = class_columns(df)
    columns: dict[str, pa.Array] = {FILEPATH: _arrow_paths(df)}
    for flag in FLAGS:
        columns[flag] = pa.array(df[flag].to_numpy(dtype=bool))
    for name in classes:
        values = df[name].to_numpy(dtype=float)
        missing = np.isnan(values)
        columns[name] = pa.array(np.where(missing, 0, values).astype(np.int8), mask=missing)
    return len(df), json.dumps(classes), pa.table(columns)


def stream_size(table: pa.Table) -> int:
    """The size in bytes of ``table`` as an Arrow IPC stream (counted, not written)."""
    counter = pa.MockOutputStream()
    write_stream(table, counter)
    return counter.size()


def write_stream(table: pa.Table, sink: Any) -> None:
    """Write ``table`` as an Arrow IPC stream to ``sink`` (an Arrow output stream, or a
    writable binary file object)."""
    if not isinstance(sink, pa.NativeFile):
        sink = pa.PythonFile(sink, mode="w")
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def decode_table(nrows: int, classes_json: str, stream: bytes) -> pd.DataFrame:
    """The table of a snapshot: ``stream`` is :func:`encode_table`'s Arrow table as an IPC
    stream (:func:`write_stream`).

    The paths stay in the stream's buffer (pandas' Arrow-backed ``str`` column, no copy);
    flags and classes become writable bool and float64 arrays (NaN for unlabeled), one
    block per column (no consolidation copy).
    """
    classes = json.loads(classes_json)
    table = pa.ipc.open_stream(pa.py_buffer(stream)).read_all()
    if table.num_rows != nrows or table.column_names != [FILEPATH, *FLAGS, *classes]:
        raise ValueError(
            f"the snapshot's table ({table.num_rows} rows, columns {table.column_names}) "
            f"does not match its record ({nrows} rows, classes {classes})"
        )
    return _frame(table, classes)


HISTORY_COLUMNS = [
    "action", "time", "kind", "row", "field", "old", "new", "seconds", "user", "session",
    "undone",
]


def _edit_text(kind: str, detail: dict) -> str:
    if kind == "rename_class":
        return f"{detail['old']} -> {detail['new']}"
    if kind == "merge_classes":
        return f"{detail['a']} + {detail['b']} -> {detail['into']}"
    return detail["name"]


def history_frame(actions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Shape :meth:`Journal.read_history` output as one row per cell event.

    Class edits add one row each with ``row`` -1 and a description in ``field``
    (``"cat"``, ``"cat -> feline"``, ``"cat + kitten -> feline"``), placed before the
    cell events that record the values they dropped or changed.
    """
    cells = events.merge(actions, on="action", how="left")
    edits = actions[actions["kind"].isin(CLASS_EDITS)].copy()
    edits["field"] = [
        _edit_text(kind, json.loads(detail)) for kind, detail in zip(edits["kind"], edits["detail"])
    ]
    edits["row"], edits["seq"], edits["old"], edits["new"] = -1, -1, np.nan, np.nan
    out = pd.concat([edits, cells], ignore_index=True).sort_values(
        ["action", "seq"], kind="stable", ignore_index=True
    )
    out["time"] = pd.to_datetime(out["time"].astype(float), unit="s", utc=True)
    out["undone"] = out["action"].isin(actions["undoes"].dropna().astype("int64"))
    out = out.astype({"action": "int64", "row": "int64", "old": float, "new": float})
    out["seconds"] = out["seconds"].astype(float)
    return out[HISTORY_COLUMNS]



class Change(NamedTuple):
    """One journaled action as another store applies it: ``rows``, ``fields`` and ``new``
    are its cell events in order (empty for class edits, whose ``detail`` says it all)."""

    id: int
    kind: str
    detail: str | None
    user: str
    rows: list[int]
    fields: list[str]
    new: list[float | None]


class Annotated(NamedTuple):
    """What one annotate call wrote: its ``rows``, and of the class values it set,
    ``cells`` (values given where the cell was unlabeled or held another value) and
    ``images`` (rows with at least one such value)."""

    rows: list[int]
    cells: int
    images: int

    @classmethod
    def of(cls, rows: np.ndarray, events: list[Event], classes: list[str]) -> Annotated:
        """The summary of an annotate call's cell ``events`` over ``rows``."""
        given = [row for row, field, old, new in events
                 if field in classes and new is not None and new != old]
        return cls(rows.tolist(), len(given), len(set(given)))


def changes_from_frames(actions: pd.DataFrame, events: pd.DataFrame) -> list[Change]:
    """:class:`Change` per action from a journal's ``pending`` frames."""
    cells = events[~events["action"].isin(actions.loc[actions["kind"].isin(CLASS_EDITS), "id"])]
    by_action = {a: group for a, group in cells.groupby("action", sort=False)}
    empty = cells.iloc[:0]
    return [
        Change(
            int(a), kind, detail, user,
            by_action.get(a, empty)["row"].tolist(),
            by_action.get(a, empty)["field"].tolist(),
            by_action.get(a, empty)["new"].tolist(),
        )
        for a, kind, detail, user in zip(
            actions["id"], actions["kind"], actions["detail"], actions["user"]
        )
    ]


def fold_unreadable(rows: dict[int, str], details: list[dict]) -> dict[int, str]:
    """Apply :data:`UNREADABLE` action details (oldest first) to ``rows`` (row -> cause)."""
    for detail in details:
        if detail["cause"] is None:
            rows.pop(int(detail["row"]), None)
        else:
            rows[int(detail["row"])] = detail["cause"]
    return rows
