"""Online active learning in a real JupyterLab: label by keyboard while rounds run; the model
updates, the upcoming images are re-ranked, and no key is lost (A6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .harness import JupyterServer, PageLog, kernel_exec, open_notebook, run_all, write_notebook
from .labeler_page import (assert_no_labeler_errors, current_row, demo_widget_source, wait_saved,
                           wait_widget_ready)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

EVERY = 4
PRESSES = 12


def cells(demo_dir: Path, outfile: Path) -> list[str]:
    return [
        demo_widget_source(demo_dir, outfile, labeled=60, validation_every=4)
        + "widget.sample({'kind': 'unlabeled'}, count=60)\n"
        f"widget.session.start_online(every={EVERY}, order='max entropy', explore=0.0)\n"
        "widget",
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("frontend", ["lab"])
def test_labeling_by_keyboard_while_the_model_keeps_learning(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.parquet"
    write_notebook(jupyter_server.root_dir / notebook_name, cells(demo_dir, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server, timeout=240)
    wait_widget_ready(page)
    page.locator(".pw-pace", has_text="model updated").wait_for(timeout=180_000)  # first round
    read = "import json; print(json.dumps([widget.labeler.queue, widget.session.online_status()['rounds']]))"
    queue_before, rounds_before = json.loads(kernel_exec(page, read))

    page.locator(".pw-root").click()
    labeled = []
    for _ in range(PRESSES):  # `0`: every class "no", then the next image
        labeled.append(current_row(page))
        page.keyboard.press("0")
        page.wait_for_function("(row) => !document.querySelector('.pw-position').textContent.endsWith('row ' + row)",
                               arg=labeled[-1])
    wait_saved(page)
    wait_rounds = (  # online_status() applies finished rounds on the kernel's thread
        "import time\n"
        "for _ in range(1200):\n"
        f"    if widget.session.online_status()['rounds'] >= {rounds_before + 1}: break\n"
        "    time.sleep(0.1)\n"
        "print(widget.session.online_status()['rounds'])"
    )
    assert int(kernel_exec(page, wait_rounds)) > rounds_before  # the model kept learning
    queue_after, _ = json.loads(kernel_exec(page, read))
    # no key lost: every image pressed is labeled "no" for every class
    saved = json.loads(kernel_exec(
        page, f"print(json.dumps(widget.df.loc[{labeled}, classes].eq(0).all(axis=1).tolist()))"))
    assert all(saved) and len(set(labeled)) == PRESSES
    assert queue_after[:PRESSES] == queue_before[:PRESSES]  # what was on screen did not move
    assert queue_after != queue_before  # the upcoming images were re-ranked
    page.locator(".pw-pace", has_text="model updated").wait_for()
    assert_no_labeler_errors(page_log, jupyter_server.frontend)


ROUNDS = 3


def unvalidated_cells(demo_dir: Path, outfile: Path) -> list[str]:
    """A widget with 60 labeled images and no validation row."""
    return [
        demo_widget_source(demo_dir, outfile, labeled=60, validation_every=1)
        + "for r in np.flatnonzero(widget.df['validation'].to_numpy()):\n"
        "    widget.session.annotate(int(r), {'validation': False})\n"
        "unlabeled = np.flatnonzero(widget.df[classes].isna().all(axis=1).to_numpy())\n"
        "widget.sample({'kind': 'unlabeled'}, count=60)\n"
        "widget",
    ]


@pytest.mark.e2e
def test_online_mode_without_validation_rows_holds_some_out_and_logs_no_error(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    """The Online tab on screen over three rounds, none of the user's rows for validation: the
    rounds hold labeled images out, the AUC chart gets a point a round, and bqplot logs no
    console error (it logged about ten a round when handed NaN)."""
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.parquet"
    write_notebook(jupyter_server.root_dir / notebook_name, unvalidated_cells(demo_dir, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server, timeout=240)
    wait_widget_ready(page)
    page.get_by_role("tab", name="Online", exact=True).click()
    every = page.locator(".widget-inline-hbox", has_text="retrain every (images)").locator("input")
    every.fill(str(EVERY))
    every.press("Enter")
    page.get_by_role("button", name="Start", exact=True).click()
    for done in range(1, ROUNDS + 1):
        page.get_by_text(f"running: {done} round(s)").wait_for(timeout=180_000)
        if done < ROUNDS:  # EVERY more images labeled "no" for every class, as `0` does
            kernel_exec(page, "for r in unlabeled[:{n}]:\n"
                              "    widget.session.annotate(int(r), {{c: 0 for c in classes}})\n"
                              "unlabeled = unlabeled[{n}:]".format(n=EVERY))
    page.get_by_text("labeled image(s) held out to measure the model").wait_for()
    points = json.loads(kernel_exec(
        page, "import json; print(json.dumps([float(v) for v in widget.online_tab.figure.data[1][0]]))"))
    assert len(points) == ROUNDS and all(0.0 <= p <= 1.0 for p in points)
    page.wait_for_function(  # the chart drew its line
        "() => [...document.querySelectorAll('.bqplot .line')].some(p => (p.getAttribute('d') || '').length > 10)")
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
