"""The labeler reflows in narrow windows: nothing clipped from 500 px up, light and dark.

The grid fills the height beside the side panel (it was fixed at three rows, leaving ~40% of
the widget empty at 1400 px), and an output too narrow to label (a side bar open beside a
small window) shows one line saying so instead of a column of one-word controls.

At 1400 px the side panel (large view, toggles) sits beside the grid; in a narrow output (900 px
with JupyterLab's file browser open, 500 px) it moves below the grid. The large view grows with
the output. The full-resolution viewer fits each width too. Screenshots of each width and theme,
viewer closed (two images selected, the second current) and open, land in the artifacts folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, screenshot
from .labeler_page import assert_no_labeler_errors, dark_theme, open_labeler

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()
WIDTHS = (1400, 900, 500)

# Elements of the labeler that stick out of its root (right edge past the root's), and whether
# the root scrolls sideways.
_CLIPPED_JS = """() => {
  const root = document.querySelector('.pw-root');
  const edge = root.getBoundingClientRect().right + 1;
  const out = [...root.querySelectorAll('.pw-toggle, .pw-flag, .pw-big, .pw-cell, .pw-bar > *, .pw-classes > *, .pw-tools > *, .pw-viewer-bar > *, .pw-viewport')]
    .filter((el) => el.getClientRects().length)
    .filter((el) => el.getBoundingClientRect().right > edge)
    .map((el) => el.className + ' ' + (el.dataset.class || el.textContent.slice(0, 20)));
  return { out, scrolls: root.scrollWidth > root.clientWidth + 1 };
}"""


def check_width(page: Page, width: int, label: str) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(400)  # let the notebook lay out again
    check_clipping(page, f"labeler-{label}")
    big = page.locator(".pw-big").bounding_box()
    assert big and big["width"] > 200, f"{label}: the large view is {big} px, no bigger than the grid"
    page.locator(".pw-big").click()
    page.locator(".pw-viewer:not([hidden]) .pw-full[src]").wait_for()
    page.locator(".pw-viewer-info").filter(has_text="zoom").wait_for()
    check_clipping(page, f"labeler-viewer-{label}")
    page.keyboard.press("Escape")
    page.locator(".pw-viewer").wait_for(state="hidden")


def check_clipping(page: Page, name: str) -> None:
    clipped = page.evaluate(_CLIPPED_JS)
    screenshot(page.locator(".pw-root"), name)
    assert not clipped["out"], f"{name}: clipped {clipped['out']}"
    assert not clipped["scrolls"], f"{name}: the labeler scrolls sideways"


def check_grid_fills_height(page: Page, name: str) -> None:
    """Beside the side panel, the grid leaves less than one row of it empty."""
    sizes = page.evaluate("""() => {
      const box = (s) => document.querySelector(s).getBoundingClientRect();
      const cells = document.querySelectorAll('.pw-cell');
      return { grid: box('.pw-grid').bottom, side: box('.pw-side').bottom,
               cell: cells[0].getBoundingClientRect().height, cells: cells.length };
    }""")
    assert sizes["cells"] > 15, f"{name}: still three rows of five ({sizes})"
    assert sizes["side"] - sizes["grid"] < sizes["cell"] + 4, f"{name}: the grid leaves a row empty ({sizes})"


def check_too_narrow(page: Page, name: str) -> None:
    """An output under 300 px shows the one-line hint and nothing else; wider, the labeler."""
    root = page.locator(".pw-root")
    page.evaluate("() => { document.querySelector('.pw-root').style.width = '200px'; }")
    try:
        hint = page.locator(".pw-narrow")
        hint.wait_for(state="visible")
        assert page.locator(".pw-bar").is_hidden() and page.locator(".pw-main").is_hidden()
        box = hint.bounding_box()
        assert box and box["height"] < 24, f"{name}: the hint is not one line ({box})"
        screenshot(root, name)
    finally:
        page.evaluate("() => { document.querySelector('.pw-root').style.width = ''; }")
    page.locator(".pw-narrow").wait_for(state="hidden")
    assert page.locator(".pw-main").is_visible()


def side_below_grid(page: Page) -> bool:
    side, grid = (page.locator(sel).bounding_box() for sel in (".pw-side", ".pw-grid"))
    assert side and grid
    return side["y"] >= grid["y"] + grid["height"] - 1


@pytest.mark.e2e
def test_reflows_from_500_px(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)
    page.locator(".pw-cell").nth(1).click()
    page.keyboard.press("Shift+ArrowRight")  # two selected, the second one current
    page.locator(".pw-cell.pw-selected").nth(1).wait_for()
    check_widths(page, jupyter_server.frontend, "light")
    if jupyter_server.frontend == "lab":
        with dark_theme(page):
            check_widths(page, "lab", "dark")
    assert_no_labeler_errors(page_log, jupyter_server.frontend)


def check_widths(page: Page, frontend: str, theme: str) -> None:
    lab = frontend == "lab"
    if lab:  # JupyterLab opens with the file browser beside the notebook
        page.evaluate("() => jupyterapp.shell.expandLeft()")
    for width in WIDTHS:
        if lab and width <= 500:  # a 500 px window leaves no room for a side bar
            page.evaluate("() => jupyterapp.shell.collapseLeft()")
        check_width(page, width, f"{width}px-{frontend}-{theme}")
        if width == 1400:
            assert not side_below_grid(page), "a wide output keeps the side panel beside the grid"
            check_grid_fills_height(page, f"{width}px-{frontend}-{theme}")
        if width == 500:
            check_too_narrow(page, f"labeler-too-narrow-{frontend}-{theme}")
    assert side_below_grid(page), "a narrow output puts the side panel below the grid"
