"""Resolution of a cell several annotators labeled (issue 16): "latest" and "majority",
against a hand-computed reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import label_counts, prep_label_dataframe
from patchwork_widget.labels.records import Change
from patchwork_widget.labels.resolution import Resolution
from patchwork_widget.labels.table import LiveTable

NAN = math.nan


def annotate(id_, user, rows, fields, new):
    return Change(id_, "annotate", None, user, rows, fields, new)


def edit(id_, kind, **detail):
    return Change(id_, kind, json.dumps(detail), "ana", [], [], [])


#: One project's actions, in commit order, with what each cell shows after them.
ACTIONS = [
    annotate(1, "ana", [0], ["cat"], [1.0]),
    annotate(2, "bob", [0], ["cat"], [0.0]),  # 1 vs 0: a tie shows the latest, 0
    annotate(3, "eve", [0], ["cat"], [1.0]),  # 2 vs 1: 1
    annotate(4, "bob", [1], ["dog"], [1.0]),  # one annotator: 1
    annotate(5, "ana", [1], ["dog"], [0.0]),  # a tie: the latest, 0
    annotate(6, "eve", [1, 1], ["dog", "exclude"], [0.0, 1.0]),  # 2 vs 1: 0; flags: latest
    Change(7, "undo", None, "eve", [1, 1], ["dog", "exclude"], [0.0, 0.0]),  # a tie again: latest 0
    annotate(8, "bob", [2, 2], ["cat", "dog"], [1.0, 1.0]),
    annotate(9, "ana", [2], ["cat"], [1.0]),  # 1, 1: 1
    annotate(10, "ana", [2], ["cat"], [None]),  # ana unlabels: bob alone, latest: unlabeled
    edit(11, "rename_class", old="cat", new="feline"),  # the votes follow their class
    annotate(12, "bob", [0], ["feline"], [0.0]),  # ana 1, bob 0, eve 1: 1
    Change(13, "unreadable", '{"row": 1, "cause": "gone"}', "bob", [], [], []),  # no cells
]

MAJORITY = {"feline": [1.0, NAN, NAN], "dog": [NAN, 0.0, 1.0], "exclude": [False] * 3}
LATEST = {"feline": [0.0, NAN, NAN], "dog": [NAN, 0.0, 1.0], "exclude": [False] * 3}


def fresh() -> LiveTable:
    return LiveTable(prep_label_dataframe(["a.png", "b.png", "c.png"], ["cat", "dog"]))


def check(table: LiveTable, expected: dict) -> None:
    for field, values in expected.items():
        np.testing.assert_array_equal(table.df[field].to_numpy(dtype=float),
                                      np.array(values, dtype=float), err_msg=field)
    pd.testing.assert_frame_equal(table.tracker.table(), label_counts(table.df))


@pytest.mark.parametrize(("rule", "expected"), [("majority", MAJORITY), ("latest", LATEST)])
def test_the_rule_against_a_hand_computed_table(rule, expected) -> None:
    table, resolution = fresh(), Resolution(rule)
    resolution.apply(table, ACTIONS)
    check(table, expected)


def test_action_by_action_equals_all_at_once() -> None:
    table, resolution = fresh(), Resolution("majority")
    shown = []
    for action in ACTIONS:
        resolution.apply(table, [action])
        shown.append(table.df.at[0, "feline" if "feline" in table.df else "cat"])
    assert shown[:3] == [1.0, 0.0, 1.0]  # ana; bob ties: latest; eve makes a majority
    check(table, MAJORITY)


def test_following_a_table_that_applied_the_actions_itself() -> None:
    """The store's own commits and a reopened store: the table applied the actions as
    latest-wins already; following them shows the majority."""
    table, resolution = fresh(), Resolution("majority")
    table.apply_changes(ACTIONS)
    check(table, LATEST)
    resolution.follow(table, ACTIONS)
    check(table, MAJORITY)
    latest = resolution.latest_table(table.df)  # what a journal snapshot must hold
    for field, values in LATEST.items():
        np.testing.assert_array_equal(latest[field].to_numpy(dtype=float),
                                      np.array(values, dtype=float))


def test_a_merge_combines_the_shown_values() -> None:
    table, resolution = fresh(), Resolution("majority")
    votes = [annotate(1, "ana", [0], ["cat"], [0.0]), annotate(2, "bob", [0], ["cat"], [0.0]),
             annotate(3, "eve", [0], ["cat"], [1.0]),  # shown 0 (2 vs 1), latest 1
             annotate(4, "ana", [0], ["dog"], [0.0])]
    resolution.apply(table, [*votes, edit(5, "merge_classes", a="cat", b="dog", into="pet")])
    assert table.df.at[0, "pet"] == 0.0  # merge of the shown 0 and 0, not of the latest 1
    resolution.apply(table, [annotate(6, "bob", [0], ["pet"], [1.0])])
    assert table.df.at[0, "pet"] == 1.0  # no votes carried into the merged class


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="resolution must be one of 'latest', 'majority'; got 'vote'"):
        Resolution("vote")
