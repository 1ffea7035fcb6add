"""Shift-click selects a range; Esc clears a selection before it leaves the widget.

Shift-click acted like Ctrl-click (one more image) instead of selecting the range, and Esc with
a selection left the widget. The selected mark is drawn to show in light and dark themes
(screenshots `selection-<front end>-<theme>.png`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, kernel_exec, screenshot
from .labeler_page import assert_no_labeler_errors, dark_theme, open_labeler, wait_saved

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]


@pytest.mark.e2e
def test_shift_click_selects_five_and_esc_clears_them(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)
    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))
    cells = page.locator(".pw-cell")
    cells.nth(1).click()
    cells.nth(5).click(modifiers=["Shift"])
    assert page.locator(".pw-cell.pw-selected").count() == 5
    assert "5 selected" in page.locator(".pw-position").inner_text()
    screenshot(page.locator(".pw-main"), f"selection-{jupyter_server.frontend}-light")
    if jupyter_server.frontend == "lab":
        with dark_theme(page):
            screenshot(page.locator(".pw-main"), "selection-lab-dark")

    page.keyboard.press("1")  # every selected image: yes
    wait_saved(page)
    code = f"import json; print(json.dumps(widget.df[{CLASSES[0]!r}].iloc[{queue[:7]!r}].fillna(-1).tolist()))"
    assert json.loads(kernel_exec(page, code)) == [-1, 1, 1, 1, 1, 1, -1]

    page.keyboard.press("Escape")  # clears the selection, keeps the keyboard
    assert page.locator(".pw-cell.pw-selected").count() == 0
    assert page.evaluate("() => document.querySelector('.pw-root').contains(document.activeElement)")
    assert "selected" not in page.locator(".pw-position").inner_text()
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
