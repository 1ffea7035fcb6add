"""Smoke test of the e2e harness itself: a plain ipywidgets IntText in Lab and Notebook 7.

If this fails, the harness (server, browser, helpers) is broken, not patchwork_widget.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from .harness import (
    CellSnapshot,
    JupyterServer,
    KernelError,
    PageLog,
    kernel_exec,
    notebook_cells_snapshot,
    open_notebook,
    run_all,
    screenshot,
    wait_for_kernel_output,
    write_notebook,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CELLS = [
    ("markdown", "# Harness smoke test\nA widget, and a cell after it."),
    "import ipywidgets as widgets\nw = widgets.IntText(value=1, description='n')\nw",
    "after = 'ran'",
]


@pytest.mark.e2e
def test_widget_round_trip(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str
) -> None:
    """Open, run, type into an IntText, read it back in Python; the cells stay untouched."""
    write_notebook(jupyter_server.root_dir / notebook_name, CELLS)
    open_notebook(page, jupyter_server, notebook_name)
    before = notebook_cells_snapshot(page)
    assert before == [
        CellSnapshot("markdown", CELLS[0][1]),
        CellSnapshot("code", CELLS[1]),
        CellSnapshot("code", CELLS[2]),
    ]

    run_all(page, jupyter_server)
    assert kernel_exec(page, "print(w.value, after)") == "1 ran\n"

    # The kernel runs on the test's interpreter, with the server's isolated HOME.
    where = kernel_exec(page, "import os, sys; print(sys.executable); print(os.environ['HOME'])")
    assert where.splitlines() == [sys.executable, jupyter_server.env["HOME"]]

    # Type a new value with the keyboard into the rendered widget.
    field = page.locator(".widget-text input")
    field.wait_for(state="visible")
    field.click()
    page.keyboard.press("Control+a")  # select the "1" inside the input, not all cells
    page.keyboard.type("4217")
    page.keyboard.press("Enter")
    wait_for_kernel_output(page, "print(repr(w.value))", "4217")

    # Python -> browser: a value set in the kernel reaches the rendered input.
    kernel_exec(page, "w.value = 7")
    page.wait_for_function("() => document.querySelector('.widget-text input').value === '7'")

    # Errors in kernel code surface as KernelError with the traceback.
    with pytest.raises(KernelError, match="ZeroDivisionError"):
        kernel_exec(page, "1 / 0")

    # Typing digits and Enter inside the widget did not touch the notebook's cells.
    assert notebook_cells_snapshot(page) == before

    shot = screenshot(page.locator(".jp-Notebook").first, f"harness-smoke-{jupyter_server.frontend}")
    assert shot.stat().st_size > 0
    page_log.assert_no_errors(frontend=jupyter_server.frontend)
