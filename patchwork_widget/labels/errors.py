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


class JournalError(OSError):
    """The SQLite journal of a label table cannot be read or written.

    The message names the journal's path, what SQLite said (``cause``) and what to do.
    Nothing was applied to the table when a change raised it.

    Attributes
    ----------
    path
        The journal file.
    cause
        SQLite's own words (e.g. ``'database or disk is full'``).
    """

    what = "cannot use"
    advice = "check the file and its folder, then try again"

    def __init__(self, path: Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"{self.what} the label journal {str(self.path)!r} ({cause}); {self.advice}")


class JournalFullError(JournalError):
    """The disk (or quota) holding the journal is full: the change was not saved."""

    what = "not saved: no space left for"
    advice = "free some space on that disk, then try again (every earlier label is safe)"


class JournalDamagedError(JournalError):
    """The journal file is damaged or is not a journal at all."""

    what = "damaged:"
    advice = (
        "restore it from a backup, or move it (and its -wal file) aside and open the "
        "export file to start again from the table it last held"
    )


class JournalAccessError(JournalError):
    """The journal (or its folder) cannot be opened, read or written: permissions, a
    missing folder, a disk error."""

    what = "cannot open or write"
    advice = (
        "check that the file and its folder exist and that you may write there (or open "
        "with read_only=True to only read it)"
    )


# SQLite's primary result codes (https://www.sqlite.org/rescode.html) and the error each is.
_BY_CODE: dict[int, type[JournalError]] = {
    13: JournalFullError,  # SQLITE_FULL
    11: JournalDamagedError,  # SQLITE_CORRUPT
    26: JournalDamagedError,  # SQLITE_NOTADB
    14: JournalAccessError,  # SQLITE_CANTOPEN
    10: JournalAccessError,  # SQLITE_IOERR
    8: JournalAccessError,  # SQLITE_READONLY
    3: JournalAccessError,  # SQLITE_PERM
    23: JournalAccessError,  # SQLITE_AUTH
}


def journal_error(path: Path, error: Exception) -> JournalError | None:
    """The named error for a ``sqlite3.Error`` raised on the journal at ``path``, or None
    when it is not about the file (a bug, a busy lock: raised as it is)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    kind = _BY_CODE.get(code & 0xFF)
    return None if kind is None else kind(path, str(error))
