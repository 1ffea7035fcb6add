"""Label while it extracts, in JupyterLab and Notebook 7: a widget opened on 2,000 images with
a named extractor (random weights, a small input: nothing downloads) shows its images and
takes keys at once while a worker process extracts the features; the progress bar shows, and
the first training succeeds once the labeled rows have features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from .harness import (
    JupyterServer,
    PageLog,
    kernel_exec,
    open_notebook,
    run_all,
    screenshot,
    wait_for_kernel_output,
    write_notebook,
)
from .labeler_page import NotebookGuard, assert_no_labeler_errors, wait_saved, wait_widget_ready

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

N_IMAGES = 2000
N_LABELED = 20


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 small PNGs: a bright square (class "square") on every other image."""
    folder = tmp_path_factory.mktemp("extraction-images")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        pixels = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
        if i % 2 == 0:
            pixels[8:24, 8:24] = 230
        Image.fromarray(pixels).save(folder / f"img_{i:04d}.png")
    return folder


def notebook_cells(folder: Path, outfile: Path) -> list:
    return [
        ("markdown", "# Label while it extracts"),
        "from patchwork_widget import PatchworkWidget\n"
        "from patchwork_widget.datasets import load_folder\n"
        "from patchwork_widget.options.backbones import Backbone\n"
        f"df = load_folder({str(folder)!r}, ['square'])\n"
        "backbone = Backbone('mobilenet_v3_small', weights=None, image_size=(32, 32))\n"
        f"widget = PatchworkWidget(df, outfile={str(outfile)!r}, feature_extractor=backbone,\n"
        "                         imshape=(64, 64), seed=0)\n"
        "widget",
        "after = 'a cell after the widget'",
    ]


@pytest.mark.e2e
def test_label_twenty_images_while_it_extracts_then_train(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str,
    image_folder: Path,
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(jupyter_server.root_dir / notebook_name, notebook_cells(image_folder, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server, timeout=180)
    wait_widget_ready(page)
    # the extraction runs in its process: the bar shows while the grid is already there
    page.locator(".pw-extraction-text", has_text="Features: ").wait_for()
    assert page.locator(".pw-extraction-bar").is_visible()
    screenshot(page.locator(".pw-root"), f"extraction-{jupyter_server.frontend}")

    guard = NotebookGuard(page)
    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    queue = json.loads(kernel_exec(page, "import json; print(json.dumps(widget.labeler.queue))"))
    names = json.loads(kernel_exec(
        page, "import json; print(json.dumps([p.rsplit('/', 1)[-1] for p in widget.df.filepath]))"))
    for row in queue[:N_LABELED]:
        if int(names[row][4:8]) % 2 == 0:
            page.keyboard.press("1")  # ? -> yes
        page.keyboard.press("0")  # every unset class -> no, then the next image
    wait_saved(page)
    guard.check("labeling while the features are extracted")
    labeled = json.loads(kernel_exec(
        page, "import json; print(json.dumps(widget.df['square'].notna().sum().item()))"))
    assert labeled == N_LABELED

    # the first training, once some labeled rows have their features (the worker goes on)
    wait_for_kernel_output(
        page, "import numpy as np\n"
        "s = widget.session\n"
        "have = s.features is not None or s.extraction.rows.ready[s.df['square'].notna()].any()\n"
        "print(bool(have))", "True", timeout=300)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training done").wait_for(timeout=180_000)
    predicted = kernel_exec(page, "print(int(widget.predictions['square'].notna().sum()))")
    assert int(predicted) > 0
    page.get_by_role("tab", name="Label", exact=True).click()
    # the extraction ends: the bar goes, and the orders on features are offered
    page.locator(".pw-extraction").wait_for(state="hidden", timeout=600_000)
    page.locator(".pw-order option", has_text="diversity").first.wait_for(state="attached")
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
