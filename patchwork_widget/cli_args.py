"""Argument types of the ``patchwork-widget`` command: each turns one command-line string into
a value or raises ``argparse.ArgumentTypeError``, which argparse reports as
``error: argument --X: ...`` with exit code 2 (docs/cli.md). The limits are the declared ones
(:mod:`patchwork_widget.options.params`), so the command and Python accept the same values.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from patchwork_widget.labels.arguments import is_server_url
from patchwork_widget.options.params import Interval, Shape
from patchwork_widget.options.training import SEED

__all__ = ["PORT", "count", "image_side", "in_interval", "journal_url", "port", "seed",
           "storage_options"]

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


def storage_options(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object of fsspec filesystem options for image URLs, e.g.
    ``{"endpoint_url": "http://127.0.0.1:9000", "anon": true}``."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"--storage-options must be a JSON object; got {text!r} ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"--storage-options must be a JSON object (e.g. '{{\"anon\": true}}'); got {text!r}")
    return value
