"""The full-resolution viewer, progress, jump to a file and "more like this", in both front ends.

The viewer opens on a click on the large view and on `z`, zooms and pans by keys, takes the
stretch and band controls, and hands the keys back to labeling on Esc; while it is open no key
labels anything and none reaches the notebook, also after a click on its buttons (Notebook 7).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import (
    JupyterServer,
    PageLog,
    kernel_exec,
    open_notebook,
    run_all,
    write_notebook,
)
from .labeler_page import (
    NotebookGuard,
    assert_no_labeler_errors,
    current_row,
    demo_widget_source,
    row_values,
    wait_row_values,
    wait_saved,
    wait_widget_ready,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()
LABELED = 20
QUEUE = 30


def cells(demo_dir: Path, outfile: Path) -> list:
    return [
        ("markdown", "# Viewer, progress, jump, more like this"),
        demo_widget_source(demo_dir, outfile, labeled=LABELED, validation_every=5)
        + f"widget.sample({{'kind': 'unlabeled'}}, count={QUEUE})\nwidget",
        "after = 'a cell after the widget'",
    ]


def view_state(page: Page) -> dict:
    return page.evaluate("() => { const v = patchworkViews.at(-1).viewer;"
                         " return { open: v.isOpen, ...v.view }; }")


def viewer_open(page: Page) -> None:
    page.locator(".pw-viewer:not([hidden]) .pw-full[src]").wait_for()
    page.locator(".pw-viewer-info").filter(has_text="zoom").wait_for()
    assert page.locator(".pw-main").is_hidden(), "the grid stays hidden while the viewer is open"
    assert page.locator(".pw-help").is_hidden(), "the labeling keys' help waits while the viewer is open"


def viewer_closed(page: Page) -> None:
    page.locator(".pw-viewer").wait_for(state="hidden")
    assert page.locator(".pw-main").is_visible() and page.locator(".pw-help").is_visible()
    assert page.evaluate("() => document.activeElement === document.querySelector('.pw-root')"), \
        "after closing the viewer the labeler has the keys"


def check_viewer(page: Page, guard: NotebookGuard) -> None:
    row = current_row(page)
    before = row_values(page, row, CLASSES)
    page.locator(".pw-big").click()
    viewer_open(page)
    info = page.locator(".pw-viewer-info").inner_text()
    assert "128×128 px" in info or "px" in info, info
    fitted = view_state(page)
    page.keyboard.press("+")
    page.keyboard.press("+")
    zoomed = view_state(page)
    assert zoomed["scale"] == pytest.approx(fitted["scale"] * 1.25 ** 2)
    page.keyboard.press("ArrowLeft")
    assert view_state(page)["x"] > zoomed["x"], "the left arrow shows more of the left"
    port = page.locator(".pw-viewport").bounding_box()
    assert port
    centre = (port["x"] + port["width"] / 2, port["y"] + port["height"] / 2)
    page.mouse.move(*centre)
    before_wheel = view_state(page)
    page.mouse.wheel(0, -200)  # the wheel zooms in about the pointer
    page.wait_for_function(f"() => patchworkViews.at(-1).viewer.view.scale > {before_wheel['scale']}")
    dragged = view_state(page)
    page.mouse.down()
    page.mouse.move(centre[0] - 60, centre[1] - 40, steps=4)
    page.mouse.up()
    moved = view_state(page)
    assert (moved["x"], moved["y"]) == pytest.approx((dragged["x"] - 60, dragged["y"] - 40)), "a drag pans"
    for key in ["a", "x", "0", "1", "m", "b"]:  # no labeling while the viewer is open
        page.keyboard.press(key)
    guard.check("keys in the viewer")
    page.keyboard.press("Escape")
    viewer_closed(page)
    assert row_values(page, row, CLASSES) == before, "a key labeled while the viewer was open"

    # A zoom made while the image is on its way is the user's: the image that lands keeps it
    # (it was fitted over it, which made "-" after "Fit" look ignored now and then). The view's
    # request for the image is held in the page until the zoom is made, then let go.
    shown = page.locator(".pw-full").get_attribute("src")
    page.evaluate("() => { const v = patchworkViews.at(-1).viewer; const load = v.on.load;"
                  " v.on.load = (req) => new Promise((done) => { window.pwLetGo = () => {"
                  " v.on.load = load; done(load(req)); }; }); }")
    page.keyboard.press("z")
    page.keyboard.press("+")
    zoomed = view_state(page)
    assert page.locator(".pw-viewer-info").inner_text().startswith("Loading"), "the line says it loads"
    page.evaluate("() => window.pwLetGo()")
    page.wait_for_function(f"() => document.querySelector('.pw-full').src !== {shown!r}", timeout=30_000)
    viewer_open(page)
    assert view_state(page)["scale"] == pytest.approx(zoomed["scale"]), "the image that landed undid a zoom"
    page.keyboard.press("Escape")
    viewer_closed(page)

    # Open by key; a click on a button of the viewer keeps the keys in it (Notebook 7).
    page.keyboard.press("z")
    viewer_open(page)
    page.locator(".pw-fit").click()
    scale = view_state(page)["scale"]
    page.keyboard.press("-")
    assert view_state(page)["scale"] < scale
    page.locator(".pw-viewer-stretch").select_option(label="stretch: min–max")
    page.locator(".pw-viewer-info").filter(has_text="stretch 0–100%").wait_for()
    page.locator(".pw-viewer-bands").fill("1")
    page.locator(".pw-viewer-bands").press("Enter")
    page.locator(".pw-viewer-info").filter(has_text="bands 1 ").wait_for()
    page.locator(".pw-viewer-bands").press("Escape")  # Esc in its box closes the viewer too
    viewer_closed(page)
    guard.check("the viewer's controls")

    # The keys label again: 1 (first class yes), then 0 (the others no) moves on.
    page.keyboard.press("1")
    page.keyboard.press("0")
    labels = [1.0 if i == 0 else (v if v is not None else 0.0) for i, v in enumerate(before["labels"])]
    wait_row_values(page, row, CLASSES, dict(before, labels=labels))
    wait_saved(page)


def check_progress(page: Page, n_rows: int) -> None:
    """One fully labeled row of the sample so far (check_viewer's), the seeded ones in all."""
    page.locator(".pw-progress").filter(
        has_text=f"Labeled: 1 of {QUEUE} in this sample · {LABELED + 1} of {n_rows:,} in all").wait_for()


def check_jump(page: Page, guard: NotebookGuard) -> int:
    """Jump to a labeled image (not in the unlabeled sample): it comes after the cursor."""
    at = current_row(page)
    target, name = json.loads(kernel_exec(
        page, "import json, os\n"
              "_r = next(r for r in range(len(widget.df)) if r not in widget.session.queue)\n"
              "print(json.dumps([_r, os.path.basename(widget.df.at[_r, 'filepath'])]))"))
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.classList.contains('pw-jump')")
    page.keyboard.type("png")
    page.keyboard.press("Enter")
    page.locator(".pw-message[data-error='true']").filter(has_text="type more of the name").wait_for()
    assert current_row(page) == at
    page.locator(".pw-jump").fill(name.upper())
    page.locator(".pw-jump").press("Enter")
    page.wait_for_function(f"() => /row {target}\\b/.test(document.querySelector('.pw-position').textContent)")
    page.locator(".pw-position").filter(has_text=f"/ {QUEUE + 1} ").wait_for()
    page.locator(".pw-jump").fill("no such file")
    page.locator(".pw-jump").press("Enter")
    page.locator(".pw-message").filter(has_text="no file name contains 'no such file'").wait_for()
    page.locator(".pw-jump").press("Escape")
    guard.check("jumping to a file")
    return target


def check_more_like_this(page: Page, row: int, guard: NotebookGuard) -> None:
    page.keyboard.press("n")
    page.locator(".pw-message").filter(has_text="most like this one follow it").wait_for()
    assert current_row(page) == row
    queue = json.loads(kernel_exec(page, "print(list(widget.session.queue))"))
    assert queue[0] == row and len(queue) == QUEUE + 1
    page.keyboard.press("ArrowRight")
    assert current_row(page) == queue[1]
    # the button does the same for the image on screen; keys stay in the widget. Waiting for
    # that image at position 1 (not position 1 alone, which held already) sees the new queue
    page.locator(".pw-similar").click()
    page.wait_for_function(
        f"() => /^1 \\/ {QUEUE + 1} .*row {queue[1]}\\b/.test("
        "document.querySelector('.pw-position').textContent)")
    again = json.loads(kernel_exec(page, "print(list(widget.session.queue))"))
    assert again[0] == queue[1] and len(again) == QUEUE + 1
    page.keyboard.press("ArrowRight")
    assert current_row(page) == again[1]
    guard.check("more like this")


@pytest.mark.e2e
def test_viewer_progress_jump_and_more_like_this(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(jupyter_server.root_dir / notebook_name, cells(demo_dir, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server)
    wait_widget_ready(page)
    n_rows = int(kernel_exec(page, "print(len(widget.df))"))
    page.locator(".pw-progress").filter(has_text=f"0 of {QUEUE} in this sample").wait_for()
    guard = NotebookGuard(page)
    check_viewer(page, guard)
    check_progress(page, n_rows)
    target = check_jump(page, guard)
    check_more_like_this(page, target, guard)
    guard.check("the whole test")
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
