"""Messages between the labeler in the browser and the Session in the kernel.

Every request from the browser is a small JSON object ``{"type": ..., "id": n, ...}`` naming
rows by their integer position, never by path. :func:`handle` validates it, calls the
Session, and returns the replies to send back as ``(content, buffers)`` pairs. A bad request
gets an ``error`` reply and is logged; it never changes any state.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from patchwork_widget.images.read import ImageReadError
from patchwork_widget.images.thumbnails import BandsError
from patchwork_widget.labels.errors import JournalError, JournalUnavailableError, OutcomeUnknownError
from patchwork_widget.options.active import ClassEdit
from patchwork_widget.session import Session, navigation

logger = logging.getLogger(__name__)

Reply = tuple[dict[str, Any], list[bytes]]

MAX_ROWS_PER_REQUEST = 1000
MAX_THUMBS_PER_REQUEST = 64
MAX_SAMPLE = 100_000
MAX_FOUND = 50  # file names offered as completions at most
MAX_TEXT = 1000  # characters of a file name asked for


class BadRequest(ValueError):
    """A request that is malformed or names something that does not exist."""


def _field(msg: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in msg:
        raise BadRequest(f"missing field {name!r}")
    value = msg[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadRequest(f"field {name!r} has the wrong type: {type(value).__name__}")
    return value


def _row_list(value: Any, limit: int) -> list:
    """The request's ``rows``: a list of 1 to ``limit`` entries (each checked by its user)."""
    if not isinstance(value, list) or not 0 < len(value) <= limit:
        raise BadRequest(f"'rows' must be a list of 1 to {limit} row numbers")
    return value


def _rows(session: Session, value: Any, limit: int) -> list[int]:
    """Rows to read: a list of 1 to ``limit`` row numbers of the table."""
    value = _row_list(value, limit)
    n = len(session.df)
    for row in value:
        if not isinstance(row, numbers.Integral) or isinstance(row, bool) or not 0 <= row < n:
            raise BadRequest(f"unknown row {row!r}: rows are integers 0..{n - 1}")
    return [int(r) for r in value]


def _labels_reply(session: Session, kind: str, msg_id: Any, rows: list[int]) -> Reply:
    return {"type": kind, "id": msg_id, "rows": session.row_values(rows)}, []


def _annotate(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    """A label edit: the store checks rows, fields, values and seconds (one owner)."""
    rows = _row_list(msg.get("rows"), MAX_ROWS_PER_REQUEST)
    changes = _field(msg, "changes", dict)
    rows = session.annotate(rows, changes, seconds=msg.get("seconds"))
    return [_labels_reply(session, "ack", msg.get("id"), rows)]


def _undo(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    return [_labels_reply(session, "ack", msg.get("id"), session.undo())]


def _accept(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    (row,) = _rows(session, [msg.get("row")], 1)
    rows = session.accept_suggestions(row, seconds=msg.get("seconds"))
    return [_labels_reply(session, "ack", msg.get("id"), rows)]


def _labels(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    rows = _rows(session, msg.get("rows"), MAX_ROWS_PER_REQUEST)
    return [_labels_reply(session, "labels", msg.get("id"), rows)]


def _thumbs(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    """The thumbnails of ``rows``, read together; an image that cannot be read (or shown
    with the bands asked) gets an error reply, and the others of the request are sent."""
    rows = _rows(session, msg.get("rows"), MAX_THUMBS_PER_REQUEST)
    replies = []
    for row, result in zip(rows, session.thumbnail_page(rows)):
        if isinstance(result, ImageReadError):
            replies.append(({"type": "thumb", "row": row, "error": short(result.cause)}, []))
        elif isinstance(result, BandsError):
            replies.append(({"type": "thumb", "row": row, "error": short(str(result))}, []))
        else:
            replies.append(({"type": "thumb", "row": row,
                             "mime": session.thumbnails.options.mime}, [result]))
    return replies


def _sample(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    count = _field(msg, "count", numbers.Integral)
    if not 0 < count <= MAX_SAMPLE:
        raise BadRequest(f"'count' must be 1..{MAX_SAMPLE}, got {count}")
    subset = _field(msg, "subset", dict)
    order = _field(msg, "order", (str, dict))
    queue = session.sample(subset, order, int(count))
    return [({"type": "sampled", "id": msg.get("id"), "count": len(queue)}, [])]


def _class_edit(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    edit = ClassEdit.from_dict({"kind": _field(msg, "action", str), "name": _field(msg, "name", str),
                                **{k: msg[k] for k in ("new", "other") if k in msg}})
    notices = session.edit_classes(edit)
    return [({"type": "classes", "id": msg.get("id"), "notices": notices}, [])]


def _cursor(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    """The view moved to position ``index`` of the queue (online re-ranking keeps it)."""
    index = _field(msg, "index", numbers.Integral)
    if not 0 <= index < max(len(session.queue), 1):
        raise BadRequest(f"'index' must be a queue position 0..{len(session.queue) - 1}, got {index}")
    session.cursor = int(index)
    return []


def _optional_numbers(msg: Mapping[str, Any], name: str, kind: type) -> list | None:
    value = msg.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool)
                                               for v in value):
        raise BadRequest(f"{name!r} must be a list of numbers or null, got {value!r}")
    return value


def _full(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    """The current image at full resolution (long side capped), through the bands and stretch
    the viewer chose (null: the session's display options)."""
    (row,) = _rows(session, [msg.get("row")], 1)
    bands = _optional_numbers(msg, "bands", numbers.Integral)
    stretch = _optional_numbers(msg, "stretch", numbers.Real)
    try:
        image = navigation.full_view(session, row, bands=bands, stretch=stretch)
    except ImageReadError as err:
        raise BadRequest(f"cannot read this image: {err.cause}") from None
    reply = {
        "type": "full", "id": msg.get("id"), "row": row, "mime": image.mime,
        "width": image.width, "height": image.height, "source_width": image.source_width,
        "source_height": image.source_height, "bands": image.bands, "dtype": image.dtype,
        "shown_bands": list(image.shown_bands),
        "stretch": None if image.stretch is None else list(image.stretch),
        "scaled": image.scaled, "max_side": navigation.FULL_MAX_SIDE,
    }
    return [(reply, [image.data])]


def _text(msg: Mapping[str, Any]) -> str:
    text = _field(msg, "text", str)
    if not text.strip() or len(text) > MAX_TEXT:
        raise BadRequest(f"'text' must be 1 to {MAX_TEXT} characters of a file name, got {text[:40]!r}")
    return text


def _find(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    """File names that match the text typed so far (completions)."""
    found = navigation.find_files(session, _text(msg), limit=MAX_FOUND)
    names = [os.path.basename(str(p)) for p in session.df["filepath"].to_numpy()[found.rows]]
    reply = {"type": "found", "id": msg.get("id"), "names": names, "total": found.total, "more": found.more}
    return [(reply, [])]


def _jump(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    index = navigation.jump_to(session, _text(msg))
    return [({"type": "jumped", "id": msg.get("id"), "index": index, "row": session.queue[index]}, [])]


def _similar(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    (row,) = _rows(session, [msg.get("row")], 1)
    queue = navigation.more_like_this(session, row)
    return [({"type": "similar", "id": msg.get("id"), "count": len(queue) - 1}, [])]


def _save(session: Session, msg: Mapping[str, Any]) -> list[Reply]:
    return [({"type": "saved", "id": msg.get("id"), "path": session.save()}, [])]


HANDLERS: dict[str, Callable[[Session, Mapping[str, Any]], list[Reply]]] = {
    "annotate": _annotate,
    "undo": _undo,
    "accept": _accept,
    "labels": _labels,
    "thumbs": _thumbs,
    "sample": _sample,
    "class": _class_edit,
    "cursor": _cursor,
    "save": _save,
    "full": _full,
    "find": _find,
    "jump": _jump,
    "similar": _similar,
}


def handle(session: Session, msg: Any) -> list[Reply]:
    """Answer one request from the browser; errors become an ``error`` reply."""
    msg_id = msg.get("id") if isinstance(msg, dict) else None
    try:
        if not isinstance(msg, dict):
            raise BadRequest(f"a request is a JSON object, got {type(msg).__name__}")
        kind = msg.get("type")
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise BadRequest(f"unknown request type {msg.get('type')!r}; allowed: {', '.join(HANDLERS)}")
        return handler(session, msg)
    except ValueError as err:  # BadRequest, and every validation error of the store
        logger.error("rejected request %s: %s", short(msg), short(str(err)))
        return [error_reply(msg_id, str(err))]
    except JournalUnavailableError as err:  # a team journal's server is away or busy
        status = "may already be saved" if isinstance(err, OutcomeUnknownError) else "not saved"
        logger.warning("request %s %s: %s", short(msg), status, short(str(err)))
        advice = "" if str(err).endswith("try again") else "; try again"
        return [error_reply(msg_id, f"{status}: {err}{advice}")]
    except JournalError as err:  # the journal's file: a full disk, a damaged file, no access
        logger.error("request %s failed: %s", short(msg), short(str(err)))
        return [error_reply(msg_id, str(err))]


MAX_QUOTE = 300  # characters of a request (or of an error message) quoted at most
MAX_ID = 100  # characters of a request id echoed at most (the view's ids are ~10)


def short(value: Any, limit: int = MAX_QUOTE) -> str:
    """``value`` (``repr`` unless it is text) cut to ``limit`` characters, saying how much
    was left out: what every reply and log line quotes of a request."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def error_reply(msg_id: Any, message: str) -> Reply:
    """The ``error`` reply to a request, its message cut by :func:`short`; an id too long
    to be the view's is not echoed."""
    if isinstance(msg_id, str) and len(msg_id) > MAX_ID:
        msg_id = None
    return {"type": "error", "id": msg_id, "message": short(message)}, []
