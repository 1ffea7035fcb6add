"""F10 multitask: a missing label has no gradient, adaptive weights move toward the noisier
task, labels are encoded and checked, strata are sampled evenly, and an epoch on the demo data
writes its records."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from patchwork_widget.feature.tasks import (
    MISSING,
    encode_tasks,
    missingness_strata,
    parse_task_weights,
)

tf = pytest.importorskip("tensorflow")

from patchwork_widget.datasets import demo_classes, load_demo_dataset  # noqa: E402
from patchwork_widget.feature import MultiTaskTrainer, ResNetFCN  # noqa: E402
from patchwork_widget.feature.multitask import (  # noqa: E402
    masked_task_losses,
    uncertainty_weighted_loss,
)
from ssl_helpers import events  # noqa: E402


def test_encode_tasks_with_missing_values():
    table = encode_tasks({"kind": ["cat", None, "dog", "cat"],
                          "size": [np.nan, 2.0, 1.0, np.nan]}, 4)
    assert table.tasks == ["kind", "size"] and table.classes == [["cat", "dog"], [1.0, 2.0]]
    np.testing.assert_array_equal(table.codes, [[0, MISSING], [MISSING, 1], [1, 0],
                                                [0, MISSING]])
    np.testing.assert_array_equal(missingness_strata(table.codes), [1, 0, 2, 1])
    test = encode_tasks(pd.DataFrame({"kind": ["dog"], "size": [None]}), 1, "testlabels",
                        table.classes)
    np.testing.assert_array_equal(test.codes, [[1, MISSING]])
    with pytest.raises(ValueError, match="not among its training classes"):
        encode_tasks({"kind": ["cow"], "size": [1.0]}, 1, "testlabels", table.classes)
    with pytest.raises(ValueError, match="has 2 rows but there are 3 images"):
        encode_tasks({"kind": ["a", "b"]}, 3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        encode_tasks({"kind": ["a", "a", None]}, 3)


def test_task_weights():
    assert parse_task_weights("adaptive", ["a", "b"]) is None
    np.testing.assert_array_equal(parse_task_weights(None, ["a", "b"]), [1, 1])
    np.testing.assert_array_equal(parse_task_weights({"b": 2, "a": 0.5}, ["a", "b"]), [0.5, 2])
    for bad, match in (("auto", "must be 'none', 'adaptive'"), ([1.0], "1 weights for 2"),
                       ({"a": 1}, "a weight for each task"), ([-1, 1], ">= 0")):
        with pytest.raises(ValueError, match=match):
            parse_task_weights(bad, ["a", "b"])


def test_gradient_of_a_missing_label_is_zero():
    logits = [tf.Variable(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)),
              tf.Variable(np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32))]
    codes = tf.constant([[0, MISSING], [MISSING, MISSING], [2, MISSING], [1, MISSING]])
    with tf.GradientTape() as tape:
        sums, counts, _ = masked_task_losses(logits, codes)
        total = tf.reduce_sum(sums / tf.maximum(counts, 1.0))
    g0, g1 = tape.gradient(total, logits)
    assert not g0.numpy()[1].any() and g0.numpy()[[0, 2, 3]].all()
    assert not g1.numpy().any()                       # task 2 has no label in this batch
    np.testing.assert_array_equal(counts.numpy(), [3, 0])
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits([0, 2, 1], tf.gather(logits[0],
                                                                               [0, 2, 3]))
    assert float(sums[0]) == pytest.approx(float(tf.reduce_sum(ref)), rel=1e-6)


def test_uncertainty_weighting_optimum_is_log_twice_the_loss():
    s = tf.Variable([0.0, 0.0])
    losses = tf.constant([0.1, 1.0])
    opt = tf.keras.optimizers.SGD(0.5)
    for _ in range(300):
        with tf.GradientTape() as tape:
            total = uncertainty_weighted_loss(losses, s)
        opt.apply_gradients([(tape.gradient(total, s), s)])
    np.testing.assert_allclose(s.numpy(), np.log(2 * losses.numpy()), atol=1e-3)
    inactive = uncertainty_weighted_loss(losses, s, tf.constant([True, False]))
    assert float(inactive) == pytest.approx(float(tf.exp(-s[0]) * 0.1 + 0.5 * s[0]))


def test_adaptive_weights_move_toward_the_noisier_task(tmp_path):
    """Two tasks on the same brightness signal, one with 40% of its labels flipped: the
    learned log-variance of the noisy task ends above the clean one's (a smaller weight)."""
    rng = np.random.default_rng(0)
    bright = rng.integers(0, 2, 128)
    images = (rng.random((128, 8, 8, 3)) * 0.3 + 0.6 * bright[:, None, None, None])
    flipped = np.where(rng.random(128) < 0.4, 1 - bright, bright)
    labels = {"clean": bright.tolist(), "noisy": flipped.tolist()}
    trainer = MultiTaskTrainer(str(tmp_path), images.astype(np.float32), labels,
                               fcn=ResNetFCN(3, filters=(4,)), task_weights="adaptive",
                               imshape=(8, 8), norm=1.0, batch_size=32, lr=0.05, seed=0)
    trainer.fit(6, evaluate=False, save=False, progress=False)
    s = dict(zip(trainer.tasks, trainer.log_variances.numpy()))
    assert s["noisy"] > s["clean"] + 0.1
    assert {"log_variance/clean", "log_variance/noisy", "loss/noisy"} <= events(str(tmp_path))
    trainer.save()                                        # the learned weights are kept
    again = MultiTaskTrainer(str(tmp_path / "again"), images.astype(np.float32), labels,
                             fcn=ResNetFCN(3, filters=(4,)), imshape=(8, 8), norm=1.0,
                             batch_size=32)
    again.load_weights(str(tmp_path))
    np.testing.assert_array_equal(again.log_variances.numpy(), trainer.log_variances.numpy())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=12, patch_size=32)
    classes = demo_classes()[:2]
    table = df[classes].astype(object)
    table.iloc[::3, 0] = None                         # a third of task 1 unlabelled
    table.iloc[1::4, 1] = None                        # a quarter of task 2 unlabelled
    return df.filepath.tolist(), table


def test_fit_one_epoch_on_demo_data_records(demo, tmp_path):
    files, table = demo
    logdir = str(tmp_path / "mt")
    fcn = ResNetFCN(3, filters=(8, 16))
    before = [w.copy() for w in fcn.get_weights()]
    trainer = MultiTaskTrainer(logdir, files[:64], table.iloc[:64], testdata=files[64:96],
                               testlabels=table.iloc[64:96], fcn=fcn, shared_layers="16,p",
                               augment={"flip_left_right": True}, task_weights=[1.0, 0.5],
                               imshape=(32, 32), batch_size=16, seed=0, notes="mt")
    out = trainer.fit(1, progress=False)
    assert trainer.step == trainer.steps_per_epoch == 3   # 5 of 64 rows have no label
    assert np.isfinite(out["epoch_loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, fcn.get_weights()))
    tasks = trainer.tasks
    assert all(0 <= out[f"test_accuracy/{t}"] <= 1 for t in tasks)
    config = yaml.safe_load(open(os.path.join(logdir, "config.yaml")))
    assert config["trainer"] == "MultiTask" and config["tasks"] == tasks
    assert config["task_weights"] == {tasks[0]: 1.0, tasks[1]: 0.5}
    assert config["shared_layers"]["spec"] == "16,p"
    assert {"loss", f"loss/{tasks[0]}", f"accuracy/{tasks[1]}", "test_loss",
            f"test_accuracy/{tasks[0]}"} <= events(logdir)
    assert "log_variance/" + tasks[0] not in events(logdir)
    assert os.path.isfile(os.path.join(logdir, "head_1.weights.h5"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(shared_layers="16,x"), "bad token"),
    (dict(shared_layers=5), "shared_layers must be"),
    (dict(testdata=["a.png"]), "testdata needs testlabels"),
    (dict(task_weights="equal"), "task_weights must be"),
])
def test_rejects_bad_options(demo, tmp_path, kwargs, match):
    files, table = demo
    with pytest.raises(ValueError, match=match):
        MultiTaskTrainer(str(tmp_path), files[:32], table.iloc[:32],
                         fcn=ResNetFCN(3, filters=(8,)), imshape=(32, 32), batch_size=8,
                         **kwargs)
