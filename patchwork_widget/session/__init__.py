"""The headless controller of a labeling project (see :class:`Session`)."""

from patchwork_widget.session.background import Cancelled, Task
from patchwork_widget.session.core import DEFAULT_OUTFILE, Session
from patchwork_widget.session.events import EventKind, SessionEvent

__all__ = ["Cancelled", "DEFAULT_OUTFILE", "EventKind", "Session", "SessionEvent", "Task"]
