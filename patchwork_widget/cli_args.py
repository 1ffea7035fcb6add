"""Argument types of the ``patchwork-widget`` command: each turns one command-line string into
a value or raises ``argparse.ArgumentTypeError``, which argparse reports as
``error: argument --X: ...`` with exit code 2 (docs/cli.md). The limits are the declared ones
(:mod:`patchwork_widget.options.params`), so the command and Python accept the same values.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from patchwork_widget.labels.arguments import is_server_url
from patchwork_widget.options.params import Flag, Interval, OneOf, Shape, Text
from patchwork_widget.options.project import ProjectOptions
from patchwork_widget.options.training import SEED

__all__ = ["PORT", "add_project_arguments", "count", "image_side", "in_interval",
           "journal_url", "port", "project_options", "seed"]

PORT = Interval(int, 1, 65535)


def in_interval(interval: Interval, what: str) -> Callable[[str], Any]:
    """An argparse type: a number of ``interval`` (``what`` names it in the message)."""

    def parse(text: str) -> Any:
        try:
            value = interval.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be {'an int' if interval.kind is int else 'a number'}; "
                f"got {text!r}") from None
        try:
            return interval.check(what, value, False)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = what  # argparse names the type in "invalid <name> value"
    return parse


port = in_interval(PORT, "port")
image_side = in_interval(Interval(int, 1, Shape().max_side), "image side")
count = in_interval(Interval(int, 0, 10**9), "count")
seed = in_interval(SEED.constraint, "seed")


def journal_url(text: str) -> str:
    """``--journal``: a PostgreSQL URL (the SQLite journal needs no option)."""
    if not is_server_url(text):
        raise argparse.ArgumentTypeError(
            f"--journal must be a postgresql:// (or postgres://) URL of a team journal; got "
            f"{text!r} (leave it out for the SQLite journal beside the label file)")
    return text


def json_mapping(text: str) -> dict[str, Any]:
    """``--keys``: a JSON object, e.g. ``{"exclude": "e", "cat": "c"}``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"must be a JSON object; {e.msg} in {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object; got {text!r}")
    return value


#: What the command line of a field cannot be told by its declared constraint alone: the
#: number of values of a list, a URL check, another spelling of the option.
_SPELLED: dict[str, dict[str, Any]] = {
    "classes": {"nargs": "+", "metavar": "CLASS"},
    "bands": {"nargs": "+", "type": in_interval(Interval(int, 0, 10**6), "band"),
              "metavar": "BAND"},
    "stretch": {"nargs": 2, "type": in_interval(Interval(float, 0, 100), "percentile"),
                "metavar": ("LOW", "HIGH")},
    "journal": {"type": journal_url},
    "project": {"aliases": ("--project-name",)},
    "keys": {"type": json_mapping, "metavar": "JSON"},
}


def add_project_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                          names: Sequence[str]) -> None:
    """Add the open-a-project options ``names`` (fields of
    :class:`~patchwork_widget.options.project.ProjectOptions`) to ``parser``, each
    ``--name-with-dashes`` with its help and its declared limits; an option left out keeps
    the field's default (read them back with :func:`project_options`)."""
    declared = {f.name: f for f in fields(ProjectOptions)}
    for name in names:
        constraint = ProjectOptions.CONSTRAINTS[name].constraint
        spelled = dict(_SPELLED.get(name, {}))
        flags = [f"--{name.replace('_', '-')}", *spelled.pop("aliases", ())]
        kwargs: dict[str, Any] = {"dest": name, "default": None,
                                  "help": declared[name].metadata["help"]}
        if isinstance(constraint, Interval):
            kwargs["type"] = in_interval(constraint, name)
        elif isinstance(constraint, Shape):
            kwargs.update(type=image_side, nargs=2, metavar=("H", "W"))
        elif isinstance(constraint, OneOf):
            kwargs["choices"] = constraint.choice.values()
        elif isinstance(constraint, Flag):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif not isinstance(constraint, Text) and name not in _SPELLED:
            raise ValueError(f"ProjectOptions.{name} has no command-line form: declare one "
                             f"in cli_args._SPELLED")
        kwargs.update(spelled)
        parser.add_argument(*flags, **kwargs)


def project_options(args: argparse.Namespace, names: Sequence[str]) -> ProjectOptions:
    """The :class:`ProjectOptions` of the options ``names`` given on the command line."""
    given: Mapping[str, Any] = {name: getattr(args, name) for name in names
                                if getattr(args, name) is not None}
    return ProjectOptions(**{name: tuple(value) if isinstance(value, list) else value
                             for name, value in given.items()})
