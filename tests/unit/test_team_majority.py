"""LabelStore.open(resolution="majority") on a real PostgreSQL project: the table shows the
value most annotators hold, the journal keeps every value (issue 16)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres, wait_until  # noqa: E402,F401  (the fixture)


def test_majority_shows_what_most_annotators_hold(tmp_path, postgres):  # noqa: F811
    base = prep_label_dataframe([f"img{i}.png" for i in range(6)], ["cat", "dog"])
    project = f"vote-{uuid.uuid4().hex[:8]}"

    def open_store(annotator: str, resolution: str) -> LabelStore:
        return LabelStore.open(tmp_path / f"{annotator}-{resolution}.csv", base,
                               journal=postgres.url, project=project, annotator=annotator,
                               autosave=None, resolution=resolution)

    ana, bob = open_store("ana", "majority"), open_store("bob", "latest")
    carl = open_store("carl", "majority")
    try:
        ana.annotate(0, {"cat": 1})
        bob.annotate(0, {"cat": 1})
        carl.annotate(0, {"cat": 0})  # the newest value, but one against two
        assert carl.df.at[0, "cat"] == 1.0  # carl's own commit caught up with the others first
        carl.annotate(1, {"dog": 0})
        bob.annotate(1, {"dog": 1})  # one against one: the latest shows
        assert wait_until(lambda: carl.df.at[1, "dog"] == 1.0 and ana.df.at[1, "dog"] == 1.0)
        assert wait_until(lambda: bob.df.at[0, "cat"] == 0.0)  # latest wins on a "latest" store
        assert ana.df.at[0, "cat"] == 1.0  # majority, from other stores' actions

        carl.undo()  # an undo is the newest action on its cells; row 0 keeps its majority
        assert np.isnan(carl.df.at[1, "dog"]) and carl.df.at[0, "cat"] == 1.0
        carl.export()
        exported = carl.path.read_text().splitlines()
        assert exported[0].split(",")[-2:] == ["cat", "dog"]
        assert exported[1].split(",")[-2:] == ["1.0", ""]
        assert exported[2].split(",")[-2:] == ["", ""]  # the shown table is exported
    finally:
        for store in (ana, bob, carl):
            store.close()

    again = open_store("dora", "majority")  # a new process: the same table from the journal
    assert again.df.at[0, "cat"] == 1.0
    again.close()
    latest = open_store("erin", "latest")
    assert latest.df.at[0, "cat"] == 0.0  # the journal itself keeps latest-wins
    latest.close()


def test_an_unknown_rule_is_refused_by_name(tmp_path):
    base = prep_label_dataframe(["a.png"], ["cat"])
    with pytest.raises(ValueError, match="resolution must be one of 'latest', 'majority'"):
        LabelStore.open(tmp_path / "l.csv", base, resolution="vote")
    assert not (tmp_path / "l.csv.journal.sqlite").exists()
