"""Labeling images that live in an S3 bucket (issue 27), in JupyterLab.

moto's S3 server runs on loopback (started by the test, its own process); the demo's images
are uploaded to it and the notebook opens the widget on their ``s3://`` URLs, with the
endpoint given once as ``storage_options`` and the credentials in the kernel's AWS
environment variables. The page's thumbnails arrive from the bucket, a key labels, the
viewer opens the image at full resolution and Esc hands the keys back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .harness import JupyterServer, PageLog, kernel_exec, open_notebook, run_all, write_notebook
from .labeler_page import (
    NotebookGuard,
    assert_no_labeler_errors,
    current_row,
    row_values,
    wait_row_values,
    wait_saved,
    wait_widget_ready,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from remote_servers import S3Server  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = ["cat", "dog"]
BUCKET = "e2e-images"
N_IMAGES = 60


@pytest.fixture
def s3_demo(demo_dir: Path):
    """The server and the ``s3://`` URLs of the first demo images uploaded to it."""
    images = sorted((demo_dir / "images").glob("img_*.png"))[:N_IMAGES]
    server = S3Server()
    try:
        urls = server.upload(BUCKET, {f"demo/{p.name}": p.read_bytes() for p in images})
        yield server, urls
    finally:
        server.stop()


def cells(server: S3Server, urls: list[str], outfile: Path) -> list:
    return [
        ("markdown", "# Labeling images in an S3 bucket"),
        "import os\n"
        f"os.environ.update({server.environ()!r})\n"
        "from patchwork_widget import PatchworkWidget, prep_label_dataframe\n"
        f"df = prep_label_dataframe({urls!r}, {CLASSES!r})\n"
        f"widget = PatchworkWidget(df, outfile={str(outfile)!r}, imshape=(96, 96), seed=0,\n"
        f"                         storage_options={{'endpoint_url': {server.endpoint!r}}})\n"
        "widget",
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("frontend", ["lab"])
def test_label_s3_images_by_keyboard_and_open_the_viewer(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, s3_demo
) -> None:
    server, urls = s3_demo
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.csv"
    write_notebook(jupyter_server.root_dir / notebook_name, cells(server, urls, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server)
    wait_widget_ready(page, thumbs=10)
    page.locator(".pw-help").click()  # focus the widget without moving its cursor
    guard = NotebookGuard(page)

    # the thumbnails on the page came from the bucket, through the disk cache
    fetched = json.loads(kernel_exec(
        page, "import json\nfrom patchwork_widget.images.storage import current_storage\n"
              "_s = current_storage()\n"
              "print(json.dumps([len(_s.cache), _s.storage_options, len(widget.session.unreadable)]))"))
    assert fetched[0] >= 10 and fetched[1] == {"endpoint_url": server.endpoint}
    assert fetched[2] == 0

    row = current_row(page)
    assert urls[row].startswith("s3://")
    page.keyboard.press("1")  # cat: yes
    page.keyboard.press("0")  # the rest: no, and on to the next image
    wait_row_values(page, row, CLASSES, {"labels": [1.0, 0.0], "exclude": False,
                                         "validation": False})
    wait_saved(page)
    assert current_row(page) != row

    page.keyboard.press("z")  # the viewer: the image of the bucket at full resolution
    page.locator(".pw-viewer:not([hidden]) .pw-full[src]").wait_for()
    page.locator(".pw-viewer-info").filter(has_text="64×64 px").wait_for()
    page.keyboard.press("Escape")
    page.locator(".pw-viewer").wait_for(state="hidden")
    guard.check("labeling S3 images and their viewer")
    assert row_values(page, row, CLASSES)["labels"] == [1.0, 0.0]
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
