"""Fixtures for the end-to-end tests: Jupyter servers, a Chromium browser, one page per test.

Fixtures
--------
``frontend``          session-scoped, parametrised over ``"lab"`` and ``"notebook"``; override
                      with ``@pytest.mark.parametrize("frontend", ["lab"])``.
``jupyter_servers``   session-scoped :class:`harness.ServerPool` (one server per front end).
``jupyter_server``    the running :class:`harness.JupyterServer` for ``frontend``; its sessions
                      (kernels) are shut down after each test.
``browser``           session-scoped Playwright ``Browser`` (system Chromium, headless).
``page_log``          :class:`harness.PageLog` of the test's page (console + page errors).
``page``              a fresh Playwright ``Page`` (own browser context, 1400x1000 viewport).
``notebook_name``     a notebook file name unique to the test, e.g. ``test_x_lab.ipynb``.
``demo_dir``          session-scoped folder holding the demo images (written once, read only).

On a failing test the page is screenshotted and its console log written to
``<artifacts>/failures/<test>.png`` / ``.console.log``; server logs are always in
``<artifacts>/server-<frontend>.log``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .harness import (
    CHROMIUM_ARGS,
    CHROMIUM_ENV,
    FRONTENDS,
    VIEWPORT,
    JupyterServer,
    PageLog,
    ServerPool,
    artifacts_dir,
    chromium_executable,
    reset_artifact,
    safe_name,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Browser, Page

_E2E_DIR = Path(__file__).resolve().parent
_REPORT_KEY = pytest.StashKey[dict]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e carries the ``e2e`` marker, so ``-m "not e2e"`` skips them."""
    for item in items:
        if _E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Remember each phase's report so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORT_KEY, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORT_KEY, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="session")
def e2e_artifacts() -> Path:
    """The artifacts folder (``$PATCHWORK_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``).

    ``failures/`` is emptied at the start of a session so it only shows this run's failures.
    """
    folder = artifacts_dir()
    reset_artifact(folder / "failures")
    return folder


@pytest.fixture(scope="session")
def jupyter_servers(
    tmp_path_factory: pytest.TempPathFactory, e2e_artifacts: Path
) -> Iterator[ServerPool]:
    """One lazily started Jupyter server per front end, stopped at the end of the session."""
    pool = ServerPool(tmp_path_factory.mktemp("jupyter"), e2e_artifacts)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session", params=FRONTENDS)
def frontend(request: pytest.FixtureRequest) -> str:
    """``"lab"`` (JupyterLab 4) or ``"notebook"`` (Notebook 7).

    Session-scoped so pytest groups the tests of one front end together.
    """
    return request.param


@pytest.fixture
def jupyter_server(frontend: str, jupyter_servers: ServerPool) -> Iterator[JupyterServer]:
    """The server for ``frontend``; kernels the test started are shut down afterwards."""
    server = jupyter_servers.get(frontend)  # type: ignore[arg-type]
    yield server
    if server.is_running():
        try:
            server.shutdown_sessions()
        except OSError as exc:  # a dead server is reported by the next test that needs it
            print(f"could not shut down sessions on jupyter {frontend}: {exc}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless system Chromium, shared by the session. Skips if the executable is missing."""
    executable = chromium_executable()
    if not os.path.exists(executable):
        pytest.skip(
            f"Chromium not found at {executable}; install it (apt-get install chromium) or point "
            f"{CHROMIUM_ENV} at a Chromium/Chrome executable"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_log() -> PageLog:
    """Console messages and uncaught errors of the test's page."""
    return PageLog()


@pytest.fixture
def page(
    browser: Browser, page_log: PageLog, request: pytest.FixtureRequest, e2e_artifacts: Path
) -> Iterator[Page]:
    """A fresh page in its own browser context; screenshot + console log kept on failure."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    page_log.attach(new_page)
    try:
        yield new_page
    finally:
        if _failed(request):
            stem = e2e_artifacts / "failures" / safe_name(request.node.nodeid.split("::")[-1])
            stem.parent.mkdir(parents=True, exist_ok=True)
            try:
                new_page.screenshot(path=f"{stem}.png")
            except Exception as exc:  # noqa: BLE001 - best effort while reporting a failure
                print(f"failure screenshot not taken: {exc}")
            page_log.dump(Path(f"{stem}.console.log"))
            print(f"e2e artifacts: {stem}.png, {stem}.console.log, server logs in {e2e_artifacts}")
        context.close()


@pytest.fixture
def notebook_name(request: pytest.FixtureRequest) -> str:
    """A notebook file name unique to this test (and front end)."""
    return safe_name(request.node.name) + ".ipynb"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo images, written once per session; tests only read them."""
    from patchwork_widget.datasets import load_demo_dataset

    folder = tmp_path_factory.mktemp("demo")
    load_demo_dataset(folder)
    return folder
