"""Console messages and uncaught errors of a page, and the front ends' known noise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import ConsoleMessage, Error, Page


#: Uncaught page errors that the front end itself raises on every load, whatever the test does.
#: Notebook 7.6: the shortcuts extension's ``pluginChanged`` handler reads
#: ``registry.plugins[id].schema`` for a plugin that is not in the registry (it goes away when
#: ``@jupyterlab/shortcuts-extension`` is disabled, and happens without any third-party
#: extension and without the test's isolation).
KNOWN_PAGE_ERRORS: dict[str, tuple[str, ...]] = {
    "lab": (),
    "notebook": (r"^TypeError: Cannot read properties of undefined \(reading 'schema'\)",),
}


@dataclass
class PageLog:
    """Console messages and uncaught errors of one page, collected while a test runs."""

    console: list[tuple[str, str]] = field(default_factory=list)
    """``(type, text)`` of every console message (``type`` is ``log``, ``warning``, ``error``...)."""
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions and unhandled rejections (Playwright's ``pageerror``)."""

    def attach(self, page: Page) -> None:
        """Start collecting from ``page``."""
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text))

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"{error.name}: {error.message}\n{error.stack or ''}")

    def console_errors(self, ignore: Sequence[str] = ()) -> list[str]:
        """Console messages of type ``error`` whose text matches none of the ``ignore`` regexes."""
        patterns = [re.compile(p) for p in ignore]
        return [
            text
            for kind, text in self.console
            if kind == "error" and not any(p.search(text) for p in patterns)
        ]

    def assert_no_errors(
        self, ignore: Sequence[str] = (), console: bool = False, frontend: str | None = None
    ) -> None:
        """Fail if the page raised an uncaught error (and, with ``console``, logged an error).

        ``ignore`` holds regexes for messages that are expected; with ``frontend``, that front
        end's :data:`KNOWN_PAGE_ERRORS` are ignored too.
        """
        ignore = [*ignore, *KNOWN_PAGE_ERRORS.get(frontend or "", ())]
        patterns = [re.compile(p) for p in ignore]
        problems = [e for e in self.errors if not any(p.search(e) for p in patterns)]
        if console:
            problems += [f"console.error: {t}" for t in self.console_errors(ignore)]
        if problems:
            raise AssertionError("unexpected errors in the page:\n" + "\n---\n".join(problems))

    def dump(self, path: Path) -> Path:
        """Write everything collected to ``path`` (text)."""
        lines = [f"[{kind}] {text}" for kind, text in self.console]
        lines += [f"[pageerror] {e}" for e in self.errors]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path
