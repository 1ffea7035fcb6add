"""I5: features cached with the project: extracted once, reused on reopen, extended for new
rows, extracted again for another extractor or image size. The extractor here records which
images it sees (each image is one flat grey level), so the tests count what was extracted."""

import json

import numpy as np
import pytest
from PIL import Image

from patchwork_widget import Session, prep_label_dataframe
from patchwork_widget.images.extractor import Extractor
from patchwork_widget.images.feature_cache import FeatureCache, cache_folder


def flat_pngs(folder, levels):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for level in levels:
        path = folder / f"level_{level:03d}.png"
        Image.fromarray(np.full((6, 6, 3), level, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


class Recording:
    """Features (grey level, its square); ``seen`` lists the grey levels of every image fed
    except the all-zero probe the extraction sends first for the feature shape."""

    def __init__(self):
        self.seen = []

    def __call__(self, x):
        levels = np.rint(x.mean(axis=(1, 2, 3)) * 255).astype(int)
        self.seen += [int(v) for v in levels if v]
        g = x.mean(axis=(1, 2, 3))
        return np.stack([g, g * g], axis=1)


def expected(levels):
    g = np.asarray(levels, dtype=np.float32) / 255
    return np.stack([g, g * g], axis=1)


@pytest.fixture
def project(tmp_path):
    levels = list(range(1, 31))
    paths = flat_pngs(tmp_path / "images", levels)
    return levels, paths, tmp_path / "labels.csv"


def open_session(paths, outfile, extractor):
    df = prep_label_dataframe(paths, ["a", "b"])
    return Session.open(df, outfile=outfile, feature_extractor=extractor)


def test_a_second_open_does_not_extract_again(project):
    levels, paths, outfile = project
    rec = Recording()
    ext = Extractor(rec, "recording-v1", (4, 4))
    session = open_session(paths, outfile, ext)
    np.testing.assert_allclose(session.features, expected(levels), rtol=1e-6)
    assert sorted(rec.seen) == levels
    session.close()
    assert (cache_folder(outfile) / "meta.json").is_file()

    rec2 = Recording()
    session = open_session(paths, outfile, Extractor(rec2, "recording-v1", (4, 4)))
    assert rec2.seen == []
    np.testing.assert_allclose(session.features, expected(levels), rtol=1e-6)
    session.close()


def test_another_extractor_or_image_size_extracts_again(project):
    levels, paths, outfile = project
    open_session(paths, outfile, Extractor(Recording(), "recording-v1", (4, 4))).close()
    for identity, size in (("recording-v2", (4, 4)), ("recording-v2", (5, 5))):
        rec = Recording()
        open_session(paths, outfile, Extractor(rec, identity, size)).close()
        assert sorted(rec.seen) == levels, (identity, size)
    meta = json.loads((cache_folder(outfile) / "meta.json").read_text())
    assert meta["key"]["extractor"] == "recording-v2" and meta["key"]["image_size"] == [5, 5]
    assert meta["parts"] == ["part-00000.npy"]


def test_ten_added_rows_extract_only_those_ten(project, tmp_path):
    levels, paths, outfile = project
    cache = FeatureCache(cache_folder(outfile))
    cache.features(paths, Extractor(Recording(), "recording-v1", (4, 4)), progress=False)
    new_levels = list(range(100, 110))
    more = paths[:15] + flat_pngs(tmp_path / "more", new_levels) + paths[15:]
    rec = Recording()
    feats = cache.features(more, Extractor(rec, "recording-v1", (4, 4)), progress=False)
    assert sorted(rec.seen) == new_levels
    np.testing.assert_allclose(feats, expected(levels[:15] + new_levels + levels[15:]),
                               rtol=1e-6)
    rec = Recording()  # both parts are reused, in any order of the table
    feats = cache.features(more[::-1], Extractor(rec, "recording-v1", (4, 4)), progress=False)
    assert rec.seen == []
    np.testing.assert_allclose(feats[::-1], expected(levels[:15] + new_levels + levels[15:]),
                               rtol=1e-6)


def test_an_interrupted_extraction_resumes_with_what_is_left(project):
    levels, paths, outfile = project

    class Interrupted(Recording):
        def __call__(self, x):
            if len(self.seen) >= 8:
                raise KeyboardInterrupt("stopped")
            return super().__call__(x)

    cache = FeatureCache(cache_folder(outfile))
    with pytest.raises(KeyboardInterrupt):
        cache.features(paths, Extractor(Interrupted(), "recording-v1", (4, 4)), batch_size=4,
                       progress=False)
    rec = Recording()
    feats = cache.features(paths, Extractor(rec, "recording-v1", (4, 4)), batch_size=4,
                           progress=False)
    assert sorted(rec.seen) == levels[8:]
    np.testing.assert_allclose(feats, expected(levels), rtol=1e-6)


def test_session_open_refuses_unknown_names_and_features_with_a_name(project):
    levels, paths, outfile = project
    df = prep_label_dataframe(paths, ["a"])
    with pytest.raises(ValueError, match="neither a known backbone.*mobilenet_v3_small"):
        Session.open(df, outfile=outfile, feature_extractor="mobilenet_v9")
    with pytest.raises(ValueError, match="not both"):
        Session.open(df, outfile=outfile, feature_extractor="resnet50",
                     features=np.zeros((len(df), 2), dtype=np.float32))
    assert not outfile.exists() and not cache_folder(outfile).exists()
