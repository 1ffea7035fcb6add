"""Opening a LabelStore's journal (SQLite beside the export file, or a project on a
PostgreSQL server): the writer lock, and which table the store starts from (its journal,
``df`` or the export file)."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .arguments import check_project, check_wait, default_user, is_server_url
from .backend import JournalBackend
from .files import load_labels, remove_stale_temps, table_format
from .journal import Journal, journal_path
from .lock import JournalLockedError, WriterLock, acquire
from .replay import replay
from .schema import check_same_filepaths, class_columns

if TYPE_CHECKING:
    from .pg_journal import PgJournal

log = logging.getLogger(__name__)


@dataclass
class Start:
    """The table at open and where the journal stands."""

    table: pd.DataFrame
    pending: int  # actions after the snapshot (replayed)
    last_action: int  # id of the newest action in the table (0: none)
    resumed: bool  # the journal existed (else it is to be created from ``table``)


def open_journal(
    path: Path,
    df: pd.DataFrame | None,
    classes: Iterable[str] | None,
    user: str | None,
    read_only: bool,
    wait: float,
    server: str | None = None,
    project: str | None = None,
    annotator: str | None = None,
) -> tuple[JournalBackend, Start, WriterLock | None, bool]:
    """Check :meth:`LabelStore.open`'s arguments, open its journal and load its table.

    ``server`` (the ``journal`` argument) is None for the SQLite journal, else a
    PostgreSQL URL (see :func:`open_team_journal`).

    As writer: take the writer lock (so nobody else creates or writes the journal),
    remove exports a killed process left unfinished, create the journal if new (and
    delete it again if the open fails). Read-only: no lock, an existing journal only.

    Returns
    -------
    tuple
        The journal, the :class:`Start`, the writer lock (None when read-only) and
        whether the export file is known to hold the table.
    """
    table_format(path)
    classes = None if classes is None else list(classes)
    wait = check_wait(wait)
    if not isinstance(read_only, bool):
        raise ValueError(f"read_only must be True or False; got {read_only!r}")
    user = annotator_name(user, annotator)
    session = uuid.uuid4().hex
    if server is not None:
        if not is_server_url(server):
            raise ValueError(
                f"journal must be None (SQLite beside the export file) or a PostgreSQL URL "
                f"'postgresql://[user@]host[:port]/dbname'; got {server!r}"
            )
        return open_team_journal(path, df, classes, user, read_only, wait, server, project,
                                 session)
    if project is not None:
        raise ValueError(
            f"project={project!r} needs a team journal: pass journal='postgresql://...'"
        )
    where = journal_path(path)
    if read_only:
        try:
            journal = Journal(where, user, session, read_only=True)
        except FileNotFoundError as error:
            raise ValueError(f"read_only=True needs an existing journal; {error}") from None
        try:
            start = start_table(path, journal, df, classes, read_only=True)
            return journal, start, None, export_is_current(path, journal, start.last_action)
        except BaseException:
            journal.close()
            raise

    writer = acquire(where, user, wait)
    try:
        removed = remove_stale_temps(path)
        fresh = not where.exists()
        journal = Journal(where, user, session)
        try:
            begin = time.perf_counter()
            start = start_table(path, journal, df, classes)
            if not start.resumed:
                journal.create(start.table)
            exported = export_is_current(path, journal, start.last_action)
        except BaseException:
            journal.close()
            if fresh:  # leave no empty journal behind (we are its only writer)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{where}{suffix}").unlink(missing_ok=True)
            raise
    except BaseException:
        writer.release()
        raise
    log.info(
        "opened %s: %d rows, %d actions replayed in %.2f s%s",
        where, len(start.table), start.pending, time.perf_counter() - begin,
        f"; removed {len(removed)} unfinished export file(s)" if removed else "",
    )
    return journal, start, writer, exported


def annotator_name(user: str | None, annotator: str | None) -> str:
    """The name recorded on actions: ``annotator`` or ``user`` (the same thing), or the
    login name."""
    if user is not None and annotator is not None and user != annotator:
        raise ValueError(
            f"user={user!r} and annotator={annotator!r} name the same thing; give one"
        )
    name = annotator if annotator is not None else user
    if name is not None and not (isinstance(name, str) and name.strip()):
        arg = "annotator" if annotator is not None else "user"
        raise ValueError(f"{arg} must be a non-empty name; got {name!r}")
    return name or default_user()


def open_team_journal(
    path: Path,
    df: pd.DataFrame | None,
    classes: list[str] | None,
    user: str,
    read_only: bool,
    wait: float,
    url: str,
    project: str | None,
    session: str,
) -> tuple[PgJournal, Start, WriterLock | None, bool]:
    """Open ``project`` on the PostgreSQL server at ``url`` (see :func:`open_journal`).

    Several stores write a project at once, so the writer lock only guards the export
    file (``<path>.team.lock``: one store per file, a rerun cell takes over). The first
    store to open a project creates it from ``df`` (or the export file).
    """
    project = check_project(project)
    try:
        from .pg_journal import PgJournal
    except ImportError as error:
        raise ImportError(
            f"a PostgreSQL journal needs psycopg ({error}): pip install 'patchwork_widget[team]'"
        ) from None
    try:
        writer = None if read_only else acquire(team_lock_target(path), user, wait)
    except JournalLockedError as error:  # say what to pass
        mine = default_export(path, url, annotator=user)
        error.args = (
            f"{error.args[0]}. With a team journal each store needs its own export file: "
            f"pass another one, e.g. outfile={str(mine)!r} (Session.open, PatchworkWidget, "
            "LabelStore.open), or leave outfile out to get one per annotator",
        )
        raise
    try:
        journal = PgJournal(url, project, user, session, path)
        try:
            start = start_table(path, journal, df, classes, read_only)
            if not start.resumed and not journal.create(start.table):
                start = start_table(path, journal, df, classes)  # another store was first
            exported = export_is_current(path, journal, start.last_action)
        except BaseException:
            journal.close()
            raise
    except BaseException:
        if writer is not None:
            writer.release()
        raise
    log.info(
        "opened %s as %r: %d rows, %d actions replayed",
        journal.where, user, len(start.table), start.pending,
    )
    return journal, start, writer, exported


def default_export(path: str | os.PathLike, journal: str | None,
                   annotator: str | None = None) -> Path:
    """The export file of a store opened without one: ``path`` (the table's own file, or
    ``patchwork_labels.csv``), or with a team ``journal`` the annotator's own file beside it
    (``labels.csv`` -> ``labels.ana.csv``; characters other than letters, digits, ``.``,
    ``-`` and ``_`` become ``_``), so that annotators sharing a folder never share an
    export file (nor its writer lock). ``annotator`` None is the login name."""
    path = Path(path)
    if not is_server_url(journal):
        return path
    name = re.sub(r"[^\w.-]", "_", annotator_name(None, annotator), flags=re.ASCII)
    return path.with_name(f"{path.stem}.{name}{path.suffix}")


def team_lock_target(path: Path) -> Path:
    """What the writer lock of a team store's export file is named after
    (``labels.csv`` -> ``labels.csv.team``, locked through ``labels.csv.team.lock``)."""
    return path.with_name(path.name + ".team")


def start_table(
    path: Path,
    journal: JournalBackend,
    df: pd.DataFrame | None,
    classes: list[str] | None,
    read_only: bool = False,
) -> Start:
    """Load the table a store opens with (see :meth:`LabelStore.open` for the rules).

    Raises
    ------
    ValueError
        When ``df`` lists other filepaths than the journal, there is nothing to start
        from, ``classes`` differ from the table's, or (``read_only``) the journal is not
        complete.
    """
    if journal.initialised():
        table, upto = journal.load_snapshot()
        actions, events = journal.pending(upto)
        replay(table, actions, events)
        last = int(actions["id"].iloc[-1]) if len(actions) else upto
        start = Start(table, len(actions), last, resumed=True)
        if df is not None:
            check_same_filepaths(table, load_labels(df), f"the journal {journal.name}")
    elif read_only:
        raise ValueError(
            f"the label journal {journal.where!r} is empty or still being "
            "created; open it read-only once its writer has opened it"
        )
    elif df is not None:
        start = Start(load_labels(df), 0, 0, resumed=False)
    elif path.exists():
        start = Start(load_labels(path), 0, 0, resumed=False)
    else:
        raise ValueError(
            f"no journal {journal.name} and no file {str(path)!r} to start from; "
            "pass df (see prep_label_dataframe(filepaths, classes))"
        )
    if classes is not None and classes != class_columns(start.table):
        raise ValueError(
            f"the table at {str(path)!r} has classes {class_columns(start.table)}, "
            f"not {classes}; change classes with add_class/rename_class/"
            "remove_class/merge_classes"
        )
    return start


def export_is_current(path: Path, journal: JournalBackend, last_action: int) -> bool:
    """Whether the export file provably holds the table after ``last_action``.

    True when the journal's record of the last export names that action and the file
    still has the size and modification time it had then.
    """
    record = journal.export_record()
    if record is None or record.get("upto") != last_action:
        return False
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == (record.get("size"), record.get("mtime_ns"))
