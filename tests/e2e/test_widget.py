"""The labeling widget in a real JupyterLab and Notebook 7, driven by keyboard only."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from patchwork_widget.datasets import demo_classes

from .harness import (
    JupyterServer,
    PageLog,
    kernel_exec,
    notebook_cells_snapshot,
    open_notebook,
    run_all,
    screenshot,
    write_notebook,
)
from .labeler_page import assert_no_labeler_errors, dark_theme

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

XSS = "<img src=x onerror=alert(1)>"
CLASSES = demo_classes()[:3] + [XSS]
N_LABELED = 22


def notebook_cells(demo_dir: Path, outfile: Path) -> list:
    return [
        ("markdown", "# Labeling by keyboard"),
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        "from patchwork_widget.datasets import load_demo_dataset\n"
        f"truth = load_demo_dataset({str(demo_dir)!r})\n"
        f"df = prep_label_dataframe(truth['filepath'].tolist(), {CLASSES!r})\n"
        f"widget = PatchworkWidget(df, outfile={str(outfile)!r}, imshape=(128, 128), seed=0)\n"
        "widget",
        "after = 'a cell after the widget'",
    ]


def press_and_expect(page: Page) -> list[dict]:
    """Label N_LABELED images by keyboard; return what each of them should hold."""
    expected = []
    for i in range(N_LABELED):
        c = i % 3
        labels = [0.0] * len(CLASSES)
        page.keyboard.press(str(c + 1))  # ? -> yes
        labels[c] = 1.0
        if i % 4 == 1:
            page.keyboard.press(str(c + 1))  # yes -> no
            labels[c] = 0.0
        exclude, validation = i == 3, i == 5
        if exclude:
            page.keyboard.press("x")
        if validation:
            page.keyboard.press("v")
        page.keyboard.press("0")  # every unset class -> no, then the next image
        expected.append({"labels": labels, "exclude": exclude, "validation": validation})
    return expected


@pytest.mark.e2e
def test_label_by_keyboard_and_everything_is_saved(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(jupyter_server.root_dir / notebook_name, notebook_cells(demo_dir, outfile))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_notebook(page, jupyter_server, notebook_name)
    cells_before = notebook_cells_snapshot(page)
    run_all(page, jupyter_server)

    root = page.locator(".pw-root")
    root.wait_for(state="visible")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.pw-cell img')].filter(i => i.src).length >= 10"
    )
    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))

    # Class names are text: the XSS class shows literally and creates no element.
    texts = page.locator(".pw-toggle .pw-class").all_text_contents()
    assert texts == CLASSES
    assert page.locator(".pw-root img[src='x']").count() == 0

    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    expected = press_and_expect(page)

    # Undo: cycle a class on the next image, then take it back.
    page.keyboard.press("2")
    page.keyboard.press("u")
    message = page.locator(".pw-message")
    message.filter(has_text="Undone: ").wait_for()
    # Multi-select: this image and the next two get the same label in one action.
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("3")
    expected += [{"labels": [None, None, 1.0, None], "exclude": False, "validation": False}] * 3
    # Keys that are notebook shortcuts in command mode, pressed inside the widget.
    for key in ["a", "b", "m", "7", "9"]:
        page.keyboard.press(key)
    message.filter(has_text="No model predictions yet.").wait_for()
    page.locator(".pw-status[data-state='saved']").wait_for()

    # The kernel's table holds exactly the labels given, and nothing else.
    table = pd.read_json(io.StringIO(kernel_exec(page, "print(widget.df.to_json(orient='split'))")), orient="split")
    table.columns = ["filepath", "exclude", "validation", *CLASSES]
    try:
        check_table(table, queue, expected)
    except AssertionError as err:  # say what the kernel's log and the view hold for the rows
        history = kernel_exec(page, "print(widget.history.to_string())")
        view = page.evaluate(
            "(rows) => JSON.stringify(rows.map((r) => globalThis.patchworkViews.at(-1).control.state.values.get(r)))",
            queue[: len(expected)],
        )
        raise AssertionError(f"{err}\nannotations:\n{history}\nview values: {view}") from err

    # The Save button writes the outfile atomically; it holds the same labels.
    page.locator(".pw-save").click()
    message.filter(has_text=f"Saved to {outfile}").wait_for()
    check_table(pd.read_csv(outfile), queue, expected)

    assert notebook_cells_snapshot(page) == cells_before, "keys inside the widget changed cells"
    assert dialogs == [], f"a dialog opened: {dialogs}"
    screenshot(root, f"widget-{jupyter_server.frontend}")
    if jupyter_server.frontend == "lab":
        check_dark_theme(page, root)
    assert_no_labeler_errors(page_log, jupyter_server.frontend)


def check_table(table: pd.DataFrame, queue: list[int], expected: list[dict]) -> None:
    labeled = set(queue[: len(expected)])
    for row, want in zip(queue, expected):
        got = [None if math.isnan(v) else v for v in table.loc[row, CLASSES]]
        assert got == want["labels"], f"row {row}: {got} != {want['labels']}"
        assert bool(table.at[row, "exclude"]) is want["exclude"]
        assert bool(table.at[row, "validation"]) is want["validation"]
    rest = table.drop(index=sorted(labeled))
    assert rest[CLASSES].isna().all().all(), "labels appeared on rows that were never labeled"
    assert not rest["exclude"].any() and not rest["validation"].any()


def luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in css_color[css_color.index("(") + 1 : css_color.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def check_dark_theme(page: Page, root) -> None:
    """The widget takes its colours from JupyterLab's theme: dark theme, dark widget."""
    background = "() => getComputedStyle(document.querySelector('.pw-root')).backgroundColor"
    assert luminance(page.evaluate(background)) > 0.8
    with dark_theme(page):
        page.wait_for_function(f"() => ({background})() !== 'rgb(255, 255, 255)'")
        page.wait_for_timeout(500)
        assert luminance(page.evaluate(background)) < 0.3
        text = "() => getComputedStyle(document.querySelector('.pw-class')).color"
        assert luminance(page.evaluate(text)) > 0.6
        screenshot(root, "widget-lab-dark")
