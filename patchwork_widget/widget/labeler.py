"""The Label tab: an anywidget whose front end is bundled from js/ (W2, W3, I6).

Synced traits carry what a fresh view needs to draw itself (classes, queue, counts, sample
options). Labels, acknowledgements and image bytes travel as custom messages, answered by
:mod:`patchwork_widget.widget.protocol`.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Mapping
from typing import Any

import anywidget
import traitlets

from patchwork_widget.active.subsets import subset_options
from patchwork_widget.options.checks import too_large_for_memory
from patchwork_widget.session import EventKind, Session, SessionEvent, navigation
from patchwork_widget.widget import protocol
from patchwork_widget.widget.keys import (DEFAULT_ACTION_KEYS, KeyChoice, carry_keys, load_keys,
                                          pin_keys, resolve_keys, save_keys)

logger = logging.getLogger(__name__)

COUNT_TITLES = {
    "train_positive": "train yes",
    "train_negative": "train no",
    "train_missing": "train ?",
    "validation_positive": "val yes",
    "validation_negative": "val no",
    "validation_missing": "val ?",
}

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"
EXPORT_POLL_SECONDS = 1.0  # how often the view learns whether the outfile has caught up


class Labeler(anywidget.AnyWidget):
    """Keyboard-first labeling view over a :class:`~patchwork_widget.session.Session`."""

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    classes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    queue = traitlets.List(traitlets.Int()).tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)
    subsets = traitlets.List(traitlets.Dict()).tag(sync=True)
    orders = traitlets.List(traitlets.Dict()).tag(sync=True)
    stats = traitlets.Dict().tag(sync=True)
    outfile = traitlets.Unicode().tag(sync=True)
    thumb_size = traitlets.List(traitlets.Int()).tag(sync=True)
    columns = traitlets.Int(5).tag(sync=True)
    revision = traitlets.Int(0).tag(sync=True)  # bumped when predictions change
    notices = traitlets.List(traitlets.Unicode()).tag(sync=True)  # what the last class edit did
    sampled = traitlets.Dict().tag(sync=True)  # subset, order and count of the current queue
    progress = traitlets.Dict().tag(sync=True)  # labeled rows of the queue and of the table
    # The features a worker extracts while the user labels (BackgroundExtraction.status():
    # state, done, total, description, error); the view shows a progress bar while it runs.
    extraction = traitlets.Dict().tag(sync=True)
    # A near-duplicates sample: row (as a string) -> its group's number, shown on the grid.
    groups = traitlets.Dict().tag(sync=True)
    # Queue position of the image on screen, as the kernel last heard it: a view that renders
    # again (page reload, the cell's output shown again) starts there, not at the first image.
    cursor = traitlets.Int(0).tag(sync=True)
    # Take the keyboard the first time the view is on screen (the served app sets it: a page
    # that is the labeler alone); in a notebook the view waits for a click.
    autofocus = traitlets.Bool(False).tag(sync=True)
    # The key table (widget/keys.py): {"actions": {action: [keys]}, "classes": [key or None]}.
    keymap = traitlets.Dict().tag(sync=True)

    def __init__(self, session: Session, keys: Mapping[str, KeyChoice] | None = None) -> None:
        """``keys``: the user's choice of keys (widget/keys.py), checked, then kept beside the
        outfile; None: the choice kept there, if any."""
        super().__init__()
        self.session = session
        self._watching_export = False
        path = session.store.path
        self._shown_keys: dict[str, str | None] = {}  # class -> its key in the table last sent
        if keys is None:
            self._chosen_keys = load_keys(path, session.classes)
        else:
            resolve_keys(session.classes, keys)  # refused before anything is kept
            self._chosen_keys = dict(keys)
            save_keys(path, self._chosen_keys)
        self.outfile = str(path)
        self.thumb_size = list(session.thumbnails.options.size)
        self.on_msg(self._on_request)
        session.subscribe(self._on_event)
        self.refresh()

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Every synced trait is the kernel's: the browser may read them, never set them.

        An update from the browser is refused, logged, and answered with the kernel's values.
        """
        logger.warning("ignored a browser update of kernel-owned state: %s", sorted(sync_data))
        owned = [name for name in sync_data if name in self.keys]
        if owned:
            self.send_state(owned)

    def refresh(self) -> None:
        """Push classes, queue, counts and sample options to the browser."""
        session = self.session
        with self.hold_sync():  # the view reads the classes with their keys
            self._refresh_keys()
            self.classes = session.classes
        # near-duplicates need a kNN search, which holds the features in memory
        features = session.features is not None and not too_large_for_memory(session.features)
        self.subsets = [s.to_dict() for s in subset_options(session.classes, features=features)]
        self.orders = [o.to_dict() for o in session.orders]
        self._refresh_queue()
        self.sampled = dict(session.sampled)
        self.cursor = session.cursor
        self.extraction = session.context.extraction.status()
        self._refresh_counts()

    def _refresh_keys(self) -> None:
        """The key table for the session's classes, each class keeping the key it had.

        A class edit moves no other class's key (issue 23): a class keeps its chosen key, else
        the key last shown while it is free, and only a new class takes a free default key.
        Keys that the class order alone would not give again are pinned in the kept choice
        (``<outfile>.keys.json``), so a reopen shows the same table.
        """
        classes = self.session.classes
        # A name that a class edit made both an action and a class keeps the defaults of both.
        chosen = {name: key for name, key in self._chosen_keys.items()
                  if (name in DEFAULT_ACTION_KEYS) != (name in classes)}
        table = resolve_keys(classes, chosen, kept=self._shown_keys)
        kept = {**{name: key for name, key in self._chosen_keys.items()
                   if name in DEFAULT_ACTION_KEYS or name in classes},
                **pin_keys(classes, chosen, table)}
        self._keep_keys(kept)
        self._shown_keys = dict(zip(classes, table["classes"]))
        self.keymap = table

    def _keep_keys(self, keys: dict[str, KeyChoice]) -> None:
        """The kept choice of keys becomes ``keys``, in memory and beside the outfile."""
        if keys != self._chosen_keys:
            self._chosen_keys = keys
            save_keys(self.session.store.path, keys)

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind is EventKind.CLASSES:
            self.notices = list(event.notices)
            # The keys follow their classes over the edit: a rename keeps the class's key.
            self._keep_keys(carry_keys(self._chosen_keys, event.payload))
            self._shown_keys = carry_keys(self._shown_keys, event.payload)
            self.refresh()
            self.revision += 1  # suggestions moved or went with the classes
        elif event.kind is EventKind.DERIVED:
            self.refresh()
            self.revision += 1
        elif event.kind is EventKind.LABELS:  # others' labels: counts, and fresh row values
            self._refresh_counts()
            self.revision += 1
        elif event.kind is EventKind.QUEUE:
            self._refresh_queue()
            self.cursor = self.session.cursor
            self.progress = navigation.progress(self.session)
        elif event.kind is EventKind.ONLINE:
            self._refresh_counts()
        elif event.kind is EventKind.PROGRESS and event.source == "extract":
            self.extraction = dict(event.payload)

    def _refresh_queue(self) -> None:
        """The queue and its near-duplicate groups (one update: the grid reads both)."""
        with self.hold_sync():
            self.groups = {str(row): number for row, number in self.session.queue_groups.items()}
            self.queue = list(self.session.queue)

    def _refresh_counts(self, rows: list[int] | None = None) -> None:
        """Counts, progress and stats; ``rows``: the only rows the last annotation touched."""
        counts = self.session.counts
        self.counts = {
            "columns": [COUNT_TITLES.get(c, str(c)) for c in counts.columns],
            "index": [str(i) for i in counts.index],
            "data": counts.astype(int).to_numpy().tolist(),
        }
        self.progress = navigation.progress(self.session, rows)
        self._refresh_stats()

    def _refresh_stats(self) -> None:
        """Pace, whether the outfile holds every saved label, and the online loop's state."""
        online = self.session.online.status()
        export = self.session.store.export_state
        self.stats = {
            **self.session.pace(),
            "export": {"state": export.state, "exported_at": export.exported_at, "error": export.error},
            "online": {key: online[key] for key in ("state", "rounds", "images_since_update", "training")},
        }
        if export.state != "exported" and not self._watching_export:
            self._watching_export = self.session.dispatcher.call_later(EXPORT_POLL_SECONDS, self._export_tick)

    def _export_tick(self) -> None:
        """While the outfile is behind the journal, look again every second (kernel thread)."""
        self._watching_export = False
        if not self.session.store.closed:
            self._refresh_stats()

    def _on_request(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        try:
            replies = protocol.handle(self.session, content)
        except Exception as err:  # ipywidgets would swallow it: log it and tell the view
            logger.exception("request %s failed", protocol.short(content))
            msg_id = content.get("id") if isinstance(content, dict) else None
            replies = [protocol.error_reply(msg_id, f"internal error: {err!r}")]
        for reply, reply_buffers in replies:
            self.send(reply, reply_buffers)
        self.cursor = self.session.cursor  # a move, a jump, a sample or "more like this"
        kind = replies[0][0]["type"] if replies else None
        if kind == "ack":
            self._refresh_counts([values["row"] for values in replies[0][0]["rows"]])
        elif kind == "sampled":
            self.refresh()
