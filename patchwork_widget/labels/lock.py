"""One writer per journal (DESIGN "One writer per journal", FEATURES L4).

A writer holds an exclusive advisory lock (``flock``) on ``<journal>.lock`` for as long
as it is open. The operating system drops the lock when the holding process ends, however
it ends, so a lock left by a killed process is never in the way. The lock file also
records who holds it (pid, host, user, since) so that a refused opener can say so.

Within one process a second writer of the same journal (a notebook cell run again) takes
the lock over from the first: :func:`acquire` hands the held lock to the new owner and
stops the previous owner first (see :meth:`WriterLock.bind`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_NAME_WAIT_SECONDS = 1.0  # a holder writes its name just after it locks: wait that long for it


def lock_path(journal: str | os.PathLike) -> Path:
    """The lock file of a journal: ``labels.csv.journal.sqlite`` -> ``....sqlite.lock``."""
    journal = Path(journal)
    return journal.with_name(journal.name + ".lock")


class JournalLockedError(RuntimeError):
    """Another process writes this journal. ``holder`` says who, when the lock file does."""

    def __init__(self, journal: Path, holder: dict | None) -> None:
        self.journal = journal
        self.holder = holder
        if holder:
            who = (
                f"process {holder.get('pid')} on host {holder.get('host')!r} "
                f"(user {holder.get('user')!r}, since {holder.get('since')})"
            )
        else:
            who = "another process"
        super().__init__(
            f"the label journal {str(journal)!r} is being written by {who}; only one "
            "process may write it at a time. Close the store there, open it with "
            "read_only=True, or pass wait=<seconds> to wait for it"
        )


class WriterLock:
    """The writer lock of one journal, as owned by one store.

    Bind the owner's stop function with :meth:`bind`; give the lock up with
    :meth:`release`.
    """

    def __init__(self, journal: Path, fd: int, key: tuple[int, int]) -> None:
        self.journal = journal
        self._fd = fd
        self._key = key
        self._mutex = threading.Lock()
        self._on_takeover: Callable[[], None] | None = None
        self._taken_over = False

    def bind(self, on_takeover: Callable[[], None]) -> None:
        """Call ``on_takeover`` when a later :func:`acquire` in this process takes over.

        It must stop the owner writing before it returns. If the takeover already
        happened, it is called at once.
        """
        with self._mutex:
            if not self._taken_over:
                self._on_takeover = on_takeover
                return
        on_takeover()

    def release(self) -> None:
        """Give the lock up and delete the lock file (idempotent; a no-op once another
        owner took it over)."""
        with _registry_lock:
            if _registry.get(self._key) is not self:
                return
            del _registry[self._key]
            if fcntl is not None:  # deleted while locked: see _same_file in acquire
                lock_path(self.journal).unlink(missing_ok=True)
            _unlock(self._fd)
            os.close(self._fd)

    def _take_over(self) -> None:
        with self._mutex:
            self._taken_over = True
            callback, self._on_takeover = self._on_takeover, None
        if callback is not None:
            callback()


_registry: dict[tuple[int, int], WriterLock] = {}
_registry_lock = threading.Lock()
_acquire_lock = threading.Lock()  # one acquire (and takeover) at a time


def acquire(journal: str | os.PathLike, user: str, wait: float = 0.0) -> WriterLock:
    """Become the one writer of ``journal``.

    A writer of the same journal in this process is taken over (see
    :meth:`WriterLock.bind`); one in another process is waited for up to ``wait``
    seconds.

    Parameters
    ----------
    journal
        The journal file (it need not exist yet; its folder must).
    user
        Recorded in the lock file for other processes' error messages.
    wait
        Seconds to wait for another process to let go before giving up.

    Raises
    ------
    JournalLockedError
        When another process holds the lock for longer than ``wait``.
    """
    journal = Path(journal)
    where = lock_path(journal)
    with _acquire_lock:
        deadline = time.monotonic() + wait
        while True:
            owner = _acquire_once(journal, where, user, deadline)
            if owner is not None:
                return owner


def _acquire_once(journal: Path, where: Path, user: str, deadline: float) -> WriterLock | None:
    """One try of :func:`acquire`; None when the lock file was replaced meanwhile."""
    fd = os.open(where, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        stat = os.fstat(fd)
        key = (stat.st_dev, stat.st_ino)
        with _registry_lock:
            previous = _registry.get(key)
        if previous is not None:
            # Same process (e.g. the cell run again): the previous owner stops
            # writing, then the lock it holds changes hands.
            previous._take_over()
            owner = WriterLock(journal, previous._fd, key)
            with _registry_lock:
                _registry[key] = owner
            os.close(fd)
            fd = -1
            _write_holder(owner._fd, user)
            log.info("took over the writer lock of %s within this process", journal)
            return owner
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise JournalLockedError(journal, _wait_for_holder(journal))
            time.sleep(_POLL_SECONDS)
        if not _same_file(fd, where):
            # The previous holder deleted the file on release after we opened it: a
            # lock on the deleted file excludes nobody. Start again.
            os.close(fd)
            fd = -1
            return None
        _write_holder(fd, user)
        owner = WriterLock(journal, fd, key)
        with _registry_lock:
            _registry[key] = owner
        return owner
    except BaseException:
        if fd >= 0:
            os.close(fd)  # never registered: the lock, if taken, goes with it
        raise


def read_holder(journal: str | os.PathLike) -> dict | None:
    """Who last held the writer lock of ``journal`` (pid, host, user, since), if recorded."""
    try:
        text = lock_path(journal).read_text(encoding="utf-8")
        holder = json.loads(text)
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _wait_for_holder(journal: Path) -> dict | None:
    """The holder's name for a refusal: a holder that has just locked the file writes it a
    moment later, so an empty lock file is read again for up to a second."""
    deadline = time.monotonic() + _NAME_WAIT_SECONDS
    while (holder := read_holder(journal)) is None and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    return holder


def _write_holder(fd: int, user: str) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": user,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(holder).encode("utf-8"))


def _same_file(fd: int, where: Path) -> bool:
    try:
        stat = os.stat(where)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (stat.st_dev, stat.st_ino) == (mine.st_dev, mine.st_ino)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without blocking; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
