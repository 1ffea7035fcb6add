"""Every class is reachable from the keyboard: a 12-class table labeled by keys only.

Classes 1-9 have the digits; the tenth and later have the letters no other action uses, in
alphabetical order (b, c, d, ...). Each toggle shows its key and carries ``data-class`` and
``data-key``; the help line lists the same keys. Removing a class keeps every other class's
key (issue 23, item 10): the keys of the later ones do not move, and they still label.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, kernel_exec
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

CLASSES = [*demo_classes(), "moss"]
KEYS = [str(i) for i in range(1, 10)] + ["b", "c", "d"]
N_IMAGES = 8


def expected_labels(i: int) -> list[float]:
    """Image i: two classes yes (i and i + 5), the rest no; odd images cycle one class to no."""
    return [1.0 if c in (i % 12, (i + 5) % 12) else 0.0 for c in range(len(CLASSES))]


def label_image(page: Page, i: int) -> None:
    for c in sorted({i % 12, (i + 5) % 12}):
        page.keyboard.press(KEYS[c])  # ? -> yes
    if i % 2:
        other = (i + 9) % 12
        page.keyboard.press(KEYS[other])  # ? -> yes
        page.keyboard.press(KEYS[other])  # yes -> no
    page.keyboard.press("0")  # the rest are no; next image


@pytest.mark.e2e
def test_twelve_classes_labeled_by_keyboard_only(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)

    toggles = page.locator(".pw-toggle")
    assert toggles.evaluate_all("ts => ts.map(t => t.dataset.class)") == CLASSES
    assert toggles.evaluate_all("ts => ts.map(t => t.dataset.key)") == KEYS
    assert page.locator(".pw-toggle .pw-key").all_inner_texts() == KEYS
    assert "1-9, then b c d cycle a class" in page.locator(".pw-help").inner_text()

    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    guard = NotebookGuard(page)
    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))
    for i in range(N_IMAGES):
        label_image(page, i)
    wait_saved(page)
    guard.check("labeling 12 classes by keyboard")

    code = (
        "import json\n"
        f"_t = widget.df.iloc[{queue[: N_IMAGES + 1]!r}][{CLASSES!r}]\n"
        "print(json.dumps([[None if v != v else float(v) for v in r] for r in _t.to_numpy().tolist()]))"
    )
    table = json.loads(kernel_exec(page, code))
    for i in range(N_IMAGES):
        assert table[i] == expected_labels(i), f"image {i} (row {queue[i]})"
    assert table[N_IMAGES] == [None] * len(CLASSES), "the image after the last one was labeled"

    # Removing the second class moves no other key: each later class still answers its own.
    page.locator(".pw-class-select").select_option(label=CLASSES[1])
    page.locator(".pw-remove").click()
    page.locator(".pw-remove").click()  # the second click confirms
    page.wait_for_function(f"() => document.querySelectorAll('.pw-toggle').length === {len(CLASSES) - 1}")
    kept = [k for c, k in enumerate(KEYS) if c != 1]
    assert toggles.evaluate_all("ts => ts.map(t => t.dataset.key)") == kept
    assert "Keys changed" not in page.locator(".pw-message").inner_text()
    left = [c for i, c in enumerate(CLASSES) if i != 1]
    # The view fetches the rows' values again for the new class list; a key waits for them.
    page.wait_for_function("() => patchworkViews.at(-1).control.state.current !== undefined")
    page.locator(".pw-help").click()
    row = current_row(page)
    page.keyboard.press(KEYS[-1])  # the last class's key, as before the removal: ? -> yes
    page.keyboard.press(KEYS[2])  # the third class's: ? -> yes
    wait_saved(page)
    assert row_values(page, row, left)["labels"] == [
        1.0 if c in (CLASSES[-1], CLASSES[2]) else None for c in left]
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
