"""Label while it extracts (I5): a named extractor's features come from a worker process while
the table, the queue and the journal work; training uses the labeled rows that have features;
orders that need features say how far the extraction is; a killed worker loses at most a
batch, and the next open resumes from the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from patchwork_widget import Session, prep_label_dataframe  # noqa: E402
from patchwork_widget.images.extract import DONE, extract_features  # noqa: E402
from patchwork_widget.images.feature_cache import ArrivingFeatures, cache_folder  # noqa: E402
from patchwork_widget.session import EventKind, navigation  # noqa: E402
from patchwork_widget.widget.labeler import Labeler  # noqa: E402
from patchwork_widget.session.extraction_worker import (  # noqa: E402
    RUNNING,
    ExtractionFailed,
    batch_size_for,
)

N = 150


def random_pngs(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small extractor saved as a .keras file: the same weights in the worker and here."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(6, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D()])
    path = tmp_path_factory.mktemp("extractor") / "small.keras"
    model.save(path)
    return path, model


def test_the_session_opens_at_once_and_the_worker_fills_in_the_features(tmp_path, keras_file):
    path, model = keras_file
    files = random_pngs(tmp_path / "images", N)
    session = Session.open(prep_label_dataframe(files, ["cat"]), outfile=tmp_path / "l.csv",
                           feature_extractor=str(path), seed=0)
    events = []
    session.subscribe(events.append)
    labeler = Labeler(session)
    try:
        # open returned without the features: nothing of the worker's is applied until this
        # (the owner) thread runs the Dispatcher, which it has not done yet
        assert session.context.features is None and session.context.extraction.state == RUNNING
        assert labeler.extraction["state"] == "running" and labeler.extraction["total"] == N
        # the grid and the journal work whatever the extraction has done
        queue = session.sample(count=10)
        for row in queue[:5]:
            session.annotate(row, {"cat": float(row % 2)})
        assert session.extraction.total == N
        features = session.extraction.wait(timeout=300)
        assert session.features is features
        reference = extract_features(files, model, imshape=(16, 16), progress=False).features
        np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-6)
        assert session.extraction.status()["state"] == "done"
        progress = [e.payload for e in events if e.kind is EventKind.PROGRESS]
        assert progress[-1]["done"] == N and progress[-1]["state"] == "done"
        assert [e.source for e in events if e.kind is EventKind.DERIVED] == ["features"]
        assert labeler.extraction == {"state": "done", "done": N, "total": N,
                                      "description": "small.keras", "error": ""}
        assert any(order["name"] == "diversity" for order in labeler.orders)
        assert session.df[["cat"]].notna().sum().item() == 5
        # the diversity order now has what it needs
        assert len(session.sample(order="diversity", count=5)) == 5
    finally:
        session.close()


def test_a_killed_worker_loses_at_most_a_batch_and_the_next_open_resumes(tmp_path, keras_file):
    path, model = keras_file
    files = random_pngs(tmp_path / "images", N)
    df = prep_label_dataframe(files, ["cat"])
    session = Session.open(df, outfile=tmp_path / "l.csv", feature_extractor=str(path))
    extraction = session.extraction
    while extraction.state == RUNNING and extraction.done == 0:
        session.dispatcher.drain()
        extraction._worker.process.poll()
    session.close()  # kills the worker mid-way (or after the end)
    ready = extraction.rows.ready.copy()
    folder = cache_folder(tmp_path / "l.csv")
    meta = json.loads((folder / "meta.json").read_text())
    part = folder / meta["parts"][0]
    part_files = json.loads(part.with_name(part.name + ".files.json").read_text())
    status = np.load(f"{part}.status.npy")
    on_disk = {part_files[k] for k in np.flatnonzero(status == DONE)}
    # every row the kernel had was on disk: a kill loses only rows never reported
    assert {files[r] for r in np.flatnonzero(ready)} <= on_disk
    if extraction.state == "failed":
        with pytest.raises(ExtractionFailed, match="closed"):
            extraction.wait()

    session = Session.open(df, outfile=tmp_path / "l.csv", feature_extractor=str(path))
    try:
        features = session.extraction.wait(timeout=300)
    finally:
        session.close()
    reference = extract_features(files, model, imshape=(16, 16), progress=False).features
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-6)
    assert json.loads((folder / "meta.json").read_text())["parts"] == meta["parts"]


@pytest.fixture
def extracting(tmp_path):
    """A session whose extraction is half done: rows 0, 2, 4, ... have features (a hand-fed
    state, as the worker's reports would leave it)."""
    rng = np.random.default_rng(0)
    n = 200
    cat = (np.arange(n) % 4 < 2).astype(float)
    features = (np.stack([cat, 1 - cat], axis=1) * 2 + rng.normal(size=(n, 2))).astype(np.float32)
    paths = [str(tmp_path / f"img_{i:04d}.png") for i in range(n)]
    session = Session.open(prep_label_dataframe(paths, ["cat"]), outfile=tmp_path / "l.csv",
                           seed=0)
    extraction = session.context.extraction
    extraction.rows = ArrivingFeatures(n)
    extraction.state = RUNNING
    half = np.arange(0, n, 2)
    extraction.rows.put(half, features[half])
    yield session, cat, features
    extraction.state = "done"
    session.close()


def test_training_while_extracting_uses_only_the_labeled_rows_with_features(extracting,
                                                                           tmp_path):
    session, cat, features = extracting
    for row in range(40):
        session.annotate(row, {"cat": cat[row]})
    session.build_model()
    session.train().result(timeout=120)
    predictions = session.predictions["cat"].to_numpy()
    have = session.context.extraction.rows.ready
    assert np.isfinite(predictions[have]).all() and np.isnan(predictions[~have]).all()
    # the reference: all features given, the rows without features excluded by hand
    paths = list(session.df["filepath"])
    reference = Session.open(prep_label_dataframe(paths, ["cat"]), outfile=tmp_path / "r.csv",
                             features=features, seed=0)
    try:
        for row in range(40):
            reference.annotate(row, {"cat": cat[row], "exclude": not have[row]})
        reference.build_model()
        reference.train().result(timeout=120)
        expected = reference.predictions["cat"].to_numpy()
    finally:
        reference.close()
    np.testing.assert_allclose(predictions[have], expected[have], atol=2e-3)


def test_orders_that_need_features_say_how_far_the_extraction_is(extracting):
    session, _, _ = extracting
    with pytest.raises(ValueError, match=r"order 'diversity' needs the features: "
                                         r"features 100 of 200 are extracted"):
        session.sample(order="diversity", count=5)
    with pytest.raises(ValueError, match="features 100 of 200"):
        navigation.more_like_this(session, 0)
    assert len(session.sample(order="random", count=5)) == 5


def test_training_before_any_labeled_row_has_features_says_so(extracting):
    session, cat, _ = extracting
    for row in range(1, 40, 2):  # odd rows: none has features yet
        session.annotate(row, {"cat": cat[row]})
    session.build_model()
    with pytest.raises(ValueError, match="none of the labeled images has features yet "
                                         r"\(features 100 of 200"):
        session.train()


def test_batches_are_sized_to_the_memory():
    assert batch_size_for((224, 224), memory=1 << 40) == 64
    one = 224 * 224 * 3 * 4 * 48
    assert batch_size_for((224, 224), memory=int(one * 4 * 10.5)) == 10
    assert batch_size_for((224, 224), memory=1) == 1


def test_rows_asked_for_meanwhile_are_extracted_next(tmp_path):
    """What the worker does with the rows the kernel asks for (labeled or sampled meanwhile):
    they are in the next batch read, ahead of the rest, and extracted once."""
    levels = list(range(1, 31))
    paths = []
    for level in levels:
        path = tmp_path / f"level_{level:03d}.png"
        Image.fromarray(np.full((6, 6, 3), level, dtype=np.uint8)).save(path)
        paths.append(str(path))
    seen: list[list[int]] = []

    def recording(x):
        batch = [int(v) for v in np.rint(x.mean(axis=(1, 2, 3)) * 255) if v]
        if batch:
            seen.append(batch)
        return x.mean(axis=(1, 2))

    asked = iter([[], [20, 21, 2], [21, 29]])  # row 2 is in the first batch; 21 asked twice
    result = extract_features(paths, recording, imshape=(4, 4), batch_size=4, progress=False,
                              priority=lambda: next(asked, []))
    # the reader runs a batch ahead: the second batch was chosen before the first was done
    assert seen[:3] == [[1, 2, 3, 4], [21, 22, 5, 6], [30, 7, 8, 9]]
    assert sorted(v for batch in seen for v in batch) == levels
    np.testing.assert_allclose(result.features[:, 0], np.asarray(levels) / 255, rtol=1e-5)
