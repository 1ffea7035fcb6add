"""From a folder of images to the first suggestion: load_folder -> the widget with a backbone
by name (random weights: nothing downloads) -> label by ground truth -> train -> predictions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget import PatchworkWidget  # noqa: E402
from patchwork_widget.datasets import load_demo_dataset, load_folder  # noqa: E402
from patchwork_widget.images.feature_cache import cache_folder  # noqa: E402
from patchwork_widget.options.backbones import Backbone  # noqa: E402


def test_folder_and_backbone_name_to_the_first_suggestion(tmp_path):
    truth = load_demo_dataset(tmp_path / "demo", n_per_class=3, patch_size=32)
    photos = tmp_path / "photos"
    shutil.copytree(tmp_path / "demo" / "images", photos / "batch1")
    df = load_folder(photos, ["cat", "coffee"])
    assert len(df) == len(truth)
    backbone = Backbone("mobilenet_v3_small", weights=None, image_size=(32, 32))
    widget = PatchworkWidget(df, outfile=tmp_path / "labels.csv", feature_extractor=backbone)
    session = widget.session
    features = session.extraction.wait(timeout=300)  # extracted by a worker meanwhile
    assert session.features is features
    assert features.shape == (len(df), 576) and np.isfinite(features).all()
    assert (cache_folder(tmp_path / "labels.csv") / "meta.json").is_file()
    by_name = truth.set_index(truth.filepath.map(lambda p: p.rsplit("/", 1)[-1]))
    for row, path in enumerate(session.df.filepath[:20]):
        name = path.rsplit("/", 1)[-1]
        session.annotate(row, {c: float(by_name.loc[name, c]) for c in ("cat", "coffee")})
    session.build_model({"kind": "pool"})
    session.train({"epochs": 2, "batch_size": 8}).result(timeout=300)
    predictions = session.predictions
    assert list(predictions.columns) == ["cat", "coffee"] and len(predictions) == len(df)
    assert ((predictions.values >= 0) & (predictions.values <= 1)).all()
    widget.close()
