"""Keys people choose (issue 23, item 11): ``PatchworkWidget(keys=...)`` remaps a class and an
action; the toggles, the flags and the help show the chosen keys, the chosen keys label, and
the keys they replaced do nothing (a notebook shortcut never fires either). A rename keeps the
class's chosen key, in the view and in the project's kept choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog
from .labeler_page import (
    NotebookGuard,
    assert_no_labeler_errors,
    current_row,
    open_labeler,
    row_values,
    wait_saved,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]
CHOSEN = {CLASSES[0]: "q", "exclude": "e"}


@pytest.mark.e2e
def test_a_remapped_key_labels_and_the_old_one_does_not(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES, keys=CHOSEN)

    toggles = page.locator(".pw-toggle")
    assert toggles.evaluate_all("ts => ts.map(t => t.dataset.key)") == ["q", "1", "2"]
    assert page.locator(".pw-flag-exclude").get_attribute("data-key") == "e"
    help_line = page.locator(".pw-help").inner_text()
    assert "q 1 2 cycle a class" in help_line and "e exclude" in help_line, help_line

    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    guard = NotebookGuard(page)
    row = current_row(page)
    page.keyboard.press("x")  # exclude's old key: nothing now
    page.keyboard.press("3")  # no class has 3 any more
    page.keyboard.press("q")  # the first class: ? -> yes
    page.keyboard.press("e")  # exclude
    wait_saved(page)
    guard.check("pressing chosen and replaced keys")
    assert row_values(page, row, CLASSES) == {"labels": [1.0, None, None], "exclude": True,
                                              "validation": False}

    # Renaming the class with the chosen key keeps that key (it was reset to a default before).
    renamed = [f"{CLASSES[0]}_renamed", *CLASSES[1:]]
    page.locator(".pw-class-select").select_option(label=CLASSES[0])
    page.locator(".pw-class-name").fill(renamed[0])
    page.locator(".pw-rename").click()
    page.wait_for_function(f"() => document.querySelector('.pw-toggle')?.dataset.class === {renamed[0]!r}")
    assert toggles.evaluate_all("ts => ts.map(t => t.dataset.key)") == ["q", "1", "2"]
    kept = json.loads(Path(f"{outfile}.keys.json").read_text(encoding="utf-8"))
    assert kept == {renamed[0]: "q", "exclude": "e"}, kept
    page.locator(".pw-help").click()
    row = current_row(page)
    page.keyboard.press("q")  # the renamed class, on the same image: yes -> no
    wait_saved(page)
    assert row_values(page, row, renamed)["labels"] == [0.0, None, None]
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
