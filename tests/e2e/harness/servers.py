"""Jupyter servers for the e2e tests: isolated state, free ports, start, stop, REST calls."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from .paths import FRONTENDS, Frontend, reset_artifact

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(base: Path) -> dict[str, str]:
    """Environment for a Jupyter server whose user-level state all lives under ``base``.

    HOME, the Jupyter config / data / runtime folders, the JupyterLab settings and workspaces
    folders and IPYTHONDIR all point into ``base``.  The interpreter's own prefix
    (``sys.prefix/share/jupyter`` and ``sys.prefix/etc/jupyter``) stays on Jupyter's search
    path, so the venv's ``python3`` kernelspec, the ipywidgets / anywidget lab extensions and
    the server extension config are still found.  User settings written here switch on kernel
    auto-start and switch off news and update checks.
    """
    dirs = {
        "HOME": base / "home",
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": base / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
        "IPYTHONDIR": base / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab"
    # autoStartDefaultKernel belongs to the notebook tracker plugin in JupyterLab 4 / Notebook 7
    # (the docmanager plugin's schema rejects it and the server then ignores the whole file).
    _write_json(
        settings / "notebook-extension" / "tracker.jupyterlab-settings",
        {"autoStartDefaultKernel": True},
    )
    # No news / update requests, and no toasts that could cover the notebook or eat clicks.
    _write_json(
        settings / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    )
    # No "build recommended" check: it shells out to node on every JupyterLab page load.
    _write_json(
        dirs["JUPYTER_CONFIG_DIR"] / "labconfig" / "page_config.json",
        {"buildCheck": False, "buildAvailable": False},
    )

    env = {
        key: value
        for key, value in os.environ.items()
        # A developer's own Jupyter / IPython settings must not leak into the test server.
        if not key.startswith(("JUPYTER", "IPYTHON")) and key not in {"PYTHONSTARTUP"}
    }
    env.update({key: str(path) for key, path in dirs.items()})
    env["PYTHONUNBUFFERED"] = "1"
    # The kernel is started with sys.executable (jupyter_client rewrites a kernelspec argv of
    # "python"), but keep the venv's bin first on PATH for anything spawned by name.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` / ``jupyter notebook`` started by :func:`start_server`."""

    frontend: Frontend
    port: int
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self.port}/"

    def notebook_url(self, name: str) -> str:
        """URL that opens notebook ``name`` (relative to ``root_dir``) in this front end.

        JupyterLab gets ``?reset`` so no saved workspace is restored.
        """
        quoted = quote(name)
        if self.frontend == "lab":
            return f"{self.base_url}lab/tree/{quoted}?reset"
        return f"{self.base_url}notebooks/{quoted}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def is_running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None

    def api(self, method: str, path: str, timeout: float = 10.0) -> object:
        """Call the server's REST API (``path`` like ``api/sessions``) and decode the JSON answer.

        Non-GET requests carry the XSRF cookie and header the server insists on when it runs
        without a token.
        """
        headers: dict[str, str] = {}
        if method.upper() not in {"GET", "HEAD"}:
            token = self._xsrf_token()
            headers = {"X-XSRFToken": token, "Cookie": f"_xsrf={token}"}
        request = urllib.request.Request(
            self.base_url + path.lstrip("/"), method=method.upper(), headers=headers
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _xsrf_token(self) -> str:
        page = "lab" if self.frontend == "lab" else "tree"
        with urllib.request.urlopen(self.base_url + page, timeout=10) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                match = re.match(r"_xsrf=([^;]+)", header)
                if match:
                    return match.group(1)
        raise RuntimeError(f"jupyter {self.frontend} did not set an _xsrf cookie")

    def shutdown_sessions(self) -> int:
        """Delete every session (and so shut down its kernel); return how many there were.

        Called after each test so kernels from earlier tests do not pile up.
        """
        sessions = self.api("GET", "api/sessions")
        assert isinstance(sessions, list)
        for session in sessions:
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"api/sessions/{session['id']}")
        return len(sessions)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, which shuts kernels down), then kill if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("jupyter %s did not stop within %ss; killing it", self.frontend, timeout)
            self.process.kill()
            self.process.wait(timeout=timeout)


def start_server(
    frontend: Frontend,
    root_dir: Path,
    state_dir: Path,
    log_path: Path,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
) -> JupyterServer:
    """Start ``python -m jupyterlab`` or ``python -m notebook`` and wait until it answers.

    Parameters
    ----------
    frontend
        ``"lab"`` for JupyterLab, ``"notebook"`` for Notebook 7.
    root_dir
        The server's root: tests write their notebooks here.
    state_dir
        Folder for the isolated HOME / config / data / runtime / settings (see
        :func:`isolated_env`).
    log_path
        File that receives the server's stdout and stderr.
    timeout
        Seconds to wait for ``/api/status`` to answer.
    extra_args
        More command-line options for the server.

    Raises
    ------
    RuntimeError
        If the server exits early or does not answer in time; the message carries the tail of
        its log.
    """
    if frontend not in FRONTENDS:
        raise ValueError(f"unknown front end {frontend!r}; expected one of {FRONTENDS}")
    module, app = ("jupyterlab", "LabApp") if frontend == "lab" else ("notebook", "JupyterNotebookApp")
    env = isolated_env(state_dir)
    root_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    last_error = ""
    for _attempt in range(3):  # the free port can be taken between probing and binding
        port = free_port()
        cmd = [
            sys.executable, "-m", module,
            "--no-browser",
            f"--port={port}",
            "--ServerApp.port_retries=0",  # fail instead of silently moving to another port
            "--ServerApp.ip=127.0.0.1",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={root_dir}",
            "--allow-root",
            f"--{app}.expose_app_in_browser=True",
            *extra_args,
        ]  # fmt: skip
        with open(log_path, "ab") as log_file:
            log_file.write(f"$ {' '.join(cmd)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                cmd,
                cwd=root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = JupyterServer(frontend, port, root_dir, log_path, process, env)
        try:
            _wait_for_status(server, timeout)
            return server
        except RuntimeError as exc:
            server.stop()
            last_error = str(exc)
            if "address already in use" not in server.log_tail().lower():
                break
    raise RuntimeError(last_error)


class ServerPool:
    """Starts at most one server per front end, lazily, and stops them all at the end.

    Each front end gets its own root folder (``<base>/<frontend>/root``), isolated state folder
    and log file ``<log_dir>/server-<frontend>.log``.
    """

    def __init__(self, base: Path, log_dir: Path, timeout: float = 60.0) -> None:
        self.base = base
        self.log_dir = log_dir
        self.timeout = timeout
        self._servers: dict[str, JupyterServer] = {}
        self._started: set[str] = set()

    def get(self, frontend: Frontend) -> JupyterServer:
        """The running server for ``frontend``, started on first use."""
        server = self._servers.get(frontend)
        if server is not None and server.is_running():
            return server
        log_path = self.log_dir / f"server-{frontend}.log"
        if frontend not in self._started:  # a restart appends, keeping the crashed server's log
            reset_artifact(log_path)
            self._started.add(frontend)
        server = start_server(
            frontend,
            root_dir=self.base / frontend / "root",
            state_dir=self.base / frontend / "state",
            log_path=log_path,
            timeout=self.timeout,
        )
        self._servers[frontend] = server
        return server

    def stop_all(self) -> None:
        """Stop every server started by this pool."""
        for server in self._servers.values():
            server.stop()
        self._servers.clear()


def _wait_for_status(server: JupyterServer, timeout: float) -> None:
    url = f"{server.base_url}api/status"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_running():
            raise RuntimeError(
                f"jupyter {server.frontend} exited with code {server.process.returncode} before "
                f"answering; log {server.log_path}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"jupyter {server.frontend} did not answer {url} within {timeout}s; "
        f"log {server.log_path}:\n{server.log_tail()}"
    )
