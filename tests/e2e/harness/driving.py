"""Driving a notebook in the page: open it, run it, run code in its kernel, read its cells.

Every helper talks to the notebook panel that is the shell's current widget (falling back to the
only notebook in the main area), through ``window.jupyterapp``.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .paths import artifacts_dir, safe_name

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Locator, Page

    from .servers import JupyterServer

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

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


def reload_notebook(page: Page, server: JupyterServer, name: str, timeout: float = 90.0) -> None:
    """Save the open notebook (so its widget outputs come back), reload the page and wait for
    the notebook's kernel, the same one as before, to be idle again.

    A widget view renders again after a reload only when the notebook was saved with its
    output; the page's ``beforeunload`` prompt is accepted, or the reload would be cancelled.
    """
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return !!w && !!w.context && !w.context.model.dirty; }"
    )
    accept = lambda dialog: dialog.accept()  # noqa: E731 - a one-line dialog handler
    page.on("dialog", accept)
    try:
        open_notebook(page, server, name, timeout=timeout)
    finally:
        page.remove_listener("dialog", accept)


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

