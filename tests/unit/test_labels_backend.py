"""Both journal backends implement the journal interface the store is typed against, member
for member, with the same signatures: a method added to, or changed in, one backend only
fails here."""

from __future__ import annotations

import inspect
import typing

import pytest

from patchwork_widget.labels.backend import JournalBackend
from patchwork_widget.labels.journal import Journal
from patchwork_widget.labels.pg_journal import PgJournal

BACKENDS = [Journal, PgJournal]


def _methods(cls: type) -> dict[str, object]:
    """The public methods a class defines itself (not inherited from object / Protocol)."""
    return {name: member for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)}


def _signature(function: object) -> inspect.Signature:
    """The signature with its annotations resolved in the function's module (``from
    __future__ import annotations`` leaves them strings, which would compare spellings)."""
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation))
                  for p in signature.parameters.values()]
    return signature.replace(parameters=parameters,
                             return_annotation=hints.get("return", signature.return_annotation))


@pytest.mark.parametrize("cls", BACKENDS, ids=lambda c: c.__name__)
def test_backend_has_every_member_of_the_interface_with_its_signature(cls):
    interface = _methods(JournalBackend)
    assert interface, "the interface declares methods"
    own = _methods(cls)
    missing = sorted(set(interface) - set(own))
    assert not missing, f"{cls.__name__} lacks {missing}"
    extra = sorted(set(own) - set(interface))
    assert not extra, (f"{cls.__name__} has public methods the interface does not declare: "
                       f"{extra} (declare them in labels/backend.py, or make them private)")
    for name, member in interface.items():
        expected = _signature(member)
        found = _signature(own[name])
        assert found == expected, f"{cls.__name__}.{name}{found} != JournalBackend.{name}{expected}"


@pytest.mark.parametrize("cls", BACKENDS, ids=lambda c: c.__name__)
def test_backend_declares_the_interface_attributes_with_their_types(cls):
    wanted = typing.get_type_hints(JournalBackend)
    assert wanted, "the interface declares attributes"
    found = typing.get_type_hints(cls)
    for name, kind in wanted.items():
        assert found.get(name) == kind, f"{cls.__name__}.{name}: {found.get(name)!r} != {kind!r}"


def test_the_sqlite_backend_sets_the_declared_attributes(tmp_path):
    """The declarations are true of an instance (the PostgreSQL one is opened against a server
    in test_team_journal.py, which reads ``where``, ``shared`` and ``user``)."""
    opened = Journal(tmp_path / "j.sqlite", "ann", "s1")
    try:
        for name, kind in typing.get_type_hints(JournalBackend).items():
            assert isinstance(getattr(opened, name), kind), name
    finally:
        opened.close()


def test_a_drifted_backend_fails_the_check():
    """The check itself: a backend whose ``watch`` callback takes an argument is caught."""

    class Drifted(Journal):
        def watch(self, on_change: typing.Callable[[str], None]) -> None:  # type: ignore[override]
            """Other callback type."""

    expected = _signature(JournalBackend.watch)
    assert _signature(Drifted.watch) != expected
    assert _signature(Journal.watch) == expected
