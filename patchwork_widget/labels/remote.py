"""What a store tells its :meth:`LabelStore.on_remote_change` callbacks."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .records import CLASS_EDITS


@dataclass(frozen=True)
class RemoteChange:
    """Changes by other stores of a team journal, now applied to the table.

    Attributes
    ----------
    actions
        How many actions (store calls) were applied.
    upto
        The id of the newest of them.
    annotators
        Who made them, sorted.
    class_edits
        Whether any was a class edit (the classes may have changed).
    """

    actions: int
    upto: int
    annotators: tuple[str, ...]
    class_edits: bool


def remote_change(actions: pd.DataFrame) -> RemoteChange:
    """The :class:`RemoteChange` of ``Journal.pending``'s actions frame (not empty)."""
    return RemoteChange(
        actions=len(actions),
        upto=int(actions["id"].iloc[-1]),
        annotators=tuple(sorted(set(actions["user"]))),
        class_edits=bool(actions["kind"].isin(CLASS_EDITS).any()),
    )
