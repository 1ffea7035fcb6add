"""End-to-end harness: a real JupyterLab / Notebook 7 server driven by Playwright.

The pieces are plain functions and small classes, one module per job; ``conftest.py`` wraps
them in pytest fixtures:

- ``paths``: artifacts folder, Chromium executable, front-end names, file-name helpers;
- ``notebooks``: notebooks on disk;
- ``servers``: isolated Jupyter servers (start, stop, REST calls) and the per-front-end pool;
- ``pagelog``: console messages and page errors, and the front ends' known noise;
- ``driving``: opening and running a notebook in the page, kernel code, cell snapshots.

Nothing here imports Playwright at import time, so collecting the unit tests never needs a
browser.

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

from .driving import (
    CellSnapshot,
    KernelError,
    kernel_exec,
    kernel_status,
    notebook_cells_snapshot,
    open_notebook,
    reload_notebook,
    run_all,
    screenshot,
    wait_for_kernel_output,
    wait_kernel_idle,
)
from .notebooks import CellSpec, write_notebook
from .pagelog import KNOWN_PAGE_ERRORS, PageLog
from .paths import (
    ARTIFACTS_ENV,
    CHROMIUM_ARGS,
    CHROMIUM_ENV,
    DEFAULT_CHROMIUM,
    FRONTENDS,
    REPO_ROOT,
    VIEWPORT,
    Frontend,
    artifacts_dir,
    chromium_executable,
    reset_artifact,
    safe_name,
)
from .servers import JupyterServer, ServerPool, free_port, isolated_env, start_server

__all__ = [
    "ARTIFACTS_ENV", "CHROMIUM_ARGS", "CHROMIUM_ENV", "DEFAULT_CHROMIUM", "FRONTENDS",
    "KNOWN_PAGE_ERRORS", "REPO_ROOT", "VIEWPORT", "CellSnapshot", "CellSpec", "Frontend",
    "JupyterServer", "KernelError", "PageLog", "ServerPool", "artifacts_dir",
    "chromium_executable", "free_port", "isolated_env", "kernel_exec", "kernel_status",
    "notebook_cells_snapshot", "open_notebook", "reload_notebook", "reset_artifact", "run_all", "safe_name",
    "screenshot", "start_server", "wait_for_kernel_output", "wait_kernel_idle", "write_notebook",
]
