"""Getting around a project: full-resolution view, progress, jump by file name, more like this."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from patchwork_widget.images.thumbnails import DisplayOptions
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session, navigation
from patchwork_widget.widget import protocol

CLASSES = ["cat", "dog"]


@pytest.fixture
def session(tmp_path, image_paths) -> Session:
    df = prep_label_dataframe(image_paths, CLASSES)
    return Session.open(df, outfile=tmp_path / "labels.csv", seed=0)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# ---------------------------------------------------------------------- full view
def test_full_view_is_the_file_at_its_own_resolution(session):
    session.sample(count=10)
    image = navigation.full_view(session, 3)
    pixels = decoded(image.data)
    original = np.asarray(Image.open(session.df.at[3, "filepath"]))
    assert image.mime == "image/png" and not image.scaled
    np.testing.assert_array_equal(pixels, original)  # lossless, not the 256 px thumbnail
    assert (image.width, image.height, image.bands) == (24, 24, 3)


def test_full_view_caps_the_long_side(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((300, 1200, 3), dtype=np.uint8)).save(path)
    session = Session.open(prep_label_dataframe([str(path)], CLASSES), outfile=tmp_path / "l.csv")
    image = navigation.full_view(session, 0, max_side=400)
    assert (image.width, image.height) == (400, 100)
    assert (image.source_width, image.source_height) == (1200, 300) and image.scaled
    assert decoded(image.data).shape[:2] == (100, 400)


def test_full_view_bands_and_stretch_of_a_multiband_tiff(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4096, (40, 30, 5)).astype(np.uint16)
    path = tmp_path / "ms.tif"
    tifffile.imwrite(path, raw, photometric="minisblack", planarconfig="contig")
    session = Session.open(prep_label_dataframe([str(path)], CLASSES), outfile=tmp_path / "l.csv",
                           display=DisplayOptions(size=(16, 16)))
    default = navigation.full_view(session, 0)
    assert default.shown_bands == (0, 1, 2) and default.stretch == (2.0, 98.0)
    assert default.bands == 5 and default.dtype == "uint16"
    gray = navigation.full_view(session, 0, bands=[4], stretch=[0, 100])
    pixels = decoded(gray.data)
    assert pixels.shape == (40, 30) and gray.shown_bands == (4,)
    band = raw[:, :, 4].astype(float)  # reference: min-max stretch of band 4
    expected = np.clip((band - band.min()) / (band.max() - band.min()), 0, 1) * 255 + 0.5
    np.testing.assert_array_equal(pixels, expected.astype(np.uint8))
    with pytest.raises(ValueError, match="asked of an image with 5 band"):
        navigation.full_view(session, 0, bands=[7])
    with pytest.raises(ValueError, match="bands must be one or three band numbers"):
        navigation.full_view(session, 0, bands=[-1])
    with pytest.raises(ValueError, match="stretch must be percentiles"):
        navigation.full_view(session, 0, stretch=[50, 10])


def test_full_request_sends_the_bytes_and_what_was_shown(session):
    (reply, buffers), = protocol.handle(session, {"type": "full", "id": "v:1", "row": 2})
    assert reply["type"] == "full" and reply["row"] == 2 and reply["scaled"] is False
    assert reply["max_side"] == navigation.FULL_MAX_SIDE
    assert decoded(buffers[0]).shape == (24, 24, 3)
    (reply, _), = protocol.handle(session, {"type": "full", "id": 2, "row": 2, "bands": ["x"]})
    assert reply["type"] == "error" and "'bands' must be a list of numbers" in reply["message"]


def test_full_request_of_an_unreadable_file_says_why(session, tmp_path):
    path = session.df.at[5, "filepath"]
    with open(path, "wb") as f:
        f.write(b"not a png")
    (reply, _), = protocol.handle(session, {"type": "full", "id": 1, "row": 5})
    assert reply["type"] == "error" and reply["message"].startswith("cannot read this image")


# ---------------------------------------------------------------------- progress
def test_progress_counts_fully_labeled_or_excluded_rows(session):
    session.sample(count=10)
    queue = session.queue
    session.annotate(queue[0], {"cat": 1, "dog": 0})  # fully labeled
    session.annotate(queue[1], {"cat": 1})  # partly: not labeled yet
    session.annotate(queue[2], {"exclude": True})  # set aside: done
    session.annotate(next(r for r in range(40) if r not in queue), {"cat": 0, "dog": 0})
    assert navigation.progress(session) == {"queue": {"labeled": 2, "total": 10},
                                            "all": {"labeled": 3, "total": 40}}


def test_progress_updated_row_by_row_matches_a_full_count(session):
    session.sample(count=10)
    rng = np.random.default_rng(0)
    navigation.progress(session)
    for step in range(30):
        rows = sorted({int(r) for r in rng.integers(0, 40, size=rng.integers(1, 4))})
        changes = {"exclude": bool(rng.integers(2))} if step % 5 == 0 else \
            {c: float(rng.integers(2)) for c in CLASSES if rng.integers(2)} or {"cat": None}
        session.annotate(rows, changes)
        if step % 7 == 3:  # two annotations since the last look: the rows of one are not enough
            session.annotate([int(rng.integers(40))], {"dog": 1})
        got = navigation.progress(session, rows)
        labeled = session.df[CLASSES].notna().all(axis=1) | session.df["exclude"]
        assert got["all"]["labeled"] == int(labeled.sum()), step
        assert got["queue"]["labeled"] == int(labeled.iloc[session.queue].sum()), step


# ---------------------------------------------------------------------- jump
def test_find_files_ranks_exact_then_prefix_then_substring(tmp_path):
    names = ["b_cat.png", "cat.png", "cat_2.png", "a_cat.png", "dog.png", "CAT.PNG.bak", "x/cat.png"]
    paths = [str(tmp_path / n) for n in names]
    session = Session.open(prep_label_dataframe(paths, CLASSES), outfile=tmp_path / "l.csv")
    found = navigation.find_files(session, "Cat.png")
    # exact (cat.png; x/cat.png is also named cat.png), then names starting with it, then the rest
    assert found.rows == [1, 6, 5, 0, 3] and found.total == 5 and not found.more
    assert navigation.find_files(session, "cat", limit=2).rows == [1, 2]  # prefixes, table order
    assert navigation.find_files(session, "x/cat").rows == [6]  # a / matches whole paths
    assert navigation.find_files(session, "zebra") == navigation.FileMatches([], 0, False)


def test_find_files_stops_counting_at_a_cap(session, monkeypatch):
    monkeypatch.setattr(navigation, "MAX_COUNTED", 7)
    found = navigation.find_files(session, "img_", limit=3)
    assert found.rows == [0, 1, 2] and found.total == 7 and found.more
    with pytest.raises(ValueError, match=r"'img_' matches over 7 files \(img_0000.png, img_0001.png, "
                                         r"img_0002.png, img_0003.png, img_0004.png and over 2 more\)"):
        navigation.jump_to(session, "img_")


def test_name_index_finds_every_row_holding_the_text_against_a_plain_scan():
    rng = np.random.default_rng(3)
    names = ["".join(rng.choice(list("abc"), size=rng.integers(1, 6))) for _ in range(300)]
    names[10:13] = ["ab", "ab", "ab"]  # neighbours with the same name: overlapping matches
    index = navigation.NameIndex(names)
    plain = {
        "a": lambda n: "a" in n, "ab": lambda n: "ab" in n, "cab": lambda n: "cab" in n,
        "bbb": lambda n: "bbb" in n, "\nab": lambda n: n.startswith("ab"),
        "\nab\n": lambda n: n == "ab", "b\n": lambda n: n.endswith("b"),
    }
    for pattern, holds in plain.items():
        expected = [i for i, n in enumerate(names) if holds(n)]
        assert index.rows_of(pattern, 10_000) == (expected, False), pattern
    assert index.rows_of("a", 3) == ([i for i, n in enumerate(names) if "a" in n][:3], True)


def test_jump_moves_to_a_queued_image_or_inserts_it_after_the_cursor(session):
    session.sample(count=5)
    queued = session.queue[3]
    assert navigation.jump_to(session, f"img_{queued:04d}.png") == 3 and session.cursor == 3
    outside = next(r for r in range(40) if r not in session.queue)
    session.cursor = 1
    before = list(session.queue)
    assert navigation.jump_to(session, f"IMG_{outside:04d}") == 2
    assert session.queue == before[:2] + [outside] + before[2:] and session.cursor == 2


def test_jump_explains_no_match_and_several(session):
    with pytest.raises(ValueError, match="no file name contains 'zebra'"):
        navigation.jump_to(session, "zebra")
    with pytest.raises(ValueError, match=r"'img_00' matches 40 files \(img_0000.png, .* and 35 more\)"):
        navigation.jump_to(session, "img_00")


def test_jump_and_find_requests(session):
    session.sample(count=5)
    replies = protocol.handle(session, {"type": "find", "id": 1, "text": "0002"})
    assert replies[0][0]["names"] == ["img_0002.png"] and replies[0][0]["total"] == 1
    assert replies[0][0]["more"] is False
    (reply, _), = protocol.handle(session, {"type": "jump", "id": 2, "text": "img_0002.png"})
    assert reply["type"] == "jumped" and session.queue[reply["index"]] == 2 == reply["row"]
    (reply, _), = protocol.handle(session, {"type": "jump", "id": 3, "text": "  "})
    assert reply["type"] == "error" and "'text' must be" in reply["message"]


# ---------------------------------------------------------------------- more like this
def test_more_like_this_fills_the_queue_with_the_nearest_unlabeled_rows(tmp_path, image_paths):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 8)).astype(np.float32)
    session = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                           features=features, seed=0)
    session.sample(count=6)  # unlabeled, 6
    session.annotate(7, {"cat": 1})
    session.annotate(8, {"exclude": True})
    queue = navigation.more_like_this(session, 0)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    reference = [int(r) for r in np.argsort(-(unit @ unit[0])) if r not in (0, 7, 8)][:6]
    assert queue == [0, *reference] and session.cursor == 0
    (reply, _), = protocol.handle(session, {"type": "similar", "id": 1, "row": 3})
    assert reply["count"] == 6 and session.queue[0] == 3


def test_more_like_this_without_features_says_what_it_needs(session):
    (reply, _), = protocol.handle(session, {"type": "similar", "id": 1, "row": 3})
    assert reply["type"] == "error" and "'more like this' needs features" in reply["message"]
