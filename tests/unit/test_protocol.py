"""The browser <-> kernel message protocol: every bad request is rejected, logged, harmless."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.widget import protocol

CLASSES = ["cat", "dog"]


@pytest.fixture
def session(tmp_path, image_paths) -> Session:
    df = prep_label_dataframe(image_paths, CLASSES)
    return Session.open(df, outfile=tmp_path / "labels.csv", seed=0)


def state(session: Session):
    return session.df.copy(), len(session.history), session.counts.copy()


def assert_unchanged(session: Session, before) -> None:
    df, n_events, counts = before
    pd.testing.assert_frame_equal(session.df, df)
    assert len(session.history) == n_events
    pd.testing.assert_frame_equal(session.counts, counts)


def test_annotate_is_acknowledged_with_the_saved_values(session):
    replies = protocol.handle(
        session, {"type": "annotate", "id": "v:1", "rows": [3], "changes": {"cat": 1}, "seconds": 2.5}
    )
    (reply, buffers), = replies
    assert reply["type"] == "ack" and reply["id"] == "v:1" and buffers == []
    assert reply["rows"][0]["labels"] == [1.0, None]
    assert session.df.at[3, "cat"] == 1.0
    assert session.history["seconds"].iloc[-1] == 2.5


def test_annotate_several_rows_in_one_request(session):
    protocol.handle(session, {"type": "annotate", "id": 1, "rows": [1, 2, 5], "changes": {"dog": 0}})
    assert session.df.loc[[1, 2, 5], "dog"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "msg, message",
    [
        ({"type": "annotate", "rows": [40], "changes": {"cat": 1}}, "unknown row 40"),
        ({"type": "annotate", "rows": [-1], "changes": {"cat": 1}}, "unknown row -1"),
        ({"type": "annotate", "rows": ["3"], "changes": {"cat": 1}}, "row '3' is not an integer"),
        ({"type": "annotate", "rows": [True], "changes": {"cat": 1}}, "row True is not an integer"),
        ({"type": "annotate", "rows": [], "changes": {"cat": 1}}, "list of 1 to"),
        ({"type": "annotate", "rows": [1], "changes": {"cow": 1}}, "unknown field 'cow'"),
        ({"type": "annotate", "rows": [1], "changes": {"cat": 2}}, "'cat'"),
        ({"type": "annotate", "rows": [1], "changes": {"exclude": "yes"}}, "'exclude'"),
        ({"type": "annotate", "rows": [1], "changes": ["cat"]}, "'changes' has the wrong type"),
        ({"type": "annotate", "rows": [1]}, "missing field 'changes'"),
        ({"type": "annotate", "rows": [1], "changes": {"cat": 1}, "seconds": -4}, "seconds must be"),
        ({"type": "annotate", "rows": [1], "changes": {"cat": 1}, "seconds": 86_400}, "under 86400"),
        ({"type": "annotate", "rows": [1, 1], "changes": {"cat": 1}}, "repeat a row"),
        ({"type": "thumbs", "rows": list(range(65))}, "list of 1 to 64"),
        ({"type": "sample", "subset": {"kind": "nope"}, "order": "random", "count": 5}, "unknown subset kind"),
        ({"type": "sample", "subset": {"kind": "all"}, "order": "random", "count": 0}, "'count' must be"),
        ({"type": "class", "action": "explode", "name": "x"}, "class edit kind must be one of"),
        ({"type": "class", "action": "add", "name": "filepath"}, "filepath"),
        ({"type": "fly"}, "unknown request type 'fly'"),
        ({"rows": [1]}, "unknown request type None"),
        ([1, 2], "a request is a JSON object"),
        ("annotate", "a request is a JSON object"),
    ],
)
def test_bad_requests_get_an_error_reply_a_log_line_and_change_nothing(session, caplog, msg, message):
    before = state(session)
    with caplog.at_level(logging.ERROR, logger="patchwork_widget.widget.protocol"):
        ((reply, _),) = protocol.handle(session, msg)
    assert reply["type"] == "error"
    assert message in reply["message"]
    assert any("rejected request" in r.message for r in caplog.records)
    assert_unchanged(session, before)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["cat", "dog", "exclude", "validation", "cow", ""])
requests = st.fixed_dictionaries(
    {"type": st.sampled_from(["annotate", "undo", "accept", "labels", "thumbs", "sample", "class", "x"])},
    optional={
        "id": json_values,
        "rows": st.lists(st.integers(-3, 45) | json_values, max_size=4) | json_values,
        "row": st.integers(-3, 45) | json_values,
        "changes": st.dictionaries(field_names, json_values, max_size=3) | json_values,
        "seconds": json_values,
        "subset": json_values,
        "order": json_values,
        "count": json_values,
        "action": st.sampled_from(["add", "rename", "remove"]) | json_values,
        "name": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg=requests | json_values)
def test_random_requests_never_raise_and_rejected_ones_change_nothing(session, msg):
    before = state(session)
    replies = protocol.handle(session, msg)
    assert replies, "every request gets a reply"
    if replies[0][0]["type"] == "error":
        assert_unchanged(session, before)


def test_thumbnails_travel_as_binary_buffers_and_bad_files_are_reported(session, tmp_path):
    bad = session.df.at[4, "filepath"]
    with open(bad, "wb") as f:
        f.write(b"not an image at all")
    replies = protocol.handle(session, {"type": "thumbs", "id": 9, "rows": [0, 4]})
    (good, good_buffers), (broken, broken_buffers) = replies
    assert good == {"type": "thumb", "row": 0, "mime": "image/jpeg"}
    assert good_buffers[0][:2] == b"\xff\xd8"  # a JPEG
    assert broken["row"] == 4 and "Pillow cannot identify" in broken["error"] and broken_buffers == []


def test_sample_then_labels_round_trip(session):
    ((reply, _),) = protocol.handle(
        session, {"type": "sample", "id": 2, "subset": {"kind": "unlabeled"}, "order": "random", "count": 7}
    )
    assert reply == {"type": "sampled", "id": 2, "count": 7}
    ((labels, _),) = protocol.handle(session, {"type": "labels", "id": 3, "rows": session.queue})
    assert [v["row"] for v in labels["rows"]] == session.queue


def test_undo_and_accept_requests(session):
    protocol.handle(session, {"type": "annotate", "id": 1, "rows": [2], "changes": {"cat": 0}})
    ((undo, _),) = protocol.handle(session, {"type": "undo", "id": 2})
    assert undo["type"] == "ack" and undo["rows"][0]["labels"] == [None, None]
    ((refused, _),) = protocol.handle(session, {"type": "accept", "id": 3, "row": 2})
    assert refused["type"] == "error" and "no predictions yet" in refused["message"]
    session.annotate(0, {"cat": 1, "dog": 1})
    session.set_predictions(pd.DataFrame(np.full((40, 2), 0.95), columns=CLASSES))
    ((accepted, _),) = protocol.handle(session, {"type": "accept", "id": 4, "row": 2})
    assert accepted["rows"][0]["labels"] == [1.0, 1.0]


def test_save_writes_the_outfile(session, tmp_path):
    protocol.handle(session, {"type": "annotate", "id": 1, "rows": [0], "changes": {"dog": 1}})
    ((reply, _),) = protocol.handle(session, {"type": "save", "id": 5})
    saved = pd.read_csv(reply["path"])
    assert saved.loc[0, "dog"] == 1.0 and saved["dog"].iloc[1:].isna().all()


HUGE = "=" * 2_000_000


@pytest.mark.parametrize(
    "msg",
    [
        {"type": HUGE},
        {"type": "annotate", "rows": [HUGE], "changes": {"cat": 1}},
        {"type": "annotate", "rows": [1], "changes": {HUGE: 1}},
        {"type": "annotate", "rows": [1], "changes": {"cat": HUGE}},
        {"type": "class", "action": "remove", "name": HUGE},
        {"type": "full", "row": 1, "bands": [HUGE]},
        {"type": "annotate", "id": HUGE, "rows": [-1], "changes": {"cat": 1}},
    ],
)
def test_error_replies_and_log_lines_quote_a_huge_input_in_a_few_hundred_characters(session, caplog, msg):
    before = state(session)
    with caplog.at_level(logging.INFO):
        ((reply, _),) = protocol.handle(session, msg)
    assert reply["type"] == "error"
    assert len(reply["message"]) <= protocol.MAX_QUOTE + 40
    assert reply["id"] is None or len(str(reply["id"])) <= protocol.MAX_ID
    assert caplog.records and all(len(r.getMessage()) < 3 * (protocol.MAX_QUOTE + 40) for r in caplog.records)
    assert_unchanged(session, before)


def test_an_image_without_the_shown_bands_fails_only_its_own_thumbnail(tmp_path, image_paths):
    """The widget shows bands (0, 1, 2); a one-band image among RGB ones gets an error in
    its own row and the others of the request are sent."""
    from patchwork_widget.images.thumbnails import DisplayOptions

    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(gray)
    df = prep_label_dataframe(image_paths[:3] + [str(gray)], CLASSES)
    session = Session.open(df, outfile=tmp_path / "bands.csv",
                           display=DisplayOptions(bands=(0, 1, 2)))
    try:
        replies = protocol.handle(session, {"type": "thumbs", "id": 3, "rows": [0, 3, 1]})
        assert [reply["row"] for reply, _ in replies] == [0, 3, 1]
        (first, first_data), (bad, bad_data), (last, last_data) = replies
        assert first["mime"] == "image/jpeg" and first_data and last_data
        assert bad_data == [] and "bands (0, 1, 2) asked of an image with 1 band" in bad["error"]
        assert session.unreadable.empty  # the file is readable: it is not marked unreadable
    finally:
        session.close()
