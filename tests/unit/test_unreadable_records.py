"""Unreadable images are recorded in the label journal with their cause (FEATURES I1)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from patchwork_widget.images.guard import ImageReadError
from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.session import Session

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres, wait_until  # noqa: E402,F401  (the fixture)


def _store(tmp_path, paths, **kwargs) -> LabelStore:
    return LabelStore.open(tmp_path / "labels.csv", prep_label_dataframe(paths, ["cat"]), **kwargs)


def _unreadable_actions(store: LabelStore) -> pd.DataFrame:
    actions, _ = store._journal.read_history()
    return actions[actions["kind"] == "unreadable"]


def test_records_survive_reopening_and_compaction(tmp_path, image_paths):
    store = _store(tmp_path, image_paths)
    store.record_unreadable(3, "not an image: text")
    store.record_unreadable(7, "truncated PNG")
    store.record_unreadable(3, "not an image: text")  # already recorded: nothing written
    store.annotate(0, {"cat": 1})
    assert len(_unreadable_actions(store)) == 2
    store.compact()
    store.record_unreadable(7, None)  # it reads again
    store.close()

    again = _store(tmp_path, image_paths)
    assert again.unreadable == {3: "not an image: text"}
    assert again.df.at[0, "cat"] == 1.0  # the records change no label
    again.close()


def test_a_read_only_store_keeps_records_in_memory(tmp_path, image_paths):
    _store(tmp_path, image_paths).close()
    reader = _store(tmp_path, image_paths, read_only=True)
    reader.record_unreadable(2, "empty file")
    assert reader.unreadable == {2: "empty file"}
    reader.close()
    assert _store(tmp_path, image_paths).unreadable == {}


def test_bad_arguments_are_refused_naming_them(tmp_path, image_paths):
    store = _store(tmp_path, image_paths)
    with pytest.raises(ValueError, match="unknown row 400"):
        store.record_unreadable(400, "x")
    with pytest.raises(TypeError, match="cause must be a str or None"):
        store.record_unreadable(1, 5)
    assert store.unreadable == {}
    store.close()


def test_a_new_session_knows_the_unreadable_rows_before_reading_any_image(tmp_path, image_paths):
    broken = [4, 9]
    for row in broken:
        with open(image_paths[row], "wb") as f:
            f.write(b"not a png at all")
    first = Session(_store(tmp_path, image_paths))
    causes = {}
    for row in range(len(image_paths)):
        try:
            first.thumbnail(row)
        except ImageReadError as err:
            causes[row] = err.cause
    assert sorted(causes) == broken
    first.close()

    second = Session(_store(tmp_path, image_paths))  # a restarted kernel: nothing read yet
    table = second.unreadable
    assert table["row"].tolist() == broken
    assert table["cause"].tolist() == [causes[r] for r in broken]
    assert sorted(second.sample({"kind": "unreadable"}, count=10)) == broken
    with pytest.raises(ValueError, match="only 'exclude' can be set"):
        second.annotate(4, {"cat": 1})

    Path(image_paths[4]).write_bytes(Path(image_paths[0]).read_bytes())  # repaired
    second.thumbnail(4)
    assert second.unreadable["row"].tolist() == [9]
    second.close()
    assert Session(_store(tmp_path, image_paths)).unreadable["row"].tolist() == [9]


def test_team_stores_share_the_records(tmp_path, postgres):  # noqa: F811
    base = prep_label_dataframe([f"img{i}.png" for i in range(10)], ["cat"])
    project = f"unreadable-{uuid.uuid4().hex[:8]}"

    def open_store(annotator: str) -> LabelStore:
        return LabelStore.open(tmp_path / f"{annotator}.csv", base, journal=postgres.url,
                               project=project, annotator=annotator, autosave=None)

    ana, bob = open_store("ana"), open_store("bob")
    ana.record_unreadable(5, "truncated JPEG")
    assert wait_until(lambda: bob.unreadable == {5: "truncated JPEG"})  # seen live
    ana.close()
    bob.close()
    carl = open_store("carl")
    assert carl.unreadable == {5: "truncated JPEG"}
    carl.close()
