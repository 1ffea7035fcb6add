"""End-to-end harness: a real JupyterLab / Notebook 7 server driven by Playwright.

The pieces here are plain functions and small classes; ``conftest.py`` wraps them in pytest
fixtures.  Nothing in this module imports Playwright at import time, so collecting the unit
tests never needs a browser.

Typical use inside a test (fixtures from ``tests/e2e/conftest.py``)::

    def test_something(jupyter_server, page):
        write_notebook(jupyter_server.root_dir / "t.ipynb", ["import ipywidgets as W", "W.IntText()"])
        open_notebook(page, jupyter_server, "t.ipynb")
        run_all(page, jupyter_server)
        assert kernel_exec(page, "print(1 + 1)").strip() == "2"

The JavaScript side relies on ``window.jupyterapp``, which the server exposes because it is
started with ``expose_app_in_browser``; every helper talks to the notebook panel that is the
shell's current widget (falling back to the only notebook in the main area).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Sequence, Union
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import ConsoleMessage, Error, Locator, Page

log = logging.getLogger(__name__)

Frontend = Literal["lab", "notebook"]
FRONTENDS: tuple[Frontend, ...] = ("lab", "notebook")

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment variable naming the artifacts folder (screenshots, server and console logs).
ARTIFACTS_ENV = "PATCHWORK_TEST_ARTIFACTS"
#: Environment variable naming the Chromium executable.
CHROMIUM_ENV = "PATCHWORK_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Flags for the system Chromium (see /work/shared/JUPYTER_NOTES.md): no sandbox (we run as
#: root in a container), no GPU, and no background network traffic of any kind.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

VIEWPORT = {"width": 1400, "height": 1000}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def artifacts_dir() -> Path:
    """Folder for screenshots and logs: ``$PATCHWORK_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``.

    The folder is created if needed.  ``/test-artifacts/`` is git-ignored.
    """
    raw = os.environ.get(ARTIFACTS_ENV)
    path = Path(raw).expanduser().resolve() if raw else REPO_ROOT / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium_executable() -> str:
    """The Chromium to drive: ``$PATCHWORK_CHROMIUM`` or ``/usr/bin/chromium``."""
    return os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)


def safe_name(text: str) -> str:
    """Turn a test id such as ``test_x[lab]`` into a file-name-safe string."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "unnamed"


# --------------------------------------------------------------------------------------------
# Notebooks on disk
# --------------------------------------------------------------------------------------------

#: A cell for :func:`write_notebook`: a string is a code cell; ``("markdown", text)`` or
#: ``("code", text)`` names the type explicitly.
CellSpec = Union[str, tuple[Literal["code", "markdown", "raw"], str]]


def write_notebook(path: Path | str, cells: Sequence[CellSpec]) -> Path:
    """Write an nbformat-4 notebook with the given cells and a ``python3`` kernelspec.

    Parameters
    ----------
    path
        Destination ``.ipynb`` file; parent folders are created.
    cells
        Cell sources in order.  A plain string is a code cell; a ``(cell_type, source)`` pair
        makes a ``markdown`` / ``raw`` / ``code`` cell.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.
    """
    import nbformat
    from nbformat import v4

    makers = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}
    nb = v4.new_notebook()
    for spec in cells:
        cell_type, source = ("code", spec) if isinstance(spec, str) else spec
        if cell_type not in makers:
            raise ValueError(f"unknown cell type {cell_type!r}; expected one of {sorted(makers)}")
        nb.cells.append(makers[cell_type](source))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path


# --------------------------------------------------------------------------------------------
# Jupyter server
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Browser-side logs
# --------------------------------------------------------------------------------------------


#: Uncaught page errors that the front end itself raises on every load, whatever the test does.
#: Notebook 7.6: the shortcuts extension's ``pluginChanged`` handler reads
#: ``registry.plugins[id].schema`` for a plugin that is not in the registry (it goes away when
#: ``@jupyterlab/shortcuts-extension`` is disabled, and happens without any third-party
#: extension and without the test's isolation).
KNOWN_PAGE_ERRORS: dict[str, tuple[str, ...]] = {
    "lab": (),
    "notebook": (r"^TypeError: Cannot read properties of undefined \(reading 'schema'\)",),
}


@dataclass
class PageLog:
    """Console messages and uncaught errors of one page, collected while a test runs."""

    console: list[tuple[str, str]] = field(default_factory=list)
    """``(type, text)`` of every console message (``type`` is ``log``, ``warning``, ``error``...)."""
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions and unhandled rejections (Playwright's ``pageerror``)."""

    def attach(self, page: Page) -> None:
        """Start collecting from ``page``."""
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text))

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"{error.name}: {error.message}\n{error.stack or ''}")

    def console_errors(self, ignore: Sequence[str] = ()) -> list[str]:
        """Console messages of type ``error`` whose text matches none of the ``ignore`` regexes."""
        patterns = [re.compile(p) for p in ignore]
        return [
            text
            for kind, text in self.console
            if kind == "error" and not any(p.search(text) for p in patterns)
        ]

    def assert_no_errors(
        self, ignore: Sequence[str] = (), console: bool = False, frontend: str | None = None
    ) -> None:
        """Fail if the page raised an uncaught error (and, with ``console``, logged an error).

        ``ignore`` holds regexes for messages that are expected; with ``frontend``, that front
        end's :data:`KNOWN_PAGE_ERRORS` are ignored too.
        """
        ignore = [*ignore, *KNOWN_PAGE_ERRORS.get(frontend or "", ())]
        patterns = [re.compile(p) for p in ignore]
        problems = [e for e in self.errors if not any(p.search(e) for p in patterns)]
        if console:
            problems += [f"console.error: {t}" for t in self.console_errors(ignore)]
        if problems:
            raise AssertionError("unexpected errors in the page:\n" + "\n---\n".join(problems))

    def dump(self, path: Path) -> Path:
        """Write everything collected to ``path`` (text)."""
        lines = [f"[{kind}] {text}" for kind, text in self.console]
        lines += [f"[pageerror] {e}" for e in self.errors]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path


# --------------------------------------------------------------------------------------------
# Driving a notebook in the page
# --------------------------------------------------------------------------------------------

# JS prelude shared by the helpers: finds the notebook panel (JupyterLab and Notebook 7 both
# expose the application as window.jupyterapp when started with expose_app_in_browser).
_FIND_PANEL = """
const __findPanel = () => {
  const app = window.jupyterapp;
  if (!app) { return null; }
  const isNb = (w) => !!(w && w.sessionContext && w.content && w.content.model
                         && w.content.model.sharedModel && w.content.model.sharedModel.cells);
  const current = app.shell.currentWidget;
  if (isNb(current)) { return current; }
  const found = [];
  for (const w of app.shell.widgets('main')) { if (isNb(w)) { found.push(w); } }
  return found.length === 1 ? found[0] : null;
};
"""

_KERNEL_STATUS_JS = (
    "() => {"
    + _FIND_PANEL
    + """
  const panel = __findPanel();
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}"""
)

_KERNEL_IDLE_JS = "() => (" + _KERNEL_STATUS_JS + ")() === 'idle'"


def kernel_status(page: Page) -> str | None:
    """Status of the open notebook's kernel (``idle``, ``busy``, ...), or None if there is none."""
    return page.evaluate(_KERNEL_STATUS_JS)


def wait_kernel_idle(page: Page, timeout: float = 60.0) -> None:
    """Wait until the open notebook has a kernel whose status is ``idle``.

    This reads ``sessionContext.session.kernel.status`` (works in JupyterLab and Notebook 7);
    the toolbar's idle indicator is shown before the kernel even exists, so it is not used.
    """
    page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout * 1000, polling=100)


def open_notebook(page: Page, server: JupyterServer, name: str, timeout: float = 90.0) -> None:
    """Open notebook ``name`` (relative to ``server.root_dir``) and wait for an idle kernel.

    Goes to ``/lab/tree/<name>?reset`` (JupyterLab) or ``/notebooks/<name>`` (Notebook 7),
    accepts a "Select Kernel" dialog if one appears, and returns once the notebook panel is
    current and its kernel reports ``idle``.
    """
    page.goto(server.notebook_url(name), wait_until="domcontentloaded")
    deadline = time.monotonic() + timeout
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    while True:
        try:
            if page.evaluate(_KERNEL_IDLE_JS):
                break
        except Exception as exc:  # noqa: BLE001 - a reload or redirect destroys the JS context
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
        # A cold start can still ask which kernel to use even with autoStartDefaultKernel.
        if accept.count() > 0:
            with contextlib.suppress(Exception):
                accept.first.click(timeout=2000)
        if time.monotonic() > deadline:
            status = page.evaluate(_KERNEL_STATUS_JS)
            raise TimeoutError(
                f"notebook {name!r} had no idle kernel after {timeout}s (kernel status: {status}); "
                f"server log {server.log_path}:\n{server.log_tail()}"
            )
        page.wait_for_timeout(200)


_RUN_ALL_START_JS = """() => {
  window.__pwRunAll = { done: false, ok: null, error: null };
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    (ok) => { window.__pwRunAll.done = true; window.__pwRunAll.ok = ok; },
    (err) => { window.__pwRunAll.done = true; window.__pwRunAll.error = String(err); });
}"""

_RUN_ALL_DONE_JS = (
    "() => {"
    + _FIND_PANEL
    + """
  const state = window.__pwRunAll;
  if (!state || !state.done) { return false; }
  const panel = __findPanel();
  if (!panel) { return false; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') { return false; }
  for (const cell of panel.content.model.sharedModel.cells) {
    if (cell.cell_type === 'code' && cell.execution_count == null) { return false; }
  }
  return true;
}"""
)

_CELL_ERRORS_JS = (
    "() => {"
    + _FIND_PANEL
    + """
  const errors = [];
  for (const cell of __findPanel().content.model.sharedModel.cells) {
    if (cell.cell_type !== 'code') { continue; }
    for (const out of cell.outputs || []) {
      const o = (out && typeof out.toJSON === 'function') ? out.toJSON() : out;
      if (o && o.output_type === 'error') {
        errors.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'));
      }
    }
  }
  return errors;
}"""
)


def run_all(
    page: Page, server: JupyterServer | None = None, timeout: float = 120.0, check: bool = True
) -> None:
    """Run all cells of the open notebook and wait until they have finished.

    Executes ``notebook:run-all-cells`` without awaiting it inside ``page.evaluate``, then waits
    until the command's promise has settled, the kernel is idle again and every code cell has an
    execution count.

    Parameters
    ----------
    check
        Raise :class:`AssertionError` with the tracebacks if any cell's output is an error.
    """
    page.evaluate(_RUN_ALL_START_JS)
    try:
        page.wait_for_function(_RUN_ALL_DONE_JS, timeout=timeout * 1000, polling=100)
    except Exception as exc:
        tail = f"; server log {server.log_path}:\n{server.log_tail()}" if server else ""
        raise TimeoutError(f"run-all did not finish within {timeout}s{tail}") from exc
    state = page.evaluate("() => window.__pwRunAll")
    if state.get("error"):
        raise RuntimeError(f"notebook:run-all-cells failed: {state['error']}")
    if check:
        errors = [_ANSI.sub("", e) for e in page.evaluate(_CELL_ERRORS_JS)]
        if errors:
            raise AssertionError("cells raised errors:\n" + "\n---\n".join(errors))


class KernelError(RuntimeError):
    """Code run by :func:`kernel_exec` raised; the message is the traceback (ANSI-free)."""

    def __init__(self, ename: str, evalue: str, traceback: str, stdout: str) -> None:
        super().__init__(f"{ename}: {evalue}\n{traceback}")
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.stdout = stdout


_KERNEL_EXEC_JS = (
    "async ({ code, timeoutMs }) => {"
    + _FIND_PANEL
    + """
  const panel = __findPanel();
  if (!panel) { throw new Error('no notebook panel is open'); }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) { throw new Error('the notebook has no kernel'); }
  const result = { stdout: '', stderr: '', status: null, ename: '', evalue: '', traceback: [] };
  const future = kernel.requestExecute(
    { code, silent: false, store_history: false, stop_on_error: true, allow_stdin: false });
  future.onIOPub = (msg) => {
    const type = msg.header.msg_type;
    if (type === 'stream') {
      if (msg.content.name === 'stdout') { result.stdout += msg.content.text; }
      else { result.stderr += msg.content.text; }
    } else if (type === 'error') {
      result.ename = msg.content.ename; result.evalue = msg.content.evalue;
      result.traceback = msg.content.traceback;
    }
  };
  let timer;
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('kernel_exec timed out after ' + timeoutMs + ' ms')), timeoutMs);
  });
  try {
    const reply = await Promise.race([future.done, timedOut]);
    result.status = reply.content.status;
    if (reply.content.status === 'error' && !result.ename) {
      result.ename = reply.content.ename; result.evalue = reply.content.evalue;
      result.traceback = reply.content.traceback || [];
    }
  } finally {
    clearTimeout(timer);
  }
  return result;
}"""
)


def kernel_exec(page: Page, code: str, timeout: float = 30.0) -> str:
    """Run ``code`` in the open notebook's kernel and return what it printed to stdout.

    The request goes through ``sessionContext.session.kernel.requestExecute`` with
    ``store_history=False``, so cells' execution counts are untouched and nothing appears in
    the notebook.  This is how tests read Python state, e.g.
    ``kernel_exec(page, "print(w.value)")``.

    Raises
    ------
    KernelError
        If the code raised; the message holds the traceback without ANSI colours.
    """
    result = page.evaluate(_KERNEL_EXEC_JS, {"code": code, "timeoutMs": int(timeout * 1000)})
    if result["status"] != "ok":
        traceback = _ANSI.sub("", "\n".join(result.get("traceback") or []))
        raise KernelError(result.get("ename", ""), result.get("evalue", ""), traceback, result["stdout"])
    return result["stdout"]


def wait_for_kernel_output(
    page: Page, code: str, expected: str, timeout: float = 10.0, interval: float = 0.2
) -> str:
    """Run ``code`` repeatedly until its stdout, stripped, equals ``expected``.

    For state that reaches Python asynchronously (widget traits synced over the comm).  Returns
    the last output; raises :class:`AssertionError` with it on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = kernel_exec(page, code).strip()
        if out == expected:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{code!r} printed {out!r}, expected {expected!r} (waited {timeout}s)")
        time.sleep(interval)


class CellSnapshot(NamedTuple):
    """Type and source of one cell, as the front end's notebook model holds them."""

    cell_type: str
    source: str


_CELLS_JS = (
    "() => {"
    + _FIND_PANEL
    + """
  const panel = __findPanel();
  if (!panel) { throw new Error('no notebook panel is open'); }
  return panel.content.model.sharedModel.cells.map((c) => [c.cell_type, c.getSource()]);
}"""
)


def notebook_cells_snapshot(page: Page) -> list[CellSnapshot]:
    """Types and sources of the open notebook's cells, read from the front end's model.

    Kernel-independent: compare snapshots before and after key presses to prove that no cell
    was inserted, deleted, changed or converted.
    """
    return [CellSnapshot(kind, source) for kind, source in page.evaluate(_CELLS_JS)]


def screenshot(target: Page | Locator, name: str, folder: Path | None = None) -> Path:
    """Save a PNG of a page or locator into the artifacts folder and return its path.

    Screenshot a locator (a cell, an output) rather than the page when the notebook scrolls:
    ``full_page`` does not capture JupyterLab's inner scrolling.
    """
    folder = folder or artifacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(name.removesuffix('.png'))}.png"
    target.screenshot(path=str(path))
    return path


def reset_artifact(path: Path) -> None:
    """Remove a file or folder from a previous run (used for per-session logs)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
