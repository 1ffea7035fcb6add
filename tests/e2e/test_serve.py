"""W6: the app outside a notebook. ``serve`` starts Voila on a project; a browser with the token
finds the project's file name as the page's title and labels 5 images by keyboard without a
click, and the labels are in the project's journal; without the token the app is refused (the
server answers with its login page)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes, load_demo_dataset
from patchwork_widget.labels import LabelStore, prep_label_dataframe

from .harness import PageLog
from .labeler_page import wait_saved, wait_widget_ready

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

pytest.importorskip("voila")

CLASSES = demo_classes()[:3]
#: Voila's page template links Font Awesome's CSS from a CDN; offline that request fails (the
#: icons are not used by the app).
OFFLINE_CDN = r"^Failed to load resource: net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED)"


def test_the_served_app_labels_into_the_journal_and_needs_the_token(
    page: Page, page_log: PageLog, demo_dir: Path, tmp_path: Path
) -> None:
    from patchwork_widget.widget.serve import serve

    truth = load_demo_dataset(demo_dir)
    project = tmp_path / "labels.csv"
    prep_label_dataframe(truth["filepath"].tolist(), CLASSES).to_csv(project, index=False)
    with serve(project, imshape=(128, 128), start_timeout=120) as app:
        assert app.token and "127.0.0.1" in app.base_url

        # without the token: the login page, never the app
        with urllib.request.urlopen(app.base_url, timeout=60) as answer:
            assert "/login" in answer.url
            assert b"pw-root" not in answer.read()
        page.goto(app.base_url)
        assert "/login" in page.url
        assert page.locator(".pw-root").count() == 0

        page.goto(app.url)
        page.locator(".pw-root").wait_for(state="visible", timeout=120_000)
        wait_widget_ready(page)
        assert page.title() == "labels.csv"  # the project's file name
        # no click: the app's labeler holds the keyboard from the start, so the first key labels
        page.wait_for_function("document.activeElement?.classList.contains('pw-root')", timeout=30_000)
        for _ in range(5):
            page.keyboard.press("1")  # first class: ? -> yes
            page.keyboard.press("0")  # the others -> no, then the next image
        wait_saved(page)
        page_log.assert_no_errors(console=True, ignore=[OFFLINE_CDN])

    store = LabelStore.open(project, read_only=True, autosave=None)
    try:
        df = store.df
        labeled = df[df[CLASSES].notna().any(axis=1)]
        assert len(labeled) == 5
        assert (labeled[CLASSES[0]] == 1.0).all()
        assert (labeled[CLASSES[1:]] == 0.0).all().all()
    finally:
        store.close()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def test_widget_serve_hands_its_project_to_the_server(demo_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from patchwork_widget import PatchworkWidget

    files = load_demo_dataset(demo_dir)["filepath"].tolist()[:20]
    outfile = tmp_path / "labels.csv"
    widget = PatchworkWidget(prep_label_dataframe(files, CLASSES), outfile=outfile,
                             features=np.ones((20, 4), np.float32), imshape=(64, 64))
    widget.session.annotate(0, {CLASSES[0]: 1.0})
    assert widget.panel() is widget
    app = widget.serve(token="a-token-of-ours", start_timeout=120)
    try:
        assert app.token == "a-token-of-ours" and app.url.endswith("?token=a-token-of-ours")
        assert np.load(f"{outfile}.features.npy").shape == (20, 4)
        # the widget let go of the journal: another writer may open it now
        LabelStore.open(outfile).close()
        with urllib.request.urlopen(app.url, timeout=60) as answer:
            assert "/login" not in answer.url
    finally:
        app.stop()
    assert not _answers(app.base_url)


def test_the_serve_command_stops_its_server_on_sigterm(demo_dir: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    files = load_demo_dataset(demo_dir)["filepath"].tolist()[:10]
    prep_label_dataframe(files, CLASSES).to_csv(tmp_path / "l.csv", index=False)
    proc = subprocess.Popen([sys.executable, "-m", "patchwork_widget.cli", "serve",
                             str(tmp_path / "l.csv")], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "the labeling app is at http://127.0.0.1:" in line, line
        base = line.split("at ", 1)[1].split("?", 1)[0]
        assert _answers(base)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not _answers(base)  # the Voila child went with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
