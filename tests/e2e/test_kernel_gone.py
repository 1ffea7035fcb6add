"""A view whose kernel is gone never looks alive.

After a kernel restart the old view took keys, showed the new value on the toggle and said
"all saved"; only the message line said that it could not send. Now the status says the kernel
is gone (and the message that the model went with it), a key that would write is refused, and
the status never reads "saved" again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from patchwork_widget.datasets import demo_classes

from .harness import JupyterServer, PageLog, wait_kernel_idle
from .labeler_page import assert_no_labeler_errors, open_labeler, wait_saved

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

CLASSES = demo_classes()[:3]

# Every state the status line shows from now on, in order.
_WATCH_STATUS_JS = """() => {
  const status = document.querySelector('.pw-status');
  window.__pwStates = [status.dataset.state];
  new MutationObserver(() => window.__pwStates.push(status.dataset.state))
    .observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
}"""


@pytest.mark.e2e
def test_a_key_pressed_after_a_kernel_restart_is_never_shown_as_saved(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    open_labeler(page, jupyter_server, notebook_name, demo_dir, CLASSES)
    page.locator(".pw-help").click()
    page.keyboard.press("1")
    wait_saved(page)

    page.evaluate("() => jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    wait_kernel_idle(page)
    page.evaluate(_WATCH_STATUS_JS)
    page.locator(".pw-help").click()
    page.keyboard.press("2")  # the first key after the restart: not saved, never shown as saved

    status = page.locator(".pw-status[data-state='gone']")
    status.wait_for()
    assert "kernel gone" in status.inner_text()
    message = page.locator(".pw-message[data-error='true']")
    message.filter(has_text="kernel is gone").wait_for()
    assert "model and its predictions are gone" in message.inner_text()

    page.keyboard.press("ArrowRight")  # looking around still works
    page.keyboard.press("3")  # refused: the toggle stays as it was
    message.filter(has_text="Not saved: The kernel is gone").wait_for()
    assert page.locator(f".pw-toggle[data-class='{CLASSES[2]}']").get_attribute("data-value") == "unset"
    page.wait_for_timeout(500)  # anything still under way would show by now
    states = page.evaluate("() => window.__pwStates")
    assert "saved" not in states[1:], f"the status said saved after the restart: {states}"
    assert page.locator(".pw-status").get_attribute("data-state") == "gone"
    assert_no_labeler_errors(page_log, jupyter_server.frontend)
