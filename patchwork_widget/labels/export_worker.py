"""Background exports written by a worker process that follows the journal (issue 26).

A store's export file follows its journal: the journal is the truth, the file a copy. For
a big table the background exports are written by a worker process instead of a thread of
the kernel, so that neither the copy of the table nor the CSV or Parquet writer (which
holds the GIL for most of its time) competes with the labeler's clicks.

The worker (:data:`ENTRY_POINT` run by ``python -c``, with ``JOURNAL OUTFILE PARENT_PID``)
opens the SQLite journal read-only, loads its snapshot and replays the actions after it,
exactly as a reopen does (:func:`.opening.start_table`), and keeps that table. For each
request (a line on its stdin) it reads the actions committed since its last read, replays
them, writes the export file atomically (:func:`.files.save_labels`) and answers one JSON
line: ``{"upto": action, "size": bytes, "mtime_ns": ns}`` (the newest action the file
holds, and the file's size and time, as :meth:`JournalBackend.record_export` takes them)
or ``{"error": "Type: message"}``. The kernel's side, :class:`ExportProcess`, sends
nothing but the request: the store's lock is not taken and no table is copied in the
kernel, and the worker runs at a lower CPU priority (:data:`NICENESS`). The worker ends at
the end of its stdin (the store closed, or its process died),
and on Linux also when the thread that started it ends (``PR_SET_PDEATHSIG``), so a
killed kernel leaves no worker that could still replace the file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .files import save_labels
from .journal import Journal
from .opening import start_table
from .replay import replay

log = logging.getLogger(__name__)

#: The protocol's request line.
REQUEST = "export\n"

#: What the worker process runs (``python -c``; its arguments follow).
ENTRY_POINT = "from patchwork_widget.labels.export_worker import main; main()"

#: The worker's CPU priority below the kernel's (as the online round worker's): on shared
#: cores the clicks come first and the file follows later.
NICENESS = 10


class ExportWorkerError(RuntimeError):
    """An export the worker could not write; the message is the worker's error, as
    ``"Type: message"``."""


class ExportProcess:
    """The kernel's handle on one store's export worker (started on the first export).

    Parameters
    ----------
    journal
        The store's SQLite journal file.
    outfile
        The export file (``.csv`` or ``.parquet``).

    Not thread-safe: one thread exports at a time (:class:`.exporting.Exports` holds its
    write lock around :meth:`export`).
    """

    def __init__(self, journal: Path, outfile: Path) -> None:
        self.journal = journal
        self.outfile = outfile
        self._process: subprocess.Popen | None = None

    def export(self) -> tuple[int, int, int]:
        """Have the worker write the file holding every action committed so far.

        Returns
        -------
        tuple of int
            The newest action the file holds, and its size and ``st_mtime_ns``.

        Raises
        ------
        ExportWorkerError
            The worker could not write the file (it goes on, for the next request), or
            ended (it is started again at the next request).
        OSError
            The worker could not be started.
        """
        process = self._running()
        try:
            process.stdin.write(REQUEST)
            process.stdin.flush()
            line = process.stdout.readline()
        except (BrokenPipeError, ValueError):
            line = ""
        if not line:
            code = process.wait()
            self._process = None
            raise ExportWorkerError(f"the export worker ended (exit status {code})")
        reply = json.loads(line)
        if "error" in reply:
            raise ExportWorkerError(reply["error"])
        return int(reply["upto"]), int(reply["size"]), int(reply["mtime_ns"])

    def _running(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ,
               "PYTHONPATH": package_root if not path else f"{package_root}{os.pathsep}{path}"}
        self._process = subprocess.Popen(
            [sys.executable, "-c", ENTRY_POINT, str(self.journal), str(self.outfile),
             str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env,
            close_fds=True,
        )
        log.debug("started export worker %d for %s", self._process.pid, self.outfile)
        return self._process

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs (None before the first export)."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running else None

    def close(self) -> None:
        """End the worker (it finishes an export in progress first); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            log.warning("export worker %d did not end; killing it", process.pid)
            process.kill()
            process.wait()
        process.stdout.close()


def _die_with_parent(parent: int) -> None:
    """Ask Linux to end this process when the thread that started it ends; exit now if
    the parent is gone already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.exit(0)


class _Follower:
    """The journal's table, kept current by replaying the actions committed since."""

    def __init__(self, journal: Path) -> None:
        self._journal = Journal(journal, "export worker", uuid.uuid4().hex, read_only=True)
        start = start_table(journal, self._journal, None, None, read_only=True)
        self.table, self.upto = start.table, start.last_action

    def catch_up(self) -> int:
        """Replay the actions committed since the last call; return the newest one's id."""
        actions, events = self._journal.pending(self.upto)
        if len(actions):
            replay(self.table, actions, events)
            self.upto = int(actions["id"].iloc[-1])
        return self.upto


def serve(journal: Path, outfile: Path, requests: Iterable[str], replies: TextIO) -> None:
    """Answer each request line from ``requests`` with one JSON line on ``replies`` (see
    the module's docstring), until ``requests`` ends."""
    follower: _Follower | None = None
    for _ in requests:
        try:
            if follower is None:
                follower = _Follower(journal)
            upto = follower.catch_up()
            save_labels(follower.table, outfile)
            stat = outfile.stat()
            reply = {"upto": upto, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        except Exception as error:  # answered; the kernel records it and retries
            log.debug("export of %s failed", outfile, exc_info=True)
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> None:
    """The worker process's entry point: ``JOURNAL OUTFILE PARENT_PID``."""
    journal, outfile, parent = sys.argv[1:] if argv is None else argv
    _die_with_parent(int(parent))
    os.nice(NICENESS)
    logging.basicConfig(level=logging.WARNING, format="export worker: %(message)s")
    serve(Path(journal), Path(outfile), sys.stdin, sys.stdout)

