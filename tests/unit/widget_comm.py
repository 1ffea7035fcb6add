"""A recording comm: the kernel side of a widget exercised as a browser would, without one.

``recording_comms`` makes every widget created meanwhile talk through a :class:`RecordingComm`;
:func:`browser_sends` delivers a custom message the way the front end does, and
:func:`replies` reads back what the kernel sent.
"""

from __future__ import annotations

from typing import Any

import comm
from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """Keeps every message the kernel publishes as ``(msg_type, data, buffers)``."""

    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict, list]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        self.sent.append((msg_type, data or {}, list(buffers or [])))


def install(monkeypatch) -> None:
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


def browser_sends(widget: Any, content: dict, buffers: list | None = None) -> None:
    """A custom message from the front end, through the comm."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": buffers or []})


def browser_updates(widget: Any, state: dict) -> None:
    """A state update from the front end (what a view does when it sets a synced trait)."""
    widget.comm.handle_msg({"content": {"data": {"method": "update", "state": state,
                                                  "buffer_paths": []}}, "buffers": []})


def replies(widget: Any) -> list[tuple[dict, list]]:
    """Custom messages the kernel sent to the front end, in order, with their buffers."""
    return [(data["content"], buffers) for kind, data, buffers in widget.comm.sent
            if kind == "comm_msg" and data.get("method") == "custom"]


def state_updates(widget: Any) -> list[dict]:
    """Trait updates the kernel sent to the front end, in order."""
    return [data["state"] for kind, data, _ in widget.comm.sent
            if kind == "comm_msg" and data.get("method") == "update"]
