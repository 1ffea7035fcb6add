"""Where the e2e tests keep things: artifacts, the Chromium executable, the front ends."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Literal

Frontend = Literal["lab", "notebook"]
FRONTENDS: tuple[Frontend, ...] = ("lab", "notebook")

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Environment variable naming the artifacts folder (screenshots, server and console logs).
ARTIFACTS_ENV = "PATCHWORK_TEST_ARTIFACTS"
#: Environment variable naming the Chromium executable.
CHROMIUM_ENV = "PATCHWORK_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Flags for the system Chromium (see /work/shared/JUPYTER_NOTES.md): no sandbox (we run as
#: root in a container), no GPU, and no background network traffic of any kind.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

VIEWPORT = {"width": 1400, "height": 1000}


def artifacts_dir() -> Path:
    """Folder for screenshots and logs: ``$PATCHWORK_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``.

    The folder is created if needed.  ``/test-artifacts/`` is git-ignored.
    """
    raw = os.environ.get(ARTIFACTS_ENV)
    path = Path(raw).expanduser().resolve() if raw else REPO_ROOT / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium_executable() -> str:
    """The Chromium to drive: ``$PATCHWORK_CHROMIUM`` or ``/usr/bin/chromium``."""
    return os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)


def safe_name(text: str) -> str:
    """Turn a test id such as ``test_x[lab]`` into a file-name-safe string."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "unnamed"


def reset_artifact(path: Path) -> None:
    """Remove a file or folder from a previous run (used for per-session logs)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
