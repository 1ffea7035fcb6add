"""Subprocess for test_labels_durability: annotate a store until killed.

Usage: python label_store_worker.py EXPORT_PATH SEED N_ROWS

Prints ``ready`` once the store is open, then ``ack I`` after operation I returned
(so its change is durable). The operations are a pure function of the seed, so the test
can rebuild the expected table with :func:`apply_reference`.

Also, for test_labels_writers:

- ``python label_store_worker.py hold EXPORT_PATH N_ROWS ROW...``: annotate each ROW
  (``cat`` = 1), printing ``ack ROW``, then ``holding`` and sleep until killed.
- ``python label_store_worker.py race GO_FILE NAME ROW EXPORT_PATH...``: wait for GO_FILE,
  then for each export path open the store (waiting for other writers), annotate ROW,
  close and print ``ok PATH``, or ``error PATH TYPE MESSAGE``.

And for test_labels_kill:

- ``python label_store_worker.py chaos EXPORT_PATH SEED N_ROWS``: print ``imported``, open
  the store (autosave on every change), then forever print ``try <op as JSON>``, run it and
  print ``ack``. Ops (:func:`chaos_op`): annotations, class edits, export, compaction, and
  close-and-reopen.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from patchwork_widget.labels import (
    LabelStore,
    add_class,
    prep_label_dataframe,
    remove_class,
    rename_class,
)

CLASSES = ["cat", "dog", "bird"]
LABELS = [None, 0, 1, 0.0, 1.0, True, False]


def start_table(n_rows: int) -> pd.DataFrame:
    """The table the worker starts from."""
    return prep_label_dataframe([f"img_{i:05d}.png" for i in range(n_rows)], CLASSES)


def operations(seed: int, n_rows: int) -> Iterator[tuple]:
    """Endless operations: mostly annotations, with a class edit now and then."""
    rng = random.Random(seed)
    classes = list(CLASSES)
    i = 0
    while True:
        i += 1
        if i % 60 == 0:
            name = f"extra{i}"
            classes.append(name)
            yield ("add_class", name)
        elif i % 90 == 0:
            k = rng.randrange(len(classes))
            new = f"{classes[k]}_r{i}"
            yield ("rename_class", classes[k], new)
            classes[k] = new
        else:
            fields = rng.sample(classes + ["exclude", "validation"], rng.randint(1, 3))
            changes = {
                f: rng.choice([True, False, 0, 1]) if f in ("exclude", "validation")
                else rng.choice(LABELS)
                for f in fields
            }
            yield ("annotate", rng.randrange(n_rows), changes)


def apply_reference(df: pd.DataFrame, op: tuple | list) -> pd.DataFrame:
    """Apply one operation to a plain DataFrame, independently of the store."""
    kind = op[0]
    if kind == "add_class":
        return add_class(df, op[1])
    if kind == "rename_class":
        return rename_class(df, op[1], op[2])
    if kind == "remove_class":
        return remove_class(df, op[1])
    if kind in ("export", "compact", "reopen"):
        return df
    df = df.copy()
    rows = [op[1]] if kind == "annotate" else list(op[1])
    for field, value in op[2].items():
        if field in ("exclude", "validation"):
            df.loc[rows, field] = bool(value)
        else:
            df.loc[rows, field] = float("nan") if value is None else float(value)
    return df


def _changes(rng: random.Random, classes: list[str]) -> dict:
    fields = rng.sample(classes + ["exclude", "validation"], rng.randint(1, 3))
    return {
        f: rng.choice([True, False, 0, 1]) if f in ("exclude", "validation")
        else rng.choice(LABELS)
        for f in fields
    }


def chaos_op(rng: random.Random, classes: list[str], n_rows: int, tag: str) -> list:
    """One random operation on a store with ``classes``, as a JSON-ready list; ``tag``
    makes new class names unique."""
    pick = rng.random()
    if pick < 0.60:
        return ["annotate", rng.randrange(n_rows), _changes(rng, classes)]
    if pick < 0.75:
        return ["annotate_many", rng.sample(range(n_rows), rng.randint(2, 50)),
                _changes(rng, classes)]
    if pick < 0.79:
        return ["add_class", f"new{tag}"]
    if pick < 0.83:
        return ["rename_class", rng.choice(classes), f"renamed{tag}"]
    if pick < 0.86 and len(classes) > 1:
        return ["remove_class", rng.choice(classes)]
    if pick < 0.91:
        return ["export"]
    if pick < 0.96:
        return ["compact"]
    return ["reopen"]


def chaos(path: str, seed: int, n_rows: int) -> None:
    print("imported", flush=True)
    store = LabelStore.open(path, df=start_table(n_rows), autosave=0.0)
    rng = random.Random(seed)
    for i in range(10**9):
        op = chaos_op(rng, store.classes, n_rows, f"{seed}_{i}")
        print("try " + json.dumps(op), flush=True)
        if op[0] == "reopen":
            store.close()
            store = LabelStore.open(path, autosave=0.0)
        elif op[0] in ("export", "compact"):
            getattr(store, op[0])()
        else:
            getattr(store, op[0])(*op[1:])
        print("ack", flush=True)


def main(path: str, seed: int, n_rows: int) -> None:
    store = LabelStore.open(path, df=start_table(n_rows))
    print("ready", flush=True)
    for i, op in enumerate(operations(seed, n_rows)):
        if op[0] == "annotate":
            store.annotate(op[1], op[2], seconds=0.5)
        else:
            getattr(store, op[0])(*op[1:])
        print(f"ack {i}", flush=True)


def hold(path: str, n_rows: int, rows: list[int]) -> None:
    store = LabelStore.open(path, df=start_table(n_rows), autosave=None)
    for row in rows:
        store.annotate(row, {"cat": 1})
        print(f"ack {row}", flush=True)
    print("holding", flush=True)
    while True:
        time.sleep(1)


def race(go: str, name: str, row: int, paths: list[str]) -> None:
    while not Path(go).exists():
        time.sleep(0.001)
    for path in paths:
        try:
            store = LabelStore.open(path, df=start_table(8), user=name, wait=30, autosave=None)
            store.annotate(row, {"dog": 1})
            store.close()
        except Exception as error:  # reported to the test, which fails on it
            print(f"error {path} {type(error).__name__} {error}", flush=True)
        else:
            print(f"ok {path}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), [int(r) for r in sys.argv[4:]])
    elif sys.argv[1] == "chaos":
        chaos(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "race":
        race(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    else:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
