"""The labeler's key table: the one owner of which key does what (issue 23, item 11).

The default keys of the actions are declared here; the keys of the classes follow the class
order (``1``-``9``, then the letters no action uses). ``PatchworkWidget(keys={...})`` remaps
actions and classes by name; :func:`resolve_keys` checks the choice (unknown names, keys that
are not keys, one key for two things) and writes the whole table, which the labeler sends to
the view as its ``keymap`` trait: the browser's keymap (js/keymap.mjs) reads that table for
both the keys it handles and the help it shows. The user's choice is kept beside the outfile
(``<outfile>.keys.json``) so that reopening the project without ``keys=`` uses it again.

A class edit moves no other class's key (issue 23, item 10): :func:`carry_keys` carries the
chosen keys and the table last shown over the edit (a rename keeps the class's key), the
``kept`` argument of :func:`resolve_keys` gives each class its key again while it is free, and
:func:`pin_keys` adds to the kept choice the keys the class order alone would not give again.

The arrow keys (move; Shift extends the selection) and Ctrl/Cmd+Z (undo) are fixed.
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict, TypeVar, Union

from patchwork_widget.options.active import ClassEdit, ClassEditKind

logger = logging.getLogger(__name__)

#: Each remappable action and its default keys (``KeyboardEvent.key`` values), in the order
#: the help lists them. The view knows what each name does (js/keymap.mjs, ``ACTIONS``).
DEFAULT_ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "rest_negative": ("0",),
    "exclude": ("x",),
    "validation": ("v",),
    "accept": ("a",),
    "accept_next": ("A",),
    "undo": ("u",),
    "full": ("z",),
    "similar": ("n",),
    "find": ("/",),
    "next": ("Enter", " "),
    "leave": ("Escape",),
}
#: Keys that are not printable characters but may be chosen.
NAMED_KEYS = ("Enter", "Escape", "Backspace", "Delete", "Home", "End", "PageUp", "PageDown")
#: Keys nobody can take: moving around (with Shift, extending the selection).
FIXED_KEYS = ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown")
#: The keys classes get by default, in order, less those an action or a chosen class key uses.
CLASS_KEY_ORDER = tuple("123456789") + tuple(string.ascii_lowercase)

KeyChoice = Union[str, Sequence[str]]
V = TypeVar("V")


class KeyTable(TypedDict):
    """The whole key table: each action's keys, each class's key (None: past the keys)."""

    actions: dict[str, list[str]]
    classes: list[Union[str, None]]

KEYS_FILE_SUFFIX = ".keys.json"

__all__ = ["DEFAULT_ACTION_KEYS", "FIXED_KEYS", "NAMED_KEYS", "KeyTable", "carry_keys", "keys_file",
           "load_keys", "pin_keys", "resolve_keys", "save_keys"]


def _check_key(name: str, key: object) -> str:
    if key in FIXED_KEYS:
        raise ValueError(f"keys[{name!r}]: {key!r} is fixed (the arrows move)")
    if not isinstance(key, str) or not (
        (len(key) == 1 and (key.isprintable() or key == " ")) or key in NAMED_KEYS
    ):
        raise ValueError(f"keys[{name!r}] must be a single character or one of "
                         f"{', '.join(NAMED_KEYS)}; got {key!r}")
    return key


def _describe(name: str, classes: Sequence[str]) -> str:
    return f"class {name!r}" if name in classes else f"the action {name!r}"


def resolve_keys(classes: Sequence[str], keys: Mapping[str, KeyChoice] | None = None,
                 kept: Mapping[str, str | None] | None = None) -> KeyTable:
    """The whole key table for ``classes`` with the user's choice ``keys`` applied.

    Parameters
    ----------
    classes : sequence of str
        The class names, in order.
    keys : mapping, optional
        Action name (:data:`DEFAULT_ACTION_KEYS`) -> a key or a list of keys, and class name
        -> one key. Actions and classes not named keep their defaults; classes without a
        chosen key take the default class keys that are still free, in class order.
    kept : mapping, optional
        Class name -> the key it had in the table shown before a class edit (see
        :func:`carry_keys`). A class without a chosen key keeps that key while it is still
        free, ahead of the default order, so an edit never moves another class's key.

    Returns
    -------
    dict
        ``{"actions": {action: [keys]}, "classes": [key or None, one per class]}`` (None: a
        class past the keys there are; it is labeled by a click).

    Raises
    ------
    ValueError
        A name that is neither an action nor a class, a name that is both, a value that is
        not a key, or one key for two uses (the message names both).
    """
    if keys is None:
        keys = {}
    if not isinstance(keys, Mapping) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys must map action or class names to keys; got {keys!r}")
    chosen_actions: dict[str, tuple[str, ...]] = {}
    chosen_classes: dict[str, str] = {}
    for name, value in keys.items():
        if name in DEFAULT_ACTION_KEYS and name in classes:
            raise ValueError(f"keys[{name!r}]: {name!r} is both an action and a class; rename "
                             f"the class to choose its key")
        if name in DEFAULT_ACTION_KEYS:
            values = (value,) if isinstance(value, str) else tuple(value)
            if not values:
                raise ValueError(f"keys[{name!r}] must hold at least one key; got {value!r}")
            chosen_actions[name] = tuple(_check_key(name, v) for v in values)
        elif name in classes:
            if not isinstance(value, str):
                raise ValueError(f"keys[{name!r}] must be one key for a class; got {value!r}")
            chosen_classes[name] = _check_key(name, value)
        else:
            raise ValueError(f"keys: {name!r} is neither an action ({', '.join(DEFAULT_ACTION_KEYS)}) "
                             f"nor a class ({', '.join(classes) or 'none'})")
    users: dict[str, str] = {}  # key -> who uses it

    def take(key: str, name: str, chosen: bool) -> None:
        if key in users:
            other = users[key]
            default = "" if chosen else " (its default key; choose another for it in keys=)"
            raise ValueError(f"keys: {key!r} would be used by both {_describe(other, classes)} "
                             f"and {_describe(name, classes)}{default}")
        users[key] = name

    for name, value in chosen_actions.items():
        for key in value:
            take(key, name, True)
    for name, key in chosen_classes.items():
        take(key, name, True)
    actions: dict[str, list[str]] = {}
    for name, default in DEFAULT_ACTION_KEYS.items():
        if name not in chosen_actions:
            for key in default:
                take(key, name, False)
        actions[name] = list(chosen_actions.get(name, default))
    class_keys: dict[str, str | None] = dict(chosen_classes)
    for name in classes:
        key = (kept or {}).get(name)
        if name not in class_keys and key is not None and key not in users:
            class_keys[name] = key
            users[key] = name
    free = iter(k for k in CLASS_KEY_ORDER if k not in users)
    for name in classes:
        if name not in class_keys:
            class_keys[name] = next(free, None)
    return {"actions": actions, "classes": [class_keys[name] for name in classes]}


def carry_keys(keys: Mapping[str, V], edit: ClassEdit | None) -> dict[str, V]:
    """Entries named by class carried over one class edit (entries named by action stay).

    A rename moves the entry of the old name to the new one; a merge gives the merged class
    the entry of its first class (``edit.name``) and drops the second's; a removal drops the
    removed class's. ``edit`` None (another annotator's edits, not known one by one) keeps
    every entry under its name.
    """
    carried = dict(keys)
    if edit is None or edit.kind is ClassEditKind.ADD:
        return carried
    if edit.kind is ClassEditKind.MERGE:
        carried.pop(str(edit.other), None)
    if edit.name in carried:
        value = carried.pop(edit.name)
        if edit.result is not None:
            carried[edit.result] = value
    return carried


def pin_keys(classes: Sequence[str], keys: Mapping[str, KeyChoice],
             table: KeyTable) -> dict[str, KeyChoice]:
    """The choice ``keys`` plus the class keys that the plain defaults would not give again.

    After a class edit kept a class's key (``kept`` of :func:`resolve_keys`), the class order
    alone would give it another one at the next open; pinning it in the kept choice makes
    ``resolve_keys(classes, pin_keys(...))`` equal ``table``, so a reopen shows the same keys.
    """
    pinned = dict(keys)
    shown = table["classes"]
    while True:
        again = resolve_keys(classes, pinned)["classes"]
        moved = {name: key for name, key, other in zip(classes, shown, again)
                 if key != other and key is not None}
        if not moved:
            return pinned
        pinned.update(moved)


def keys_file(outfile: str | os.PathLike) -> Path:
    """Where a project's chosen keys are kept: ``<outfile>.keys.json``."""
    path = Path(outfile)
    return path.with_name(path.name + KEYS_FILE_SUFFIX)


def save_keys(outfile: str | os.PathLike, keys: Mapping[str, KeyChoice]) -> None:
    """Keep the user's choice beside the outfile (replaced atomically); an empty choice
    removes the file (the defaults need none)."""
    path = keys_file(outfile)
    if not keys:
        path.unlink(missing_ok=True)
        return
    plain = {name: value if isinstance(value, str) else list(value) for name, value in keys.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(plain, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def load_keys(outfile: str | os.PathLike, classes: Sequence[str]) -> dict[str, KeyChoice]:
    """The choice kept beside the outfile ({} when none). Entries of classes that are gone
    (removed or renamed since) are dropped, and logged."""
    path = keys_file(outfile)
    if not path.is_file():
        return {}
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"the chosen keys in {os.fspath(path)!r} cannot be read ({err}); fix "
                         f"or remove that file") from None
    if not isinstance(kept, dict):
        raise ValueError(f"the chosen keys in {os.fspath(path)!r} must be a JSON object; fix "
                         f"or remove that file")
    gone = [name for name in kept if name not in DEFAULT_ACTION_KEYS and name not in classes]
    if gone:
        logger.warning("chosen keys of classes no longer in the project are dropped: %s", gone)
    return {name: value for name, value in kept.items() if name not in gone}
