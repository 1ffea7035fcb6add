"""Keys people choose (issue 23, item 11): the key table, its checks, and keeping it with the
project so that a reopen uses it."""

from __future__ import annotations

import pytest
from widget_comm import install

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.widget import PatchworkWidget
from patchwork_widget.widget.keys import DEFAULT_ACTION_KEYS, keys_file, resolve_keys

CLASSES = ["cat", "dog", "owl"]


def test_the_defaults_give_classes_digits_then_the_letters_no_action_uses():
    table = resolve_keys([f"c{i}" for i in range(12)])
    assert table["classes"] == [*"123456789", "b", "c", "d"]
    assert table["actions"] == {name: list(keys) for name, keys in DEFAULT_ACTION_KEYS.items()}
    assert resolve_keys([f"c{i}" for i in range(40)])["classes"][-1] is None  # past the keys


def test_chosen_keys_replace_the_defaults_and_free_keys_go_to_the_other_classes():
    table = resolve_keys(CLASSES, {"exclude": "e", "undo": ["r", "Backspace"], "dog": "d", "cat": "2"})
    assert table["actions"]["exclude"] == ["e"] and table["actions"]["undo"] == ["r", "Backspace"]
    assert table["actions"]["validation"] == ["v"]
    assert table["classes"] == ["2", "d", "1"]  # owl takes the first default key still free
    assert resolve_keys(CLASSES, {"accept": "1"})["classes"] == ["2", "3", "4"]


@pytest.mark.parametrize("keys, message", [
    ({"cat": "x"}, "'x' would be used by both class 'cat' and the action 'exclude' (its default"),
    ({"cat": "c", "dog": "c"}, "'c' would be used by both class 'cat' and class 'dog'"),
    ({"exclude": "v"}, "'v' would be used by both the action 'exclude' and the action 'validation'"),
    ({"jump": "j"}, "'jump' is neither an action (rest_negative, exclude"),
    ({"cat": "cc"}, "keys['cat'] must be a single character or one of Enter, Escape"),
    ({"cat": "ArrowUp"}, "'ArrowUp' is fixed (the arrows move)"),
    ({"cat": ["c"]}, "keys['cat'] must be one key for a class; got ['c']"),
    ({"undo": []}, "keys['undo'] must hold at least one key"),
    (["cat"], "keys must map action or class names to keys; got ['cat']"),
])
def test_a_choice_that_is_unclear_is_refused_naming_what_is_wrong(keys, message):
    with pytest.raises(ValueError) as err:
        resolve_keys(CLASSES, keys)
    assert message in str(err.value)
    with pytest.raises(ValueError, match="both an action and a class"):
        resolve_keys(["undo"], {"undo": "r"})


def test_the_widget_sends_the_table_and_a_reopen_keeps_the_choice(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    out = tmp_path / "labels.csv"
    df = prep_label_dataframe(image_paths, CLASSES)
    widget = PatchworkWidget(df, outfile=out, imshape=(32, 32), keys={"exclude": "e", "owl": "o"})
    assert widget.labeler.keymap["actions"]["exclude"] == ["e"]
    assert widget.labeler.keymap["classes"] == ["1", "2", "o"]
    widget.session.close()

    again = PatchworkWidget(out, imshape=(32, 32))  # no keys=: the project's own
    assert again.labeler.keymap == widget.labeler.keymap
    again.session.remove_class("dog")  # the others keep their keys; the chosen one holds
    assert again.labeler.keymap["classes"] == ["1", "o"]
    again.session.close()

    undo = PatchworkWidget(out, imshape=(32, 32), keys={"undo": "r"})
    undo.session.add_class("undo")  # now a name of both: the view keeps working, on defaults
    assert undo.labeler.keymap["actions"]["undo"] == ["u"]
    assert undo.labeler.keymap["classes"] == ["1", "2", "3"]
    undo.session.close()

    with pytest.raises(ValueError, match="'e' would be used by both"):
        PatchworkWidget(out, imshape=(32, 32), keys={"exclude": "e", "cat": "e"})
    reset = PatchworkWidget(out, imshape=(32, 32), keys={})  # the journal was left free
    assert reset.labeler.keymap["actions"]["exclude"] == ["x"] and not keys_file(out).exists()
    reset.session.close()


def test_the_js_tests_read_the_kernels_default_table():
    """js/tests/keytable.json stands for the kernel in the JS tests: it must be this table."""
    import json
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[2] / "js" / "tests" / "keytable.json"
    assert json.loads(fixture.read_text()) == resolve_keys([f"c{i}" for i in range(40)])


def test_a_class_edit_moves_no_other_class_key_and_a_reopen_shows_the_same(
        tmp_path, image_paths, monkeypatch):
    """Removing a class keeps every other class's key (issue 23, item 10); a rename keeps the
    class's chosen key; a merge keeps the first class's key; only a new class takes a free
    default key; the kept table survives a reopen."""
    install(monkeypatch)
    out = tmp_path / "labels.csv"
    names = [f"c{i}" for i in range(12)]
    df = prep_label_dataframe(image_paths, names)
    widget = PatchworkWidget(df, outfile=out, imshape=(32, 32), keys={"c0": "q"})
    defaults = ["q", *"12345678", "9", "b", "c"]
    assert widget.labeler.keymap["classes"] == defaults
    widget.session.remove_class("c1")
    kept = [k for k in defaults if k != "1"]
    assert widget.labeler.keymap["classes"] == kept
    widget.session.rename_class("c0", "first")  # the chosen key follows the class
    assert widget.labeler.keymap["classes"] == kept
    widget.session.add_class("new")  # the freed key
    assert widget.labeler.keymap["classes"] == [*kept, "1"]
    widget.session.merge_classes("c2", "c3", into="pair")  # c2's key; c3's is free again
    assert dict(zip(widget.labeler.classes, widget.labeler.keymap["classes"]))["pair"] == "2"
    assert "c3" not in widget.labeler.classes and "3" not in widget.labeler.keymap["classes"]
    table = widget.labeler.keymap
    widget.session.close()

    again = PatchworkWidget(out, imshape=(32, 32))
    assert again.labeler.keymap == table
    import json
    assert json.loads(keys_file(out).read_text())["first"] == "q"
    again.session.close()
