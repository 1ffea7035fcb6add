"""M6: save/load round trips give identical predictions; the end-to-end classifier on raw images
equals the extractor and heads applied separately; predictions and labels to CSV / Parquet."""

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import write_pngs

from patchwork_widget.images import read_images
from patchwork_widget.models import (
    FineTuneOptions,
    TrainOptions,
    build_models,
    fit,
    load_keras,
    load_models,
    load_predictions,
    predict,
    save_models,
    save_predictions,
    save_table,
)

CLASSES = ["cat", "dog"]
RNG = np.random.default_rng(2)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    paths = write_pngs(tmp_path_factory.mktemp("io_images"), 20, size=12, seed=2)
    return pd.DataFrame({"filepath": paths, "exclude": False,
                         "validation": [False] * 15 + [True] * 5,
                         "cat": [1.0, 0.0] * 10, "dog": [np.nan, 1.0, 0.0, 0.0] * 5})


def extractor():
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inp, x, name="extractor")


@pytest.mark.parametrize("opts", [FineTuneOptions(pooling="flatten"),
                                  FineTuneOptions(kind="convnet", spec="8,r,p,d,4",
                                                  pooling="max")])
def test_round_trip_gives_identical_predictions(table, tmp_path, opts):
    keras.utils.set_random_seed(0)
    feats = RNG.normal(size=(20, 5, 5, 3)).astype(np.float32)
    models = build_models(CLASSES, feature_shape=feats.shape[1:], options=opts)
    fit(models, table, features=feats, options=TrainOptions(epochs=1, batch_size=4))
    written = save_models(models, tmp_path / "m")
    assert sorted(written) == ["fine_tuning", "output"]
    loaded = load_models(tmp_path / "m")
    assert loaded.classes == CLASSES and loaded.options == opts and loaded.extractor is None
    np.testing.assert_array_equal(predict(loaded, table, features=feats).to_numpy(),
                                  predict(models, table, features=feats).to_numpy())


def test_end_to_end_classifier_on_raw_images_equals_the_parts(table, tmp_path):
    keras.utils.set_random_seed(1)
    ext = extractor()
    models = build_models(CLASSES, extractor=ext,
                          options=FineTuneOptions(kind="convnet", spec="4,r"))
    fit(models, table, options=TrainOptions(epochs=1, batch_size=4, batches_per_epoch=2))
    paths = save_models(models, tmp_path / "m")
    assert sorted(paths) == ["classifier", "extractor", "fine_tuning", "output"]

    images = read_images(table["filepath"], (12, 12)).arrays
    separately = models.output(models.fine_tuning(ext(images, training=False))).numpy()
    classifier = load_keras(paths["classifier"])
    np.testing.assert_allclose(classifier.predict(images, verbose=0), separately, atol=1e-6)
    loaded = load_models(tmp_path / "m")
    np.testing.assert_allclose(predict(loaded, table).to_numpy(), separately, atol=1e-6)
    np.testing.assert_allclose(predict(models, table).to_numpy(), separately, atol=1e-6)
    assert not loaded.extractor.trainable


def test_saving_without_an_extractor_removes_a_stale_classifier(table, tmp_path):
    keras.utils.set_random_seed(2)
    with_ext = build_models(CLASSES, extractor=extractor())
    save_models(with_ext, tmp_path)
    save_models(build_models(CLASSES, feature_shape=(7,)), tmp_path)
    assert not (tmp_path / "classifier.keras").exists()
    assert load_models(tmp_path).extractor is None


def test_load_from_a_folder_without_models_says_so(tmp_path):
    with pytest.raises(ValueError, match="models.json"):
        load_models(tmp_path)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_predictions_and_labels_round_trip(table, tmp_path, ext):
    preds = pd.DataFrame({"cat": RNG.random(20), "dog": np.r_[RNG.random(19), np.nan]})
    save_predictions(preds, tmp_path / f"p.{ext}", filepaths=table["filepath"])
    back = load_predictions(tmp_path / f"p.{ext}")
    assert list(back.columns) == ["filepath", "cat", "dog"]
    assert back["filepath"].tolist() == table["filepath"].tolist()
    np.testing.assert_allclose(back[["cat", "dog"]].to_numpy(), preds.to_numpy())
    save_table(table, tmp_path / f"labels.{ext}")
    from patchwork_widget.labels import load_labels

    pd.testing.assert_frame_equal(load_labels(tmp_path / f"labels.{ext}"), table,
                                  check_dtype=False)
    with pytest.raises(ValueError, match="csv"):
        load_predictions(tmp_path / "p.txt")
