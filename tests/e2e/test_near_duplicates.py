"""Near-duplicates in the widget (issue 22): the "near-duplicates" subset shows each group of
near-identical images together, each cell badged with its group's number; a shift-click
selects a group and one key labels all of it."""

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
    screenshot,
    write_notebook,
)
from .labeler_page import assert_no_labeler_errors, wait_saved, wait_widget_ready

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]
PLANTED = {3: 2, 40: 1, 100: 1}  # demo image: how many copies of its file are added


def widget_source(demo_dir: Path, copies_dir: Path, outfile: Path) -> str:
    """A widget over the demo plus copies of a few of its files, sampling near-duplicates."""
    return (
        "import shutil\n"
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        "from patchwork_widget.datasets import demo_features, load_demo_dataset\n"
        f"paths = load_demo_dataset({str(demo_dir)!r})['filepath'].tolist()\n"
        f"copies = {str(copies_dir)!r}\n"
        "import os; os.makedirs(copies, exist_ok=True)\n"
        f"for row, n in {PLANTED!r}.items():\n"
        "    for j in range(n):\n"
        "        paths.append(shutil.copy(paths[row], f'{copies}/copy_{row}_{j}.png'))\n"
        f"df = prep_label_dataframe(paths, {CLASSES!r})\n"
        f"widget = PatchworkWidget(df, features=demo_features(paths), outfile={str(outfile)!r},"
        " imshape=(96, 96), seed=0)\n"
        "widget.sample({'kind': 'near_duplicates'}, count=100)\n"
        "widget"
    )


@pytest.mark.e2e
def test_shift_click_selects_a_group_of_near_duplicates_and_one_key_labels_it(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    stem = Path(notebook_name).stem
    write_notebook(jupyter_server.root_dir / notebook_name, [widget_source(
        demo_dir, jupyter_server.root_dir / f"{stem}_copies", jupyter_server.root_dir / f"{stem}.csv")])
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server)
    wait_widget_ready(page, thumbs=4)

    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))
    groups = json.loads(kernel_exec(page, "print(json.dumps(widget.session.queue_groups))"))
    numbers = [groups[str(r)] for r in queue]
    assert numbers == sorted(numbers) and numbers[0] == 1, "each group's images are consecutive"
    n_planted = len(PLANTED) + sum(PLANTED.values())
    assert len(queue) >= n_planted, "every planted copy is in a group"
    cells = page.locator(".pw-cell")
    shown = cells.evaluate_all("cs => cs.map(c => [c.dataset.group, c.querySelector('.pw-group')?.textContent,"
                               " c.classList.contains('pw-group-start')])")
    for i, (group, badge, start) in enumerate(shown):
        assert group == str(numbers[i]) and badge == f"group {numbers[i]}", (i, group, badge)
        assert start == (i == 0 or numbers[i - 1] != numbers[i]), f"cell {i}: the group boundary"
    screenshot(page.locator(".pw-main"), f"near-duplicates-{jupyter_server.frontend}")

    # A small group on one grid page (the demo's own near-duplicates may form a large first
    # group): move to it, click its first image, Shift-click its last, one key.
    page_size = len(shown)
    starts = [i for i in range(len(numbers)) if i == 0 or numbers[i - 1] != numbers[i]]
    ends = [*(i - 1 for i in starts[1:]), len(numbers) - 1]
    first, last = next((a, b) for a, b in zip(starts, ends)
                       if b - a < 5 and a // page_size == b // page_size)
    cells.nth(0).click()
    for _ in range(first):
        page.keyboard.press("ArrowRight")
    page.locator(f".pw-cell[data-index='{first}']").click()
    page.locator(f".pw-cell[data-index='{last}']").click(modifiers=["Shift"])
    assert page.locator(".pw-cell.pw-selected").count() == last - first + 1
    page.keyboard.press("1")  # the whole group: yes
    wait_saved(page)
    around = queue[max(0, first - 1): last + 2]
    code = (f"import json; print(json.dumps(widget.df[{CLASSES[0]!r}].iloc[{around!r}]"
            ".fillna(-1).tolist()))")
    expected = [1.0 if first <= i <= last else -1 for i in range(max(0, first - 1), last + 2)
                if i < len(queue)]
    assert json.loads(kernel_exec(page, code)) == expected, "the group, and only it"
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
