"""F1-F6: each trainer runs an epoch on demo images and writes its records (F3); options are
checked; weights save and load; MLflow tracking is optional."""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import types

import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from patchwork_widget.datasets import demo_classes, load_demo_dataset  # noqa: E402
from patchwork_widget.feature import (  # noqa: E402
    BNAlexNetFCN,
    HCLTrainer,
    MomentumContrastTrainer,
    ResNetFCN,
    SimCLRTrainer,
)

SHAPE = (32, 32)
AUG = {"flip_left_right": True, "zoom_scale": 0.5, "jitter": 0.5}
SMALL = dict(imshape=SHAPE, batch_size=16, augment=AUG, seed=0, eval_batch_size=64)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """155 demo images at 32 px: (train files, test files, {path: class})."""
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=12, patch_size=32)
    classes = demo_classes()
    single = df[df[classes].sum(axis=1) == 1]
    labels = {f: classes[int(np.argmax(r))] for f, r in zip(single.filepath, single[classes].values)}
    files = df.filepath.tolist()
    return files[:64], files[64:96], labels


def small_fcn() -> keras.Model:
    return ResNetFCN(3, filters=(8, 16))


def events(logdir: str) -> tuple[set, set]:
    """(summary tags, plugin names) written to ``logdir``'s event files."""
    tags, plugins = set(), set()
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
                plugins.add(value.metadata.plugin_data.plugin_name)
    return tags, plugins


CASES = {
    "simclr": (SimCLRTrainer, dict(temperature=0.2, batchnorm=False)),
    "hcl": (HCLTrainer, dict(beta=0.5, tau_plus=0.1, decoupled=True)),
    "moco": (MomentumContrastTrainer, dict(batches_in_buffer=2, N=8, s=4, s_prime=2,
                                           margin=-0.1, alpha=0.99, opt_type="momentum",
                                           lr=0.01, num_hidden=0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fit_one_epoch_trains_in_place_and_records(demo, tmp_path, name):
    train, test, labels = demo
    cls, kwargs = CASES[name]
    fcn = BNAlexNetFCN(3, width=0.1) if name == "hcl" else small_fcn()
    before = [w.copy() for w in fcn.get_weights()]
    logdir = str(tmp_path / name)
    trainer = cls(logdir, train, testdata=test, fcn=fcn, downstream_labels=labels,
                  notes="unit test run", decay_type="cosine", lr_decay=10, **SMALL, **kwargs)
    out = trainer.fit(1, save_projections=True, visualize_kernels=True, query_fig=True,
                      progress=False)

    assert trainer.fcn is fcn and trainer.step == trainer.steps_per_epoch == 4
    assert np.isfinite(out["epoch_loss"]) and out["epoch_loss"] > 0
    assert any(not np.allclose(a, b) for a, b in zip(before, fcn.get_weights()))
    assert 0.0 <= out["linear_classification_accuracy"] <= 1.0
    assert out["alignment"] >= 0 and out["uniformity"] <= 0

    config = yaml.safe_load(open(os.path.join(logdir, "config.yaml")))
    assert config["trainer"] == cls.modelname and config["notes"] == "unit test run"
    assert config["batch_size"] == 16 and config["schedule"] == "cosine"
    assert config["decay_steps"] == 10 and config["optimizer"] in ("adam", "sgd")
    assert config["augment"]["zoom_scale"] == 0.5 and config["augment"]["mask"] == 0.0
    legacy = {"opt_type": ("optimizer", "sgd"), "lr": ("learning_rate", 0.01)}
    for key, value in kwargs.items():
        key, value = legacy.get(key, (key, value))  # the reference's names, recorded as ours
        assert config[key] == value

    tags, plugins = events(logdir)
    assert {"loss", "learning_rate", "nce_batch_accuracy", "test_loss", "alignment",
            "uniformity", "linear_classification_accuracy", "first_layer_kernels",
            "query_figure", "linear_classification_confusion_matrix"} <= tags
    if importlib.util.find_spec("tensorboard") is not None:
        assert "hparams" in plugins           # HPARAMS needs the tensorboard package
    for f in ("fcn.keras", "fcn.weights.h5", "head.weights.h5", "projector_config.pbtxt",
              "sprite.png", "metadata.tsv", "tensors.tsv"):
        assert os.path.isfile(os.path.join(logdir, f)), f
    assert len(open(os.path.join(logdir, "metadata.tsv")).read().splitlines()) == len(labels)


@pytest.fixture(scope="module")
def simclr(demo, tmp_path_factory):
    train, test, labels = demo
    trainer = SimCLRTrainer(str(tmp_path_factory.mktemp("simclr")), train, testdata=test,
                            fcn=small_fcn(), downstream_labels=labels, **SMALL)
    trainer.fit(1, evaluate=False, progress=False)
    return trainer


def test_save_and_load_weights_round_trip(simclr, demo, tmp_path):
    paths = simclr.save()
    reloaded = keras.models.load_model(paths["fcn.keras"])
    x = np.random.default_rng(0).random((2, *SHAPE, 3)).astype(np.float32)
    np.testing.assert_allclose(reloaded(x), simclr.fcn(x), atol=1e-5)

    other = SimCLRTrainer(str(tmp_path / "other"), demo[0], fcn=small_fcn(), **SMALL)
    other.load_weights(simclr.logdir)
    for name in ("fcn", "head"):
        for a, b in zip(other._models[name].get_weights(), simclr._models[name].get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="call save"):
        other.load_weights(tmp_path / "nowhere")


def test_rotation_classification_test(simclr):
    acc = simclr.rotation_classification_test()
    assert 0.0 <= acc <= 1.0
    assert "rotation_classification_accuracy" in events(simclr.logdir)[0]


def test_mlflow_missing_says_how_to_install(simclr, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match="pip install mlflow"):
        simclr.track_with_mlflow()


def test_mlflow_tracking_logs_params_and_metrics(simclr, monkeypatch):
    calls: dict = {"params": {}, "metrics": [], "tags": {}}
    fake = types.SimpleNamespace(
        set_tracking_uri=lambda uri: calls.__setitem__("uri", uri),
        set_experiment=lambda name: calls.__setitem__("experiment", name),
        start_run=lambda run_name=None: calls.__setitem__("run", run_name) or "run",
        log_params=lambda p: calls["params"].update(p),
        set_tag=lambda k, v: calls["tags"].__setitem__(k, v),
        log_metrics=lambda m, step=None: calls["metrics"].append((m, step)),
    )
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setattr(simclr.reporting, "_mlflow", None)
    assert simclr.track_with_mlflow("exp", tracking_uri="file:/tmp/x") == "run"
    assert calls["experiment"] == "exp" and calls["params"]["temperature"] == 0.1
    assert calls["params"]["batch_size"] == 16 and "notes" not in calls["params"]
    metrics = simclr.evaluate()
    assert calls["metrics"][-1][0] == pytest.approx(metrics)


def test_trainingdata_as_dataset(tmp_path):
    images = np.random.default_rng(0).random((40, *SHAPE, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images)
    trainer = SimCLRTrainer(str(tmp_path), ds, fcn=small_fcn(), **SMALL)
    assert trainer.steps_per_epoch == 2
    x1, x2 = next(iter(trainer._ds))
    assert x1.shape == x2.shape == (16, *SHAPE, 3) and not np.allclose(x1, x2)
    batched = SimCLRTrainer(str(tmp_path), ds.batch(5), fcn=small_fcn(), **SMALL)
    assert batched.steps_per_epoch is None       # unknown after re-batching
    with pytest.raises(ValueError, match="infinite"):
        SimCLRTrainer(str(tmp_path), ds.repeat(), fcn=small_fcn(), **SMALL)


@pytest.mark.parametrize("kwargs,match", [
    (dict(augment=False), "augment must be True or a dict"),
    (dict(augment={"wobble": 1}), "unknown augmentation key"),
    (dict(batch_size=1000), "larger than the training set"),
    (dict(temperature=0), "temperature must be a finite number"),
    (dict(imshape=(32,)), "imshape must be"),
    (dict(opt_type="adagrad"), "optimizer must be one of"),
    (dict(decay_type="cosine"), "needs decay_steps"),
    (dict(lr=float("nan")), "learning_rate must be a finite number"),
    (dict(lr=0.1, learning_rate=0.2), "same option"),
    (dict(wobble=1), "unknown feature trainer option"),
    (dict(downstream_labels=["a"]), "downstream_labels must be"),
])
def test_simclr_rejects_bad_options(demo, tmp_path, kwargs, match):
    opts = {**SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        SimCLRTrainer(str(tmp_path), demo[0], fcn=small_fcn(), **opts)


def test_construction_writes_nothing_and_seeds_nothing(demo, tmp_path):
    """Construction validates and builds; records appear with the first fit, and the global
    random state is the caller's until then."""
    logdir = tmp_path / "run"
    keras.utils.set_random_seed(123)
    expected = np.random.default_rng(0).random()  # numpy's global state is not used here
    state = np.random.get_state()[1].copy()
    trainer = SimCLRTrainer(str(logdir), demo[0], fcn=small_fcn(), **SMALL)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert not logdir.exists() and expected == np.random.default_rng(0).random()
    trainer.fit(1, evaluate=False, save=False, progress=False)
    assert (logdir / "config.yaml").is_file()


def test_options_object_and_keywords_are_one_vocabulary(demo, tmp_path):
    from patchwork_widget.feature import FeatureTrainerOptions

    opts = FeatureTrainerOptions(imshape=SHAPE, batch_size=16, augment=AUG, optimizer="sgd",
                                 learning_rate=0.05, schedule="cosine", decay_steps=8)
    a = SimCLRTrainer(str(tmp_path / "a"), demo[0], fcn=small_fcn(), options=opts)
    b = SimCLRTrainer(str(tmp_path / "b"), demo[0], fcn=small_fcn(), imshape=SHAPE,
                      batch_size=16, augment=AUG, opt_type="momentum", lr=0.05,
                      decay_type="cosine", lr_decay=8)
    assert a.options == b.options and isinstance(a.optimizer, keras.optimizers.SGD)
    with pytest.raises(ValueError, match="not both"):
        SimCLRTrainer(str(tmp_path / "c"), demo[0], fcn=small_fcn(), options=opts, lr=0.1)


def test_fcn_must_be_fully_convolutional(demo, tmp_path):
    inp = keras.Input((None, None, 3))
    pooled = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp))
    with pytest.raises(ValueError, match="fully convolutional"):
        SimCLRTrainer(str(tmp_path), demo[0], fcn=pooled, **SMALL)


@pytest.mark.parametrize("kwargs,match", [
    (dict(s=2), "need N >= 1"),
    (dict(N=4), "needs s >= 1"),
    (dict(N=100, s=2, batches_in_buffer=1), "larger than the queue"),
    (dict(alpha=1.0), "alpha must be"),
])
def test_moco_rejects_bad_options(demo, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MomentumContrastTrainer(str(tmp_path), demo[0], fcn=small_fcn(), **SMALL, **kwargs)
