"""F6: MoCo's queue is first in, first out and the momentum update is exact, on their own and
inside a trainer step."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from patchwork_widget.feature import MomentumContrastTrainer, ResNetFCN  # noqa: E402
from patchwork_widget.feature.moco import enqueue, momentum_update  # noqa: E402


def test_enqueue_is_fifo_with_newest_first():
    queue = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    a = np.full((2, 2), 100.0, np.float32)
    b = np.full((2, 2), 200.0, np.float32)
    enqueue(queue, a)
    enqueue(queue, b)
    expected = np.concatenate([b, a, np.arange(4, dtype=np.float32).reshape(2, 2)])
    np.testing.assert_array_equal(queue.numpy(), expected)
    enqueue(queue, np.full((4, 2), 300.0, np.float32))
    np.testing.assert_array_equal(queue.numpy()[4:], b)      # a is gone, b is the oldest


def test_momentum_update_is_exact():
    rng = np.random.default_rng(0)
    slow0 = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    fast0 = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    slow = [tf.Variable(x, dtype=tf.float64) for x in slow0]
    fast = [tf.Variable(x, dtype=tf.float64) for x in fast0]
    momentum_update(slow, fast, 0.9)
    for s, s0, f0 in zip(slow, slow0, fast0):
        np.testing.assert_allclose(s.numpy(), 0.9 * s0 + 0.1 * f0, rtol=0, atol=1e-15)
    for f, f0 in zip(fast, fast0):
        np.testing.assert_array_equal(f.numpy(), f0)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    images = np.random.default_rng(0).random((16, 16, 16, 3)).astype(np.float32)
    return MomentumContrastTrainer(
        str(tmp_path_factory.mktemp("moco")), images, fcn=ResNetFCN(3, filters=(4,)),
        augment={"flip_left_right": True}, imshape=(16, 16), norm=1.0, batch_size=8,
        batches_in_buffer=3, alpha=0.75, output_dim=5, seed=0)


def test_key_encoder_starts_as_a_copy(trainer):
    for k, q in zip(trainer.key_encoder.get_weights(), trainer.query_encoder.get_weights()):
        np.testing.assert_array_equal(k, q)
    assert trainer.queue.shape == (24, 5)
    np.testing.assert_allclose(np.linalg.norm(trainer.queue.numpy(), axis=1), 1.0, atol=1e-6)


def test_after_step_enqueues_keys_and_moves_key_encoder(trainer):
    for var in trainer.query_encoder.trainable_variables:      # make the encoders differ
        var.assign(var + 0.5)
    key_before = [v.numpy() for v in trainer.key_encoder.trainable_variables]
    query = [v.numpy() for v in trainer.query_encoder.trainable_variables]
    queue_before = trainer.queue.numpy()
    keys = np.random.default_rng(1).random((8, 5)).astype(np.float32)
    trainer._after_step({"_keys": tf.constant(keys)})
    np.testing.assert_array_equal(trainer.queue.numpy(), np.concatenate([keys, queue_before[:16]]))
    for v, k0, q0 in zip(trainer.key_encoder.trainable_variables, key_before, query):
        np.testing.assert_allclose(v.numpy(), 0.75 * k0 + 0.25 * q0, rtol=1e-6, atol=1e-7)


def test_train_step_pushes_one_batch_of_unit_keys(trainer):
    queue_before = trainer.queue.numpy()
    out = trainer.fit(1, save=False, evaluate=False, progress=False)
    assert np.isfinite(out["epoch_loss"])
    after = trainer.queue.numpy()
    steps = trainer.steps_per_epoch
    np.testing.assert_array_equal(after[8 * steps:], queue_before[:24 - 8 * steps])
    np.testing.assert_allclose(np.linalg.norm(after[:8 * steps], axis=1), 1.0, atol=1e-5)
