"""M7: distillation from a teacher's probabilities to a student network on image files."""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd
import pytest
import yaml

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import patchwork_widget as pw  # noqa: E402
from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset  # noqa: E402
from patchwork_widget.labels import prep_label_dataframe  # noqa: E402
from patchwork_widget.models.distill import build_student, distill, distillation_loss  # noqa: E402
from patchwork_widget.models.predictions import class_metrics  # noqa: E402
from patchwork_widget.session import Session  # noqa: E402

# The student (a small CNN seeing pixels) must come within this of the teacher's mean test AUC
# (a logistic regression on hand-made colour and layout features). Measured: teacher 0.947,
# student 0.979 after 8 epochs at 32 px (388 demo images, 3/4 for training).
AUC_MARGIN = 0.05
SHAPE = (32, 32)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo images at 32 px, ground truth, and a teacher's probabilities for every image."""
    from sklearn.linear_model import LogisticRegression

    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=30, patch_size=32)
    classes = demo_classes()
    x, y = demo_features(df.filepath.tolist()), df[classes].to_numpy()
    train = np.arange(len(df)) < int(0.75 * len(df))
    probs = np.column_stack([
        LogisticRegression(max_iter=500).fit(x[train], y[train, j]).predict_proba(x)[:, 1]
        for j in range(len(classes))])
    return df.filepath.tolist(), y, probs, train, classes


def test_the_student_comes_within_the_margin_of_the_teachers_test_auc(demo, tmp_path):
    files, y, probs, train, classes = demo
    test = ~train
    teacher_auc = np.nanmean(class_metrics(probs[test], y[test])[0])
    student, history = distill(
        [f for f, t in zip(files, train) if t], probs[train], "resnet_small", classes=classes,
        testfiles=[f for f, t in zip(files, test) if t], testlabels=y[test], epochs=8,
        imshape=SHAPE, batch_size=32, learning_rate=3e-3, seed=0, logdir=tmp_path / "log",
        augment={"flip_left_right": True, "flip_up_down": True, "rot90": True})
    assert list(history.epoch) == list(range(1, 9))
    assert history.loss.iloc[-1] < history.loss.iloc[0]
    assert history.mean_auc.iloc[-1] >= teacher_auc - AUC_MARGIN, (history.mean_auc.iloc[-1],
                                                                   teacher_auc)
    assert {f"auc_{c}" for c in classes} | {f"acc_{c}" for c in classes} <= set(history.columns)
    assert student.output_shape == (None, len(classes))
    # records: hyperparameters, per-epoch history and TensorBoard scalars
    config = yaml.safe_load((tmp_path / "log" / "config.yaml").read_text())
    assert config["temperature"] == 1.0 and config["classes"] == classes
    saved = yaml.safe_load((tmp_path / "log" / "history.yaml").read_text())
    assert len(saved) == 8 and saved[-1]["mean_auc"] == pytest.approx(history.mean_auc.iloc[-1])
    tags = {v.tag for path in glob.glob(str(tmp_path / "log" / "events.out.tfevents.*"))
            for e in tf.compat.v1.train.summary_iterator(path) for v in e.summary.value}
    assert {"loss", "learning_rate", "mean_auc", f"auc_{classes[0]}"} <= tags


def test_the_loss_is_smallest_where_the_student_matches_and_temperature_softens_it():
    teacher = tf.constant([[0.9, 0.2]])
    match = distillation_loss(teacher, teacher)
    off = distillation_loss(teacher, tf.constant([[0.2, 0.9]]))
    assert float(off[0]) > float(match[0])
    # the gradient at a mismatch has the same scale at T=4 as at T=1 (the T**2 factor)
    s = tf.Variable([[0.3, 0.6]])
    grads = []
    for t in (1.0, 4.0):
        with tf.GradientTape() as tape:
            loss = distillation_loss(teacher, s, t)
        grads.append(float(tf.norm(tape.gradient(loss, s))))
    assert 0.2 < grads[1] / grads[0] < 5


def test_the_widgets_predictions_are_handed_over_in_one_call(demo, tmp_path):
    files, y, _, _, classes = demo
    df = prep_label_dataframe(files, classes)
    session = Session.open(df, outfile=tmp_path / "labels.csv", features=demo_features(files),
                           seed=0)
    for row in range(0, len(files), 3):
        session.annotate(row, {c: float(v) for c, v in zip(classes, y[row])})
    session.annotate(1, {"exclude": True})
    session.build_model({"kind": "pool"})
    session.train({"epochs": 2, "batch_size": 32}).result(timeout=300)
    student, history = pw.distill(None, session, epochs=1, imshape=SHAPE, batch_size=64)
    assert len(history) == 1 and "mean_auc" not in history
    assert student.output_shape == (None, len(classes))
    session.close()


def test_a_keras_teacher_is_run_over_the_files_and_a_dataframe_is_aligned_by_path(demo):
    files, _, probs, _, classes = demo
    files = files[:40]
    inp = keras.Input(SHAPE + (3,))
    teacher = keras.Model(inp, keras.layers.Dense(len(classes), activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(inp)))
    result = distill(files, teacher, "bn_alexnet", classes=classes, epochs=1, imshape=SHAPE,
                     batch_size=16)
    assert result.classes == classes and len(result.history) == 1
    frame = pd.DataFrame(probs[:40], columns=classes).assign(filepath=files).iloc[::-1]
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    def student():
        return keras.Sequential([keras.Input(SHAPE + (3,)), keras.layers.Flatten(),
                                 keras.layers.Dense(len(classes), activation="sigmoid")])

    with pytest.raises(ValueError, match="outside strategy.scope"):
        distill(files[:20], frame, student(), imshape=SHAPE, strategy=strategy)
    with strategy.scope():
        model = student()
    result = distill(files[:20], frame, model, epochs=1, imshape=SHAPE, batch_size=8,
                     strategy=strategy)
    assert result.student is model and result.classes == classes


def test_bad_inputs_name_the_argument(demo):
    files, _, probs, _, classes = demo
    with pytest.raises(ValueError, match="student must be .* one of"):
        distill(files[:8], probs[:8], "vgg99", imshape=SHAPE)
    with pytest.raises(ValueError, match="one row per file"):
        distill(files[:8], probs[:7], imshape=SHAPE)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        distill(files[:8], probs[:8] * 10, imshape=SHAPE)
    with pytest.raises(ValueError, match="temperature must be"):
        distill(files[:8], probs[:8], temperature=0, imshape=SHAPE)
    with pytest.raises(ValueError, match="filepaths is required"):
        distill(None, probs[:8], imshape=SHAPE)
    with pytest.raises(ValueError, match="one output of 3"):
        distill(files[:8], probs[:8, :3], keras.Sequential([
            keras.Input(SHAPE + (3,)), keras.layers.Flatten(), keras.layers.Dense(2)]),
            imshape=SHAPE)
    with pytest.raises(ValueError, match="no predictions yet"):
        class Untrained:
            df = pd.DataFrame({"filepath": files[:2]})
            predictions = None
        distill(None, Untrained(), imshape=SHAPE)


def test_a_trained_patchwork_model_is_a_teacher(demo):
    from patchwork_widget.models import build_models

    files, _, _, _, classes = demo
    inp = keras.Input(SHAPE + (3,))
    extractor = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp))
    models = build_models(classes[:2], extractor=extractor)
    result = distill(files[:24], models, "resnet_small", epochs=1, imshape=SHAPE,
                     batch_size=8)
    assert result.classes == classes[:2] and result.student.output_shape == (None, 2)


def test_the_originals_keywords_are_taken_and_others_refused(demo, tmp_path):
    files, _, probs, _, classes = demo
    distill(files[:16], probs[:16], "resnet_small", temp=2.0, lr=1e-3, opt_type="momentum",
            decay_type="warmupcosine", lr_decay=0, class_names=classes, epochs=1,
            imshape=SHAPE, batch_size=8, logdir=tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert (config["temperature"], config["learning_rate"], config["optimizer"],
            config["schedule"], config["classes"]) == (2.0, 1e-3, "sgd", "constant", classes)
    student = build_student("mobilenet", 3, (32, 32), 3)  # the original's names too
    assert student.output_shape == (None, 3)
    with pytest.raises(TypeError, match="'strong_aug'.*the original's"):
        distill(files[:16], probs[:16], strong_aug=True, imshape=SHAPE)
