"""Where the keyboard goes: back to the labeler after a tab click or a sample by Enter, and to
the notebook on Esc.

After a click on a tab (Model, then Label) the next key went nowhere until a click; Esc left
the focus on the page body, where no notebook shortcut works; the count box kept the focus
after Enter, so the next digit went into the count (`200`, Enter, `1` gave `2001`); a menu
closed with Esc kept the focus, so a second Esc was needed before the keys labeled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, notebook_cells_snapshot
from .labeler_page import (
    assert_no_labeler_errors,
    current_row,
    open_labeler,
    row_values,
    wait_row_values,
    wait_saved,
    wait_widget_ready,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]


def press_and_expect_label(page: Page, key: str, index: int) -> None:
    """``key`` (unset class ``index`` of the current image) is taken by the labeler: yes."""
    row = current_row(page)
    before = row_values(page, row, CLASSES)
    assert before["labels"][index] is None, f"row {row} already has class {index}"
    page.keyboard.press(key)
    labels = list(before["labels"])
    labels[index] = 1.0
    wait_row_values(page, row, CLASSES, {**before, "labels": labels})
    wait_saved(page)


@pytest.mark.e2e
def test_keys_go_to_the_labeler_after_a_tab_click_and_enter_and_to_the_notebook_after_esc(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)

    # A tab click, then a key: the labeler has it.
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_role("tab", name="Label", exact=True).click()
    press_and_expect_label(page, "1", 0)

    # Enter in the count box samples, and the next key labels instead of extending the count.
    box = page.locator(".pw-count")
    box.click()
    box.press("Control+a")
    page.keyboard.type("20")
    page.keyboard.press("Enter")
    page.wait_for_function("() => / \\/ 20 /.test(document.querySelector('.pw-position').textContent)")
    wait_widget_ready(page, thumbs=1)
    press_and_expect_label(page, "2", 1)
    assert box.input_value() == "20"

    # A menu that keeps the focus (closed with Esc, which the page never sees) lets a class
    # key label at once, without a second Esc.
    page.locator(".pw-order").focus()
    press_and_expect_label(page, "3", 2)
    assert page.evaluate("() => document.activeElement === document.querySelector('.pw-root')")

    # Esc hands the keys to the notebook: a notebook shortcut works right after it.
    cells = notebook_cells_snapshot(page)
    page.keyboard.press("Escape")
    in_cell = page.evaluate(
        "() => !!document.activeElement.closest('.jp-Notebook')"
        " && !document.querySelector('.pw-root').contains(document.activeElement)"
    )
    assert in_cell, "Esc did not hand the focus to the notebook"
    page.keyboard.press("b")  # command mode: insert a cell below
    page.wait_for_function(
        "(n) => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.length === n",
        arg=len(cells) + 1,
    )
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
