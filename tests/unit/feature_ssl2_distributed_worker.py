"""Subprocess for test_feature_ssl2_distributed: one training step of the part-two trainers
(F7-F10) under MirroredStrategy over two logical CPU devices and on one device, on the same
global batch.

Usage: python feature_ssl2_distributed_worker.py LOGDIR

Prints one JSON line: for each trainer, the loss on two replicas and on one device, the
largest difference of the fcn's weights after the step and the largest change of a weight in
that step.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from patchwork_widget.feature import (  # noqa: E402
    ContextEncoderTrainer,
    DeepClusterTrainer,
    DetConTrainer,
    MultiTaskTrainer,
    ResNetFCN,
)

BATCH = 8
SHAPE = (16, 16)
COMMON = dict(imshape=SHAPE, norm=1.0, batch_size=BATCH, opt_type="momentum", lr=0.1)


def batches(rng: np.random.Generator) -> dict:
    """One global batch per trainer, as its train step takes it."""
    x1 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    x2 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    masks = np.zeros((BATCH, *SHAPE, 3), np.float32)
    masks[:, :8, :, 0] = 1
    masks[:, 8:, :8, 1] = 1
    masks[:, 8:, 8:, 2] = 1
    cropped = masks.copy()
    cropped[1, ..., 2] = 0          # replica 0 loses a pair, replica 1 keeps all of its pairs
    cropped[2, ..., 1] = 0
    labels = np.arange(BATCH, dtype=np.float32) % 4
    # task b is labelled on replica 1's half only; task a misses one row on each half
    tasks = np.array([[0, -1], [1, -1], [-1, -1], [0, -1], [1, 0], [-1, 1], [0, 1], [1, 0]],
                     np.float32)
    holes = np.zeros((BATCH, *SHAPE, 1), np.float32)
    holes[:, 4:10, 3:12] = 1
    return {"MultiTaskTrainer": (x1, tasks), "ContextEncoderTrainer": (x1, holes),
            "DetConTrainer": ((x1, masks), (x2, cropped)),
            "DeepClusterTrainer": (x1, labels)}


def build(cls, strategy, logdir, images, **kw):
    with strategy.scope():
        fcn = ResNetFCN(3, filters=(8, 16), synchronized_bn=True)
    if cls is MultiTaskTrainer:
        kw["labels"] = {"a": [0, 1] * BATCH, "b": [1, None, 0, None] * (BATCH // 2)}
    return cls(logdir, images, fcn=fcn, strategy=strategy, **COMMON, **kw)


def one_step(trainer, strategy, a, b):
    ds = tf.data.Dataset.from_tensors((a, b))
    for x, y in strategy.experimental_distribute_dataset(ds):
        return float(trainer._train_step(x, y)["loss"])
    raise RuntimeError("empty dataset")


def main(logdir: str, seed: int = 0) -> None:
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.random((2 * BATCH, *SHAPE, 3)).astype(np.float32)
    data = batches(rng)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.OneDeviceStrategy("/cpu:0")
    results = {"replicas": mirrored.num_replicas_in_sync}
    cases = ((DetConTrainer, dict(augment={"flip_left_right": True}, mean_scale=0,
                                  num_samples=3, beta=0.5, tau_plus=0.1)),
             (DeepClusterTrainer, dict(k=4, pca_dim=4, dense=[8])),
             (MultiTaskTrainer, dict(shared_layers="8", task_weights="adaptive")),
             (ContextEncoderTrainer, dict(adv_weight=0.1)))
    for cls, kw in cases:
        name = cls.__name__
        two = build(cls, mirrored, os.path.join(logdir, name + "_2"), images, **kw)
        one = build(cls, single, os.path.join(logdir, name + "_1"), images, **kw)
        for model in two._models:
            one._models[model].set_weights(two._models[model].get_weights())
        if cls is MultiTaskTrainer:
            one.log_variances.assign(two.log_variances.numpy())
        start = one.fcn.get_weights()
        loss2 = one_step(two, mirrored, *data[name])
        loss1 = one_step(one, single, *data[name])
        diff = max(float(np.max(np.abs(a - b))) for a, b in
                   zip(two.fcn.get_weights(), one.fcn.get_weights()))
        step = max(float(np.max(np.abs(a - b))) for a, b in
                   zip(one.fcn.get_weights(), start))
        results[name] = {"two_replicas": loss2, "one_device": loss1, "weight_diff": diff,
                         "largest_update": step}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
