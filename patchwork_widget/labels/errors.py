"""Errors of a LabelStore that is not (or no longer) the writer of its journal."""

from __future__ import annotations

from pathlib import Path


class StoreClosedError(ValueError):
    """The store was closed; open it again to keep working."""


class StoreTakenOverError(StoreClosedError):
    """A later ``LabelStore.open`` of the same file in this process took over writing."""


class ReadOnlyStoreError(ValueError):
    """The store was opened with ``read_only=True``."""


def check_usable(path: Path, closed: bool, taken_over: bool, read_only: bool = False) -> None:
    """Raise the error that says why the store at ``path`` cannot be used, if it cannot.

    ``read_only`` is given for calls that change the table.
    """
    if taken_over:
        raise StoreTakenOverError(
            f"the label store {str(path)!r} is closed: a later LabelStore.open of the same "
            "file in this process took over writing (e.g. the cell was run again); use the "
            "newer store"
        )
    if closed:
        raise StoreClosedError(f"the label store {str(path)!r} is closed")
    if read_only:
        raise ReadOnlyStoreError(
            f"the label store {str(path)!r} was opened read-only; open it without "
            "read_only=True to change it"
        )


class JournalUnavailableError(ConnectionError):
    """The team journal's server cannot be reached: the change was not saved.

    Nothing was applied to the table; retry the call once the server is back (the store
    reconnects by itself).
    """


class ProjectLockedError(JournalUnavailableError):
    """Another session held the team project's write turn for longer than the lock timeout
    (see docs/team.md): nothing was saved. The message names the holder; try again."""


class OutcomeUnknownError(JournalUnavailableError):
    """The connection to the team journal was lost after a change was sent for commit, and
    the server could not be asked since: the change may already be saved.

    The store checks at its next call (by the change's idempotency key); calling again with
    the same change then never saves it twice.
    """
