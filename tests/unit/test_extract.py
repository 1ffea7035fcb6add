"""I5: feature extraction over files: exact features, bad files reported, memmap, resume."""

import json

import numpy as np
import pytest
from conftest import write_pngs

keras = pytest.importorskip("keras")

from patchwork_widget.images import read_images
from patchwork_widget.images.extract import extract_features


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_pngs(tmp_path_factory.mktemp("extract"), 23, size=12, seed=11)


@pytest.fixture(scope="module")
def extractor():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    return keras.Model(inp, x)


class Counting:
    """Extractor wrapper counting rows seen; raises after ``fail_after`` calls if set."""

    def __init__(self, model, fail_after=None):
        self.model, self.fail_after, self.calls, self.rows = model, fail_after, 0, 0

    def __call__(self, x):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.rows += len(x)
        return self.model(x, training=False)


def test_features_equal_the_extractor_on_read_images(paths, extractor):
    res = extract_features(paths, extractor, imshape=(8, 8), batch_size=5, progress=False)
    ref = extractor.predict(read_images(paths, (8, 8)).arrays, verbose=0)
    assert res.features.shape == (23, 3, 3, 4) and res.features.dtype == np.float32
    np.testing.assert_allclose(res.features, ref, atol=1e-6)
    assert res.errors == [] and not res.failed.any()


def test_bad_files_are_reported_not_fatal(paths, extractor, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage" * 9)
    files = paths[:4] + [str(bad)] + paths[4:6] + [str(tmp_path / "missing.png")]
    res = extract_features(files, extractor, imshape=(8, 8), batch_size=3, progress=False)
    assert [p for p, _ in res.errors] == [str(bad), str(tmp_path / "missing.png")]
    assert "file not found" in res.errors[1][1]
    assert res.failed.tolist() == [False] * 4 + [True] + [False] * 2 + [True]
    assert not res.features[res.failed].any()
    good = extract_features(paths[:6], extractor, imshape=(8, 8), progress=False).features
    np.testing.assert_allclose(res.features[~res.failed], good, atol=1e-6)


def test_memmap_output_and_resume_after_interruption(paths, extractor, tmp_path):
    target = tmp_path / "feats.npy"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"x" * 40)
    files = paths + [str(bad)]
    first = Counting(extractor, fail_after=3)  # probe call + 2 batches of 5, then "Ctrl-C"
    with pytest.raises(KeyboardInterrupt):
        extract_features(files, first, imshape=(8, 8), batch_size=5, memmap_path=target,
                         progress=False)
    status = np.load(f"{target}.status.npy")
    assert (status == 1).sum() == 10
    second = Counting(extractor)
    res = extract_features(files, second, imshape=(8, 8), batch_size=5, memmap_path=target,
                           progress=False)
    assert second.rows == 1 + len(files) - 1 - 10  # probe + the 13 images left (1 unreadable)
    assert isinstance(res.features, np.memmap)
    ref = extract_features(files, extractor, imshape=(8, 8), progress=False)
    np.testing.assert_allclose(res.features, ref.features, atol=1e-6)
    np.testing.assert_allclose(np.load(target), ref.features, atol=1e-6)
    assert [p for p, _ in res.errors] == [str(bad)]
    # a finished run resumes to nothing and still reports its errors
    third = Counting(extractor)
    again = extract_features(files, third, imshape=(8, 8), memmap_path=target, progress=False)
    assert third.rows == 1 and [p for p, _ in again.errors] == [str(bad)]
    assert json.loads(target.with_name("feats.npy.meta.json").read_text())["rows"] == 24


def test_resume_refuses_another_file_list_and_restart_recomputes(paths, extractor, tmp_path):
    target = tmp_path / "f.npy"
    extract_features(paths[:5], extractor, imshape=(8, 8), memmap_path=target, progress=False)
    with pytest.raises(ValueError, match="resume=False"):
        extract_features(paths[:6], extractor, imshape=(8, 8), memmap_path=target,
                         progress=False)
    counter = Counting(extractor)
    res = extract_features(paths[:6], counter, imshape=(8, 8), memmap_path=target,
                           resume=False, progress=False)
    assert counter.rows == 1 + 6 and res.features.shape[0] == 6


def test_progress_bar_and_option_checks(paths, extractor, capsys):
    extract_features(paths[:3], extractor, imshape=(8, 8), progress=True)
    assert "extracting features" in capsys.readouterr().err
    with pytest.raises(ValueError, match="imshape"):
        extract_features(paths, extractor, imshape=(0, 8))
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(paths, extractor, imshape=(8, 8), batch_size=0)
