"""The journal's file failing (full disk, damaged file, read-only media, a held lock) reaches
the user as a named error with the path, the cause and what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.labels.errors import JournalDamagedError, JournalFullError
from patchwork_widget.labels.journal import journal_path
from patchwork_widget.labels.lock import JournalLockedError, acquire, lock_path
from patchwork_widget.session import Session
from patchwork_widget.widget import protocol

CLASSES = ["cat", "dog"]
PATHS = [f"/data/img{i}.png" for i in range(20)]


def test_a_full_disk_reaches_the_browser_as_a_named_error(tmp_path, image_paths):
    session = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv")
    try:
        db = session.store._journal._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")  # SQLite answers SQLITE_FULL from here
        rows = list(range(len(session.df)))
        for attempt in range(1000):  # until the free room left in the last pages is used
            before = session.df.copy()
            value = attempt % 2
            (reply, _), = protocol.handle(
                session, {"type": "annotate", "id": 7, "rows": rows, "changes": {"cat": value}}
            )
            if reply["type"] != "ack":
                break
        assert reply["type"] == "error" and reply["id"] == 7
        journal = str(journal_path(tmp_path / "l.csv"))
        assert reply["message"].startswith(f"not saved: no space left for the label journal {journal!r}")
        assert "database or disk is full" in reply["message"] and "free some space" in reply["message"]
        assert "internal error" not in reply["message"]
        assert session.df.equals(before)
        db.execute("PRAGMA max_page_count=1073741823")  # space again: the retry is saved
        (reply, _), = protocol.handle(
            session, {"type": "annotate", "id": 8, "rows": rows, "changes": {"cat": value}}
        )
        assert reply["type"] == "ack" and (session.df["cat"] == value).all()
    finally:
        session.close()


def test_a_damaged_journal_is_named_with_its_path_and_what_to_do(tmp_path):
    out = tmp_path / "labels.csv"
    LabelStore.open(out, df=prep_label_dataframe(PATHS, CLASSES)).close()
    journal = journal_path(out)
    journal.write_bytes(b"this is not a database" * 100)
    for read_only in (False, True):
        with pytest.raises(JournalDamagedError) as caught:
            LabelStore.open(out, read_only=read_only)
        message = str(caught.value)
        assert str(journal) in message and "file is not a database" in message
        assert "restore it from a backup" in message and caught.value.path == journal


@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux",
                    reason="needs Linux mount namespaces (unshare)")
def test_read_only_open_works_on_read_only_media(tmp_path):
    """A journal on a read-only mount (a tmpfs remounted read-only in a private mount
    namespace) opens with read_only=True and holds the saved labels."""
    if subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("user and mount namespaces are not allowed here")
    media = tmp_path / "media"
    media.mkdir()
    script = textwrap.dedent(f"""
        import subprocess, sys
        media = {str(media)!r}
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", media], check=True)
        from patchwork_widget.labels import LabelStore, prep_label_dataframe
        out = media + "/labels.csv"
        store = LabelStore.open(out, df=prep_label_dataframe({PATHS!r}, {CLASSES!r}))
        store.annotate(2, {{"cat": 1}})
        store.close()
        subprocess.run(["mount", "-o", "remount,ro", media], check=True)
        try:
            open(media + "/probe", "w")
        except OSError:
            pass
        else:
            sys.exit("the mount is still writable")
        reader = LabelStore.open(out, read_only=True)
        print("cat:", reader.df["cat"].tolist()[:3])
        reader.close()
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(["unshare", "-r", "-m", sys.executable, "-c", script],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cat: [nan, nan, 1.0]" in done.stdout


def test_a_refusal_names_the_holder_even_just_after_it_locked(tmp_path):
    """The holder locks the file first and writes its name a moment later: an opener
    refused in between waits for the name rather than saying "another process"."""
    import fcntl

    journal = tmp_path / "labels.csv.journal.sqlite"
    fd = os.open(lock_path(journal), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: refused as a process

        def write_name() -> None:
            time.sleep(0.2)
            os.write(fd, b'{"pid": 4242, "host": "there", "user": "ann", "since": "now"}')

        writer = threading.Thread(target=write_name)
        writer.start()
        with pytest.raises(JournalLockedError) as caught:
            acquire(journal, "me")
        writer.join()
        assert caught.value.holder is not None and caught.value.holder["pid"] == 4242
        assert "process 4242 on host 'there'" in str(caught.value)
    finally:
        os.close(fd)
