"""Code written for the original patchwork runs with only the import changed (issue 15).

Each test is one example of the original's documentation (the GUI's getting-started and the
feature trainers' examples), with its calls and keyword arguments kept and only its sizes made
small: 32-pixel images, a small fcn, one epoch, local files. The snippets' own typos are
fixed where Python could not run them (noted inline). Trainers of the original that this
project has not built yet skip until they exist.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import patchwork_widget as pw  # noqa: E402
from patchwork_widget.datasets import demo_classes, load_demo_dataset  # noqa: E402


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding the files the examples read: image lists and a label dictionary."""
    folder = tmp_path_factory.mktemp("seed")
    df = load_demo_dataset(folder / "demo", n_per_class=6, patch_size=32)
    files = df.filepath.tolist()
    classes = demo_classes()
    (folder / "allmyfiles.txt").write_text("\n".join(files) + "\n")
    (folder / "mytrainfiles.txt").write_text("\n".join(files[:48]) + "\n")
    labels = {f: classes[int(np.argmax(r))] for f, r in zip(files[48:], df[classes].values[48:])}
    (folder / "dictionary_mapping_some_images_to_labels.json").write_text(json.dumps(labels))
    return folder


@pytest.fixture
def here(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def small_fcn():
    """Stands in for the examples' ResNet50: the same kind of model, far smaller."""
    return tf.keras.Sequential([tf.keras.Input((None, None, 3)),
                                tf.keras.layers.Conv2D(8, 3, activation="relu"),
                                tf.keras.layers.MaxPooling2D(2),
                                tf.keras.layers.Conv2D(16, 3, activation="relu")])


def test_every_name_of_the_original_resolves_after_the_import():
    for name in ("feature", "viz", "loaders", "distill", "GUI", "prep_label_dataframe"):
        assert getattr(pw, name) is not None, name
    assert callable(pw.loaders.dataset) and callable(pw.viz.augplot)


def test_the_gui_getting_started(here):
    import matplotlib.pyplot as plt

    plt.ioff()  # (the original's `import panel as pn; pn.extension()` is not needed)
    small_fcn().save("pretrained_feature_extractor.h5")

    imfiles = [x.strip() for x in open("allmyfiles.txt").readlines()]
    classes = ["cat", "mammal", "dog"]
    df = pw.prep_label_dataframe(imfiles, classes)
    fe = tf.keras.models.load_model("pretrained_feature_extractor.h5")
    gui = pw.GUI(df, feature_extractor=fe, imshape=(256, 256), outfile="saved_labels.csv")
    shown = gui.panel()
    assert shown is gui and list(gui.df.columns[-3:]) == classes and gui.models is not None
    assert callable(gui.serve)
    gui.close()
    assert os.path.exists("saved_labels.csv")


def test_the_original_gui_keywords_run_as_deprecated_aliases(here):
    """B11: only the import changes. Each original keyword warns once and lands where it
    means the same here."""
    import warnings

    imfiles = [x.strip() for x in open("allmyfiles.txt").readlines()]
    df = pw.prep_label_dataframe(imfiles, ["cat", "dog"])
    feature_vecs = np.random.default_rng(0).normal(size=(len(imfiles), 4)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gui = pw.GUI(df, feature_vecs=feature_vecs, strong_aug={"flip_left_right": True},
                     num_channels=3, norm=255, aug={"flip_up_down": True},
                     logdir=str(here / "gui_logs"), imshape=(32, 32))
    said = [str(w.message).split("(")[1].split("=")[0] for w in caught
            if issubclass(w.category, DeprecationWarning) and "original GUI" in str(w.message)]
    assert sorted(said) == ["aug", "feature_vecs", "logdir", "norm", "strong_aug"]
    assert gui.session.features is feature_vecs and gui.session.num_channels == 3
    assert os.path.abspath(gui.session.store.path) == str(here / "gui_logs" / "patchwork_labels.csv")
    assert gui.train_tab.options()["augment"] == {"flip_up_down": True}
    gui.model_tab.build_model()
    assert gui.session.fixmatch.strong_aug == {"flip_left_right": True}
    gui.close()


def _inputs():
    trainfiles = [x.strip() for x in open("mytrainfiles.txt").readlines()]
    labeldict = json.load(open("dictionary_mapping_some_images_to_labels.json"))
    testfiles = list(labeldict)[:16]
    return trainfiles, labeldict, testfiles


def test_the_simclr_example(here):
    trainfiles, labeldict, testfiles = _inputs()
    fcn = small_fcn()
    aug_params = {'gaussian_blur': 0.25, 'drop_color': 0.2, 'gaussian_noise': 0.2,
                  'sobel_prob': 0.15, 'brightness_delta': 0.2, 'contrast_delta': 0.4,
                  'saturation_delta': 0.1, 'hue_delta': 0.1, 'flip_left_right': True,
                  'flip_up_down': True, 'rot90': True, 'zoom_scale': 0.4, 'mask': 0.25}
    pw.viz.augplot(trainfiles, aug_params)
    log_dir = str(here / "simclr")
    trainer = pw.feature.SimCLRTrainer(
        log_dir,  # the example passes `logdir`, a name it never defined
        trainfiles, testdata=testfiles, fcn=fcn, num_parallel_calls=6, augment=aug_params,
        lr=1e-4, lr_decay=0, temperature=0.1, num_hidden=128, output_dim=32, batch_size=16,
        imshape=(32, 32), downstream_labels=labeldict)  # the example's `downstream_labels`
    trainer.fit(1)                                       # is its `labeldict`
    assert os.path.exists(os.path.join(log_dir, "config.yaml"))


def test_the_moco_example(here):
    trainfiles, labeldict, _ = _inputs()
    fcn = small_fcn()
    aug_params = {'jitter': 1, 'gaussian_blur': 0.25, 'flip_left_right': True,
                  'zoom_scale': 0.1}
    pw.viz.augplot(trainfiles, aug_params)
    log_dir = str(here / "moco")
    trainer = pw.feature.MomentumContrastTrainer(  # the example has `pw.feature..Momentum...`
        log_dir, trainfiles, fcn=fcn, num_parallel_calls=6, augment=aug_params, lr=3e-2,
        weight_decay=1e-4, decay_type="staircase", lr_decay=10000, alpha=0.999, tau=0.07,
        batches_in_buffer=2, num_hidden=512, output_dim=64, batch_size=16, imshape=(32, 32),
        downstream_labels=labeldict)
    trainer.fit(1)


@pytest.mark.parametrize("distributed", [False, True])
def test_the_hcl_example_with_and_without_a_strategy(here, distributed):
    trainfiles, labeldict, testfiles = _inputs()
    aug_params = {'jitter': 1, 'gaussian_blur': 0.25, 'flip_left_right': True,
                  'zoom_scale': 0.1}
    extra = {}
    if distributed:
        strat = tf.distribute.MirroredStrategy(["/cpu:0"])
        assert strat.num_replicas_in_sync == 1
        with strat.scope():
            fcn = small_fcn()
        extra["strategy"] = strat
    else:
        fcn = small_fcn()
    log_dir = str(here / f"hcl_{distributed}")
    trainer = pw.feature.HCLTrainer(
        log_dir, trainfiles, testdata=testfiles, fcn=fcn, num_parallel_calls=6,
        augment=aug_params, opt_type="adam", lr=1e-3, lr_decay=0, weight_decay=1e-6,
        num_hidden=128, output_dim=64, temperature=0.1, beta=0.5, tau_plus=0.1, batch_size=16,
        imshape=(32, 32), downstream_labels=labeldict, **extra)
    trainer.fit(1)


def test_the_distill_step_of_the_workflow(here):
    trainfiles, _, _ = _inputs()
    teacher = np.random.default_rng(0).uniform(size=(len(trainfiles), 3))
    student, history = pw.distill(trainfiles, teacher, "resnet_small", epochs=1,
                                  imshape=(32, 32), batch_size=16)
    assert student.output_shape == (None, 3) and len(history) == 1


def test_the_deepcluster_example(here):
    trainfiles, labeldict, _ = _inputs()
    fcn = pw.feature.BNAlexNetFCN()
    log_dir = str(here / "deepcluster")
    dctrainer = pw.feature.DeepClusterTrainer(
        log_dir, fcn=fcn, trainingdata=trainfiles, augment=True,
        pca_dim=8,  # the example lacks the comma after this argument
        k=4, dense=[32, 32], lr=1e-3, lr_decay=100000, batch_size=16, num_parallel_calls=6,
        downstream_labels=labeldict)
    dctrainer.fit(1)


def test_the_detcon_example(here):
    trainfiles, labeldict, testfiles = _inputs()
    aug = {'flip_left_right': True, 'flip_up_down': True, 'rot90': True, 'zoom_scale': 0.4,
           'jitter': 1.0, 'shear': 0.3}
    if hasattr(pw.viz, "detcon_input_pipeline"):
        pw.viz.detcon_input_pipeline(trainfiles[:20], aug, mean_scale=200, num_samples=4,
                                     imshape=(32, 32))
    strat = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strat.scope():
        fcn = small_fcn()
    log_dir = str(here / "detcon")
    trainer = pw.feature.DetConTrainer(
        log_dir, trainfiles, testdata=testfiles, fcn=fcn, num_parallel_calls=6, augment=aug,
        lr=1e-3, weight_decay=1e-6, num_hidden=128, output_dim=64, temperature=0.1,
        mean_scale=200, num_samples=4, batch_size=16, imshape=(32, 32),
        downstream_labels=labeldict, strategy=strat)
    trainer.fit(1)


def test_the_detcon_example_as_written_builds_fcn_outside_the_scope(workdir):
    """The example builds ``fcn`` again outside ``strategy.scope()`` before passing it: with
    two replicas the trainer clones it into the scope (same weights) and trains the copy."""
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("seed_detcon_worker.py")
    done = subprocess.run([sys.executable, str(worker), str(workdir)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["copied"] and result["weights_equal_at_start"]
    assert result["largest_update"] > 0


def test_the_context_encoder_example_once_it_exists(here):
    if not hasattr(pw.feature, "ContextEncoderTrainer"):
        pytest.skip("pw.feature.ContextEncoderTrainer is not built yet (the trainers' issue)")
    trainfiles, labeldict, testfiles = _inputs()
    trainer = pw.feature.ContextEncoderTrainer(
        str(here / "context"), trainfiles, testdata=testfiles, num_parallel_calls=6,
        augment={'flip_left_right': True}, lr=1e-3, batch_size=16, imshape=(32, 32),
        downstream_labels=labeldict)
    trainer.fit(1)
