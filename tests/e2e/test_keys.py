"""Keys stay in the labeler after any click inside it, in JupyterLab and Notebook 7.

Notebook 7 ran its command-mode shortcuts on keys pressed after a click on a button inside the
widget (`a` inserted a cell, `x` cut one, `0` twice asked to restart the kernel). Here every kind
of control is clicked, then the notebook-shortcut keys are pressed: the widget must act on each
and the notebook must not change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog
from .labeler_page import (
    NotebookGuard,
    assert_no_labeler_errors,
    current_row,
    first_press,
    open_labeler,
    row_values,
    wait_row_values,
    wait_saved,
    wait_widget_ready,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:4]


def click_select(css: str, label: str) -> Callable[[Page], None]:
    def act(page: Page) -> None:
        select = page.locator(css)
        select.focus()
        select.select_option(label=label)

    return act


def click(css: str, nth: int = 0) -> Callable[[Page], None]:
    return lambda page: page.locator(css).nth(nth).click()


def type_count(page: Page) -> None:
    """Type a sample size (digits stay in the box), then Esc hands the keys back to the widget."""
    box = page.locator(".pw-count")
    box.click()
    box.press("Control+a")
    page.keyboard.type("12")
    assert box.input_value() == "12", "digits typed into the count box did not reach it"
    page.keyboard.press("Escape")


def sample(page: Page) -> None:
    page.locator(".pw-sample").click()
    page.wait_for_function("() => /\\/ 12 /.test(document.querySelector('.pw-position').textContent)")
    wait_widget_ready(page, thumbs=1)


def save(page: Page) -> None:
    page.locator(".pw-save").click()
    page.locator(".pw-message").filter(has_text="Saved to").wait_for()


def refused_class_name(page: Page) -> None:
    """A class name the kernel refuses stays in the box, with the reason on screen."""
    box = page.locator(".pw-class-name")
    box.fill(CLASSES[0])
    page.locator(".pw-add").click()
    page.locator(".pw-message[data-error='true']").filter(has_text=CLASSES[0]).wait_for()
    assert box.input_value() == CLASSES[0], "the refused name was erased from the box"


# Every kind of control inside the widget, in an order that keeps the queue non-empty.
CONTROLS: list[tuple[str, Callable[[Page], None]]] = [
    ("a class toggle", click(".pw-toggle", 1)),
    ("the exclude flag", click(".pw-flag-exclude")),
    ("the validation flag", click(".pw-flag-validation")),
    ("a grid cell", click(".pw-cell", 2)),
    ("the subset menu", click_select(".pw-subset", "unlabeled for")),
    ("the subset's class menu", click_select(".pw-subset-class", CLASSES[2])),
    ("the subset menu again", click_select(".pw-subset", "all images")),
    ("the order menu", click_select(".pw-order", "random")),
    ("the random-share menu", click_select(".pw-random-share", "+20% random")),
    ("the count box", type_count),
    ("the Sample button", sample),
    ("the Save button", save),
    ("the class menu", click_select(".pw-class-select", CLASSES[1])),
    ("the Remove button (armed, not confirmed)", click(".pw-remove")),
    ("Add class with a name already taken", refused_class_name),
]


def press_keys_and_check(page: Page) -> None:
    """Press the notebook's shortcut keys; check that the widget acted on each."""
    row = current_row(page)
    before = row_values(page, row, CLASSES)
    # `1` cycles the first class, `x` toggles exclude, `0` sets the other classes to "no" and
    # moves on: in command mode these would change a cell type, cut a cell, restart the kernel.
    for key in ["1", "x", "0"]:
        page.keyboard.press(key)
    expected = {
        "labels": [first_press(before["labels"][0])] + [0.0 if v is None else v for v in before["labels"][1:]],
        "exclude": not before["exclude"],
        "validation": before["validation"],
    }
    wait_row_values(page, row, CLASSES, expected, timeout=10)
    next_row = current_row(page)
    assert next_row != row, "`0` did not move to the next image"
    # `a` asks for suggestions (none yet: the widget says so); `b` and `m` belong to no action.
    for key in ["a", "b", "m"]:
        page.keyboard.press(key)
    page.locator(".pw-message").filter(has_text="No model predictions yet.").wait_for()
    before = row_values(page, next_row, CLASSES)
    page.keyboard.press("2")
    after = dict(before, labels=[before["labels"][0], first_press(before["labels"][1]), *before["labels"][2:]])
    wait_row_values(page, next_row, CLASSES, after, timeout=10)
    wait_saved(page)


@pytest.mark.e2e
def test_keys_stay_in_the_widget_after_clicks(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)
    guard = NotebookGuard(page)

    for step, act in CONTROLS:
        act(page)
        wait_saved(page)
        try:
            press_keys_and_check(page)
        except AssertionError as err:
            raise AssertionError(f"after clicking {step}: {err}") from err
        guard.check(f"clicking {step}")
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
