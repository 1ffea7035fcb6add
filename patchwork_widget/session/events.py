"""What a Session tells its views: a small event type and a list of listeners.

Events are emitted on the Session's owner thread only (the kernel's main thread), so a
listener may set traitlets directly.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class EventKind(str, enum.Enum):
    CLASSES = "classes"  # the class list changed; ``notices`` say what happened to derived state,
    # ``payload`` is the ClassEdit (None for other annotators' edits, known only as a result)
    DERIVED = "derived"  # predictions, propagation scores or embeddings changed
    PROGRESS = "progress"  # a background task reported progress (``payload``)
    TASK_END = "task_end"  # a background task ended (``task``: look at ``task.exception()``)
    QUEUE = "queue"  # the queue was re-ranked (online learning)
    LABELS = "labels"  # other annotators' labels arrived (team journal); ``payload``: who
    ONLINE = "online"  # online learning changed state or finished a round (``payload``: status)


@dataclass(frozen=True)
class SessionEvent:
    kind: EventKind
    notices: tuple[str, ...] = ()
    task: Any = None
    payload: Any = None
    source: str = ""  # which task or action: "train", "propagate", ...


Listener = Callable[[SessionEvent], None]


@dataclass
class Listeners:
    """Callbacks that receive every event; one failing listener does not stop the others."""

    callbacks: list[Listener] = field(default_factory=list)

    def add(self, callback: Listener) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it."""
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback) if callback in self.callbacks else None

    def emit(self, event: SessionEvent) -> None:
        for callback in list(self.callbacks):
            try:
                callback(event)
            except Exception:  # a view failed to update: log it, keep the others informed
                logger.exception("a session listener failed on %s", event.kind.value)
