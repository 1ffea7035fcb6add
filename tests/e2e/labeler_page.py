"""Helpers for driving the labeling widget in a notebook page (on top of ``harness``).

The kernel side is read through the public ``widget.df`` (rows by position), never through
private state; the browser side through the DOM contract of the labeler: ``.pw-root``, class
toggles with ``data-class`` / ``data-key``, ``.pw-status[data-state]``, ``.pw-message``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Sequence

from .harness import kernel_exec, notebook_cells_snapshot, open_notebook, run_all, write_notebook

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

    from .harness import CellSnapshot, JupyterServer, PageLog


def assert_no_labeler_errors(page_log: PageLog, frontend: str) -> None:
    """No uncaught error and no console error from the widget (the front end's own noise aside:
    the page log knows it); the tabs' figures are drawn only once shown, so they log none."""
    page_log.assert_no_errors(frontend=frontend, console=True)


def labeler_cells(data_dir: Path, outfile: Path, classes: Sequence[str], count: int = 50,
                  keys: Mapping[str, str] | None = None) -> list:
    """Cells of a notebook that shows a PatchworkWidget over the demo images (with ``keys``:
    the keys chosen, ``PatchworkWidget(keys=...)``).

    A markdown cell before and a code cell after the widget, so that a notebook shortcut that
    fires (insert, cut, change type) shows up in :func:`notebook_cells_snapshot`.
    """
    return [
        ("markdown", "# Labeling by keyboard"),
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        "from patchwork_widget.datasets import load_demo_dataset\n"
        f"truth = load_demo_dataset({str(data_dir)!r})\n"
        f"df = prep_label_dataframe(truth['filepath'].tolist(), {list(classes)!r})\n"
        f"widget = PatchworkWidget(df, outfile={str(outfile)!r}, imshape=(128, 128), seed=0"
        f"{'' if keys is None else f', keys={dict(keys)!r}'})\n"
        f"widget.sample(count={count})\n"
        "widget",
        "after = 'a cell after the widget'",
    ]


def demo_widget_source(demo_dir: Path, outfile: Path, labeled: int, validation_every: int) -> str:
    """Notebook source of a widget over the demo with its features and ``labeled`` random rows
    labeled from ground truth, every ``validation_every``-th of them for validation."""
    return (
        "import numpy as np\n"
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        "from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset\n"
        f"truth = load_demo_dataset({str(demo_dir)!r})\n"
        "classes = demo_classes()\n"
        "features = demo_features(truth['filepath'].tolist())\n"
        "df = prep_label_dataframe(truth['filepath'].tolist(), classes)\n"
        f"widget = PatchworkWidget(df, features=features, outfile={str(outfile)!r}, imshape=(96, 96), seed=0)\n"
        f"for i, r in enumerate(np.random.default_rng(0).choice(len(df), {labeled}, replace=False)):\n"
        "    widget.session.annotate(int(r), {**{c: truth.at[r, c] for c in classes},"
        f" 'validation': i % {validation_every} == 0}})\n"
    )


def open_labeler(
    page: Page, server: JupyterServer, notebook_name: str, demo_dir: Path, classes: Sequence[str],
    keys: Mapping[str, str] | None = None,
) -> Path:
    """Write, open and run a notebook showing the labeler over the demo; return its outfile."""
    outfile = server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(server.root_dir / notebook_name, labeler_cells(demo_dir, outfile, classes, keys=keys))
    open_notebook(page, server, notebook_name)
    run_all(page, server)
    wait_widget_ready(page)
    return outfile


def wait_widget_ready(page: Page, thumbs: int = 10) -> None:
    """Wait until the labeler is visible, has its values and shows ``thumbs`` thumbnails."""
    page.locator(".pw-root").wait_for(state="visible")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('.pw-cell img')].filter(i => i.src).length >= {thumbs}"
    )
    page.wait_for_function("() => document.querySelector('.pw-name')?.textContent.length > 0")


def current_row(page: Page) -> int:
    """Table row (position) under the labeler's cursor, read from its position line."""
    text = page.locator(".pw-position").inner_text()
    match = re.search(r"row (\d+)", text)
    if not match:
        raise AssertionError(f"no current row in the position line {text!r}")
    return int(match.group(1))


def row_values(page: Page, row: int, classes: Sequence[str]) -> dict[str, Any]:
    """``{"labels": [...], "exclude": bool, "validation": bool}`` of a row, from ``widget.df``."""
    code = (
        "import json\n"
        f"_r = widget.df.iloc[{row}]\n"
        f"print(json.dumps({{'labels': [None if _r[c] != _r[c] else float(_r[c]) for c in {list(classes)!r}],"
        " 'exclude': bool(_r['exclude']), 'validation': bool(_r['validation'])}))"
    )
    return json.loads(kernel_exec(page, code))


def wait_row_values(
    page: Page, row: int, classes: Sequence[str], expected: dict[str, Any], timeout: float = 10.0
) -> None:
    """Wait until the kernel's table holds ``expected`` for ``row``."""
    deadline = time.monotonic() + timeout
    while True:
        got = row_values(page, row, classes)
        if got == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"row {row}: kernel holds {got}, expected {expected}")
        time.sleep(0.2)


@contextlib.contextmanager
def dark_theme(page: Page) -> Iterator[None]:
    """JupyterLab's dark theme inside the block, the light one again after it.

    The theme is a user setting of the test server, which every later test of the session
    shares: a test that leaves it dark changes what the next one sees.
    """
    switch = "(theme) => jupyterapp.commands.execute('apputils:change-theme', {theme})"
    page.evaluate(switch, "JupyterLab Dark")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    try:
        yield
    finally:
        page.evaluate(switch, "JupyterLab Light")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


def first_press(value: float | None) -> float | None:
    """What the first press of a class key after arriving on an image makes of a value:
    ? -> yes; a value the class had when the cursor arrived stays (the second press cycles)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 1.0
    return value


def wait_saved(page: Page) -> None:
    """Wait until every label sent has been acknowledged by the kernel."""
    page.locator(".pw-status[data-state='saved']").wait_for()


class NotebookGuard:
    """Proves that keys pressed inside the widget reached no notebook shortcut.

    Records the notebook's cells, Jupyter dialogs and browser dialogs, and the target of every
    keydown (whether it was inside the widget's root).
    """

    _WATCH_JS = """() => {
      window.__pwKeys = [];
      document.addEventListener('keydown', (ev) => {
        const root = document.querySelector('.pw-root');
        window.__pwKeys.push({ key: ev.key, inside: !!(root && root.contains(ev.target)),
                               target: ev.target.tagName + '.' + ev.target.className });
      }, true);
    }"""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.cells: list[CellSnapshot] = notebook_cells_snapshot(page)
        self.browser_dialogs: list[str] = []
        page.on("dialog", lambda d: (self.browser_dialogs.append(d.message), d.dismiss()))
        page.evaluate(self._WATCH_JS)

    def check(self, step: str) -> None:
        """Fail, naming ``step``, if a cell changed, a dialog opened or a key left the widget."""
        page = self.page
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        assert not dialogs, f"after {step}: a Jupyter dialog opened: {dialogs}"
        assert not self.browser_dialogs, f"after {step}: a browser dialog opened: {self.browser_dialogs}"
        outside = [k for k in page.evaluate("() => window.__pwKeys") if not k["inside"]]
        assert not outside, f"after {step}: keys went outside the widget: {outside}"
        assert notebook_cells_snapshot(page) == self.cells, f"after {step}: notebook cells changed"
        focused = page.evaluate(
            "() => document.querySelector('.pw-root').contains(document.activeElement)"
        )
        assert focused, f"after {step}: focus left the widget"
