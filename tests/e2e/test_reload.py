"""A reload keeps the place, and a re-pressed key does not flip a label given before it.

After a page reload (or the output shown again) the view started at the first image of the
queue although the kernel knew the cursor; pressing the class key again there, out of habit,
cycled the label given before the reload (yes became no). The view now starts at the kernel's
cursor, and the first press of a class key on a class already set when the cursor arrived
changes nothing and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, reload_notebook
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


@pytest.mark.e2e
def test_reload_mid_sample_returns_to_the_same_image_and_keeps_its_labels(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)
    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    row = current_row(page)
    page.keyboard.press("1")  # ? -> yes
    page.keyboard.press("2")  # ? -> yes
    page.keyboard.press("2")  # yes -> no (the same visit)
    labeled = {"labels": [1.0, 0.0, None], "exclude": False, "validation": False}
    wait_row_values(page, row, CLASSES, labeled)
    wait_saved(page)

    reload_notebook(page, jupyter_server, notebook_name)
    wait_widget_ready(page, thumbs=1)
    assert current_row(page) == row, "the reloaded view did not return to the image it was on"
    assert page.locator(".pw-position").inner_text().startswith("8 / 50")

    page.locator(".pw-help").click()
    page.keyboard.press("1")  # out of habit: must not turn yes into no
    page.keyboard.press("2")  # nor no into ?
    message = page.locator(".pw-message")
    message.filter(has_text=f"{CLASSES[1]} is already no: press 2 again").wait_for()
    wait_saved(page)
    assert row_values(page, row, CLASSES) == labeled
    toggle = page.locator(f".pw-toggle[data-class='{CLASSES[0]}']")
    assert toggle.get_attribute("data-value") == "1"

    page.keyboard.press("1")  # the second press of the visit does change it
    wait_row_values(page, row, CLASSES, {**labeled, "labels": [0.0, 0.0, None]})
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
