"""Two annotators in two JupyterLab pages on one PostgreSQL project (issue 16): a label given
in page 1 shows in page 2 without anything done there."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import (
    VIEWPORT,
    JupyterServer,
    PageLog,
    kernel_exec,
    open_notebook,
    run_all,
    write_notebook,
)
from .labeler_page import (
    assert_no_labeler_errors,
    current_row,
    wait_saved,
    wait_widget_ready,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from postgres_server import PostgresServer, postgres  # noqa: F401  (the fixture)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Browser, Page

CLASSES = demo_classes()[:3]


def team_cells(demo_dir: Path, outfile: Path, url: str, project: str, annotator: str) -> list:
    return [(
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        "from patchwork_widget.datasets import load_demo_dataset\n"
        f"truth = load_demo_dataset({str(demo_dir)!r})\n"
        f"df = prep_label_dataframe(truth['filepath'].tolist(), {CLASSES!r})\n"
        f"widget = PatchworkWidget(df, outfile={str(outfile)!r}, imshape=(128, 128), seed=0,\n"
        f"                         journal={url!r}, project={project!r}, annotator={annotator!r})\n"
        "widget"
    )]


def open_annotator(page: Page, server: JupyterServer, demo_dir: Path, url: str, project: str,
                   annotator: str) -> None:
    name = f"team_{annotator}_{project}.ipynb"
    outfile = server.root_dir / f"team_{annotator}_{project}.csv"
    write_notebook(server.root_dir / name, team_cells(demo_dir, outfile, url, project, annotator))
    open_notebook(page, server, name)
    run_all(page, server)
    wait_widget_ready(page)


@pytest.mark.e2e
@pytest.mark.parametrize("frontend", ["lab"])
def test_a_label_in_one_page_shows_in_the_other(
    jupyter_server: JupyterServer, browser: Browser, page: Page, page_log: PageLog,
    demo_dir: Path, postgres: PostgresServer,  # noqa: F811
) -> None:
    project = f"pages{uuid.uuid4().hex[:8]}"
    open_annotator(page, jupyter_server, demo_dir, postgres.url, project, "ana")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        other = context.new_page()
        other_log = PageLog()
        other_log.attach(other)
        open_annotator(other, jupyter_server, demo_dir, postgres.url, project, "bob")

        # the two samples claimed different images
        queue = "import json; print(json.dumps(widget.session.queue))"
        ana_queue, bob_queue = (json.loads(kernel_exec(p, queue)) for p in (page, other))
        assert ana_queue and bob_queue and not set(ana_queue) & set(bob_queue)

        # bob looks at the image ana is about to label (his own queue, put first)
        row = current_row(page)
        kernel_exec(other, f"widget.session.set_queue([{row}] + widget.session.queue)")
        other.locator(f".pw-cell[data-row='{row}']").wait_for(state="visible")
        assert other.locator(f".pw-cell[data-row='{row}'] .pw-caption").text_content() == ""

        page.locator(".pw-help").click()  # focus ana's widget without moving its cursor
        start = time.monotonic()
        page.keyboard.press("1")  # the first class: yes
        wait_saved(page)
        acknowledged = time.monotonic() - start
        other.wait_for_function(
            "([row, name]) => document.querySelector(`.pw-cell[data-row='${row}'] .pw-caption`)"
            "?.textContent.includes(name)", arg=[row, CLASSES[0]], timeout=30_000, polling=50,
        )
        shown = time.monotonic() - start
        print(f"ana's label acknowledged after {acknowledged:.2f} s, shown in bob's page after "
              f"{shown:.2f} s")
        assert kernel_exec(other, f"print(widget.df.at[{row}, {CLASSES[0]!r}])").strip() == "1.0"
        assert_no_labeler_errors(other_log, jupyter_server.frontend)
    finally:
        context.close()
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
