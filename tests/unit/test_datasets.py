"""B7: the offline demo dataset: determinism, schema, ground truth, learnability, caching."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patchwork_widget import datasets
from patchwork_widget.datasets import (
    build_demo_dataset,
    default_demo_dir,
    demo_classes,
    load_demo_dataset,
)
from patchwork_widget.images import read_array, read_image, read_images

CLASSES = demo_classes()
TEXTURES = {"brick", "grass", "gravel"}
COLOUR = set(CLASSES) - TEXTURES - {"digit"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default demo (seed 0), built once for the module; returns (df, outdir)."""
    outdir = tmp_path_factory.mktemp("demo")
    return build_demo_dataset(outdir), outdir


def small(outdir, seed=0):
    return build_demo_dataset(outdir, seed=seed, n_per_class=8, patch_size=32)


def relative(df):
    out = df.copy()
    out["filepath"] = [os.path.basename(p) for p in out["filepath"]]
    return out


def test_classes_are_readable_names():
    assert CLASSES == ["brick", "grass", "gravel", "cat", "coffee", "astronaut", "rocket",
                       "stars", "cells", "retina", "digit"]


def test_schema(demo):
    df, outdir = demo
    assert list(df.columns) == ["filepath", "exclude", "validation"] + CLASSES
    assert df["exclude"].dtype == bool and not df["exclude"].any()
    assert df["validation"].dtype == bool and not df["validation"].any()
    for c in CLASSES:
        assert df[c].dtype == np.float64 and set(df[c].unique()) <= {0.0, 1.0}
    assert df["filepath"].is_unique
    assert all(os.path.isabs(p) and Path(p).parent == Path(outdir) / "images" for p in df["filepath"])
    pd.testing.assert_frame_equal(pd.read_csv(Path(outdir) / "ground_truth.csv"), df,
                                  check_dtype=False)


def test_size_and_counts(demo):
    df, _ = demo
    positives = df[CLASSES].sum(axis=1)
    assert set(positives.unique()) == {1.0, 2.0}
    assert 1000 <= len(df) <= 1500
    assert (positives == 1).sum() == 100 * len(CLASSES)
    assert 0.10 <= (positives == 2).mean() <= 0.20
    assert (df[CLASSES].sum() >= 100).all()


def test_multi_label_rows_pair_the_documented_kinds(demo):
    df, _ = demo
    multi = df[df[CLASSES].sum(axis=1) == 2]
    pairs = [frozenset(c for c in CLASSES if row[c] == 1.0) for _, row in multi.iterrows()]
    with_digit = [p for p in pairs if "digit" in p]
    assert all(len(p - {"digit"}) == 1 and p - {"digit"} <= TEXTURES for p in with_digit)
    assert len(with_digit) >= 0.25 * len(pairs)
    assert len(set(pairs)) > 20  # many different pairs of halves


def test_files_read_back(demo):
    df, _ = demo
    res = read_images(df["filepath"])
    assert res.errors == [] and res.arrays.shape == (len(df), 64, 64, 3)
    assert read_image(df["filepath"].iloc[0], imshape=(32, 32)).shape == (32, 32, 3)


def test_ground_truth_matches_what_the_pixels_show(demo):
    """Independent visual checks: textures are gray files, photos colour, digits on black."""
    df, _ = demo
    for _, row in df.iterrows():
        labels = {c for c in CLASSES if row[c] == 1.0}
        raw = read_array(row["filepath"])
        if labels <= TEXTURES | {"digit"} and labels != {"digit"} and len(labels) == 1:
            assert raw.shape[2] == 1, row["filepath"]  # saved as gray
        if labels <= COLOUR:
            spread = raw.max(axis=2).astype(int) - raw.min(axis=2)
            assert spread.mean() > 2, (row["filepath"], labels)
        if labels == {"digit"}:
            assert (raw == 0).mean() > 0.2 and raw.max() > 150, row["filepath"]
        if labels & TEXTURES and "digit" in labels:
            gray = raw[:, :, 0] if raw.shape[2] == 1 else raw.mean(axis=2)
            assert (gray > 240).mean() > 0.02, row["filepath"]  # white strokes


def test_deterministic_for_a_seed(tmp_path):
    a = small(tmp_path / "a")
    b = small(tmp_path / "b")
    pd.testing.assert_frame_equal(relative(a), relative(b))
    for pa, pb in zip(a["filepath"], b["filepath"]):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    c = small(tmp_path / "c", seed=1)
    assert not relative(a)[CLASSES].equals(relative(c)[CLASSES]) or any(
        Path(pa).read_bytes() != Path(pc).read_bytes()
        for pa, pc in zip(a["filepath"], c["filepath"])
    )
    same_bytes = sum(Path(pa).read_bytes() == Path(pc).read_bytes()
                     for pa, pc in zip(a["filepath"], c["filepath"]))
    assert same_bytes == 0


def test_rebuild_in_place_replaces_old_images(tmp_path):
    build_demo_dataset(tmp_path, n_per_class=20, patch_size=32)
    df = small(tmp_path)
    assert sorted(os.listdir(tmp_path / "images")) == sorted(os.path.basename(p) for p in df["filepath"])


def test_classes_are_learnable_by_a_linear_model(demo):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df, _ = demo
    single = (df[CLASSES].sum(axis=1) == 1).to_numpy()
    x = read_images(df["filepath"][single]).arrays
    y = df.loc[single, CLASSES].to_numpy().argmax(axis=1)
    hist = np.stack([
        np.concatenate([np.histogram(img[:, :, c], bins=8, range=(0, 1))[0] for c in range(3)])
        for img in x
    ]) / (64 * 64)
    pooled = x.mean(axis=3).reshape(len(x), 4, 16, 4, 16).mean(axis=(2, 4)).reshape(len(x), -1)
    features = np.hstack([hist, pooled])
    xa, xb, ya, yb = train_test_split(features, y, test_size=0.3, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000)))
    accuracy = (model.fit(xa, ya).predict(xb) == yb).mean()
    # measured 0.945-0.96 over seeds 0-2 and two splits (chance is 1/11 = 0.09)
    assert accuracy > 0.85


def test_load_reads_back_without_rebuilding(tmp_path, monkeypatch):
    built = small(tmp_path / "d")
    monkeypatch.setattr(datasets, "build_demo_dataset", lambda *a, **k: pytest.fail("rebuilt"))
    loaded = load_demo_dataset(tmp_path / "d", n_per_class=8, patch_size=32)
    pd.testing.assert_frame_equal(loaded, built, check_dtype=False)
    assert list(loaded.dtypes[1:3]) == [bool, bool] and (loaded.dtypes[3:] == np.float64).all()


def test_load_re_roots_a_moved_folder(tmp_path):
    small(tmp_path / "d")
    shutil.move(tmp_path / "d", tmp_path / "moved")
    loaded = load_demo_dataset(tmp_path / "moved", n_per_class=8, patch_size=32)
    assert all(Path(p).parent == tmp_path / "moved" / "images" and os.path.isfile(p)
               for p in loaded["filepath"])


def test_load_builds_when_missing_incomplete_or_different(tmp_path):
    first = load_demo_dataset(tmp_path / "d", n_per_class=8, patch_size=32)
    assert (tmp_path / "d" / "ground_truth.csv").is_file()
    os.remove(first["filepath"].iloc[3])
    again = load_demo_dataset(tmp_path / "d", n_per_class=8, patch_size=32)
    assert os.path.isfile(first["filepath"].iloc[3])
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    other = load_demo_dataset(tmp_path / "d", seed=5, n_per_class=8, patch_size=32)
    assert len(other) == len(first) and len(os.listdir(tmp_path / "d" / "images")) == len(first)
    (tmp_path / "d" / "ground_truth.csv").write_text("filepath,exclude\nx.png,maybe\n")
    fixed = load_demo_dataset(tmp_path / "d", seed=5, n_per_class=8, patch_size=32)
    pd.testing.assert_frame_equal(fixed, other, check_dtype=False)


def test_default_demo_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PATCHWORK_DEMO_DIR", str(tmp_path / "mine"))
    assert default_demo_dir() == tmp_path / "mine"
    monkeypatch.delenv("PATCHWORK_DEMO_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_demo_dir() == tmp_path / "cache" / "patchwork_widget" / "demo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_demo_dir() == Path.home() / ".cache" / "patchwork_widget" / "demo"
    monkeypatch.setenv("PATCHWORK_DEMO_DIR", str(tmp_path / "env"))
    small_df = load_demo_dataset(n_per_class=2, patch_size=16, multi_label_fraction=0.0)
    assert all(Path(p).parent == tmp_path / "env" / "images" for p in small_df["filepath"])


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(patch_size=8), "patch_size"), (dict(patch_size=64.0), "patch_size"),
    (dict(n_per_class=0), "n_per_class"), (dict(multi_label_fraction=1.0), "multi_label_fraction"),
    (dict(multi_label_fraction=-0.1), "multi_label_fraction"),
])
def test_bad_parameters(tmp_path, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        build_demo_dataset(tmp_path, **kwargs)
