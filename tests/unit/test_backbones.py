"""I5: pretrained backbones by name: the registry's sizes, preprocessing, .keras files, offline
first use. Nothing downloads: backbones are built with weights=None."""

import urllib.error

import numpy as np
import pytest
from conftest import write_pngs

from patchwork_widget.options.backbones import BACKBONES, Backbone, parse_backbone

keras = pytest.importorskip("keras")

from patchwork_widget.images.backbones import (  # noqa: E402
    WeightsUnavailableError,
    build_backbone,
    resolve_extractor,
)
from patchwork_widget.images.extract import extract_features  # noqa: E402


@pytest.mark.parametrize("name", list(BACKBONES))
def test_each_backbone_gives_its_documented_feature_size(name):
    info = BACKBONES[name]
    side = info.min_input_size
    model = build_backbone(Backbone(name, weights=None, image_size=(side, side)))
    x = np.random.default_rng(0).random((2, side, side, 3), dtype=np.float32)
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (2, info.feature_size)
    assert np.isfinite(out).all()
    assert not model.trainable and not model.trainable_weights


def test_resnet50_applies_the_caffe_preprocessing_to_0_1_images():
    model = build_backbone(Backbone("resnet50", weights=None, image_size=(32, 32)))
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    ref = base.predict_on_batch(keras.applications.resnet50.preprocess_input(x * 255.0))
    np.testing.assert_allclose(model.predict_on_batch(x), ref, rtol=1e-4, atol=1e-4)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="mobilenet_v3_small, mobilenet_v3_large") as e:
        parse_backbone("mobilenet_v9")
    assert "'mobilenet_v9'" in str(e.value)
    with pytest.raises(ValueError, match="convnext_tiny"):
        Backbone("vgg16")
    with pytest.raises(ValueError, match="weights must be 'imagenet' or None"):
        Backbone("resnet50", weights="random")
    with pytest.raises(ValueError, match="image_size of resnet50 must be at least 32"):
        Backbone("resnet50", weights=None, image_size=(16, 16))
    assert Backbone("EfficientNet-B0").name == "efficientnet_b0"
    assert Backbone("efficientnet_b3").size == (300, 300)


def test_offline_first_use_says_what_to_download_and_where(tmp_path, monkeypatch):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(WeightsUnavailableError) as e:
        resolve_extractor("mobilenet_v3_small")
    msg = str(e.value)
    assert "https://" in msg and ".h5" in msg
    assert str(tmp_path / "keras_home" / "models") in msg
    assert "weights=None" in msg


def test_a_keras_file_resolves_with_its_input_size_and_a_file_digest(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(5, 3)(inp)))
    path = tmp_path / "extractor.keras"
    model.save(path)
    ext = resolve_extractor(str(path))
    assert ext.image_size == (16, 16)
    assert ext.identity == resolve_extractor(path).identity
    x = np.random.default_rng(2).random((3, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(ext.model.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
    with pytest.raises(ValueError, match="is not a .keras model file"):
        resolve_extractor(tmp_path)


def test_extract_features_takes_a_backbone_and_reads_at_its_size(tmp_path):
    paths = write_pngs(tmp_path, 5, size=20, seed=3)
    backbone = Backbone("mobilenet_v3_small", weights=None, image_size=(32, 32))
    res = extract_features(paths, backbone, batch_size=2, progress=False)
    assert res.features.shape == (5, 576) and not res.failed.any()
    with pytest.raises(ValueError, match="neither a known backbone nor an existing file"):
        extract_features(paths, "mobilenet_v9", progress=False)
