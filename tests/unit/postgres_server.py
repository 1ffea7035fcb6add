"""A real, throwaway PostgreSQL server for the team journal tests (issue 16).

:class:`PostgresServer` runs ``initdb`` in a temporary folder and starts the server on a
free loopback port, as the ``postgres`` user when the tests run as root (the server
refuses root). Logins over TCP need a password (scram-sha-256), so the tests exercise
real credentials. The binaries come from ``PATCHWORK_PG_BIN`` if set, else Debian's
``postgresql`` package layout, else ``PATH``; without them the tests fail (not skip)
saying what to install.

Import the ``postgres`` fixture into a test module to use one server per test session;
:func:`wait_until` waits for what another store's listener brings.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

USER = "patchwork"
PASSWORD = "s3cret-team-pw"


def find_binary(name: str) -> Path:
    """The PostgreSQL server program ``name`` (e.g. ``initdb``)."""
    folders = [os.environ["PATCHWORK_PG_BIN"]] if os.environ.get("PATCHWORK_PG_BIN") else []
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    folders += [str(p) for p in reversed(versions)]
    for folder in folders:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"the team journal tests need a PostgreSQL server but {name!r} was not found: "
            "install it (Debian/Ubuntu: apt-get install postgresql) or set "
            "PATCHWORK_PG_BIN to the folder holding initdb and pg_ctl",
            pytrace=False,
        )
    return Path(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A server in a temporary folder; :meth:`stop` removes it."""

    def __init__(self) -> None:
        self._as_postgres = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="patchwork-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(
            find_binary("initdb"), "-D", self.data, "-U", USER, "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(find_binary("pg_ctl"), "-D", self.data, "-l", self.folder / "log", "-o",
                  options, "-w", "start")

    @property
    def url(self) -> str:
        """A URL with the password in it."""
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def url_without_password(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def restart(self) -> None:
        """``pg_ctl restart`` (fast shutdown: connections are dropped)."""
        self._run(find_binary("pg_ctl"), "-D", self.data, "-l", self.folder / "log", "-m",
                  "fast", "-w", "restart")

    def log(self) -> str:
        return (self.folder / "log").read_text(errors="replace")

    def stop(self) -> None:
        try:
            self._run(find_binary("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *argv: object) -> None:
        command = [str(a) for a in argv]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def database_at_version(server: PostgresServer, version: int) -> str:
    """A new database holding the team journal's schema as ``version`` left it (its
    migration steps, nothing after); returns its URL."""
    from patchwork_widget.labels.pg_schema import MIGRATIONS

    name = f"v{version}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        for step in range(1, version + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(sql.SQL(statement).format(schema=sql.Identifier("public")))
        conn.execute("CREATE TABLE patchwork_schema (id integer PRIMARY KEY CHECK (id = 1), "
                     "version integer NOT NULL)")
        conn.execute("INSERT INTO patchwork_schema VALUES (1, %s)", (version,))
    return url


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
