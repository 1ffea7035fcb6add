"""Moments that said nothing: an undo now moves to the image it changed and names it, and the
end of a sample says so and offers the next one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, kernel_exec, open_notebook, run_all, write_notebook
from .labeler_page import (
    assert_no_labeler_errors,
    current_row,
    labeler_cells,
    row_values,
    wait_row_values,
    wait_saved,
    wait_widget_ready,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]
COUNT = 4


@pytest.mark.e2e
def test_undo_goes_to_the_image_and_the_end_of_a_sample_offers_the_next(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(jupyter_server.root_dir / notebook_name, labeler_cells(demo_dir, outfile, CLASSES, count=COUNT))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server)
    wait_widget_ready(page, thumbs=COUNT)
    page.locator(".pw-help").click()

    first = current_row(page)
    name = page.locator(".pw-name").inner_text()
    page.keyboard.press("1")
    wait_row_values(page, first, CLASSES, {"labels": [1.0, None, None], "exclude": False, "validation": False})
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert current_row(page) != first
    page.keyboard.press("u")
    message = page.locator(".pw-message")
    message.filter(has_text=f"Undone: {name} (row {first}) is back to").wait_for()
    assert current_row(page) == first, "undo did not go to the image it changed"
    wait_saved(page)
    assert row_values(page, first, CLASSES)["labels"] == [None, None, None]

    for _ in range(COUNT - 1):
        page.keyboard.press("ArrowRight")
    last = current_row(page)
    page.keyboard.press("0")  # label the last image: the sample is done
    message.filter(has_text=f"End of this sample: that was the last of its {COUNT} images.").wait_for()
    assert current_row(page) == last
    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))
    page.locator(".pw-next-sample", has_text=f"Sample the next {COUNT}").click()
    message.filter(has_text=f"Sampled {COUNT} images.").wait_for()
    assert json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))")) != queue
    assert page.locator(".pw-position").inner_text().startswith(f"1 / {COUNT}")
    page.keyboard.press("1")  # the keys still label
    wait_row_values(page, current_row(page), CLASSES, {"labels": [1.0, None, None], "exclude": False, "validation": False})
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
