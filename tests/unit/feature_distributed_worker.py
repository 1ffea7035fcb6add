"""Subprocess for test_feature_distributed: one training step of a trainer under
MirroredStrategy over two logical CPU devices and on one device, on the same batch.

Usage: python feature_distributed_worker.py LOGDIR [SEED]

The logical devices must be configured before TensorFlow runs any op, hence a process of its
own. Prints one JSON line: for each trainer, the loss on two replicas and on one device and
the largest difference of the fcn's weights after the step, beside the largest change of a
weight in that step.
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

from patchwork_widget.feature import HCLTrainer, ResNetFCN, SimCLRTrainer  # noqa: E402

BATCH = 8
SHAPE = (16, 16)
AUG = {"flip_left_right": True}


def build(cls, strategy, logdir, images, **kw):
    with strategy.scope():
        fcn = ResNetFCN(3, filters=(8, 16), synchronized_bn=True)
    return cls(logdir, images, fcn=fcn, augment=AUG, imshape=SHAPE, norm=1.0,
               batch_size=BATCH, strategy=strategy, opt_type="momentum", lr=0.1, **kw)


def one_step(trainer, strategy, x1, x2):
    ds = tf.data.Dataset.from_tensors((x1, x2))
    for a, b in strategy.experimental_distribute_dataset(ds):
        return float(trainer._train_step(a, b)["loss"])
    raise RuntimeError("empty dataset")


def main(logdir: str, seed: int = 0) -> None:
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.random((2 * BATCH, *SHAPE, 3)).astype(np.float32)
    x1 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    x2 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.OneDeviceStrategy("/cpu:0")
    results = {"replicas": mirrored.num_replicas_in_sync}
    for cls, kw in ((SimCLRTrainer, {}), (HCLTrainer, {"beta": 0.5, "tau_plus": 0.1})):
        name = cls.__name__
        two = build(cls, mirrored, os.path.join(logdir, name + "_2"), images, **kw)
        one = build(cls, single, os.path.join(logdir, name + "_1"), images, **kw)
        for model in ("fcn", "head"):
            one._models[model].set_weights(two._models[model].get_weights())
        start = one.fcn.get_weights()
        loss2 = one_step(two, mirrored, x1, x2)
        loss1 = one_step(one, single, x1, x2)
        diff = max(float(np.max(np.abs(a - b))) for a, b in
                   zip(two.fcn.get_weights(), one.fcn.get_weights()))
        step = max(float(np.max(np.abs(a - b))) for a, b in
                   zip(one.fcn.get_weights(), start))
        results[name] = {"two_replicas": loss2, "one_device": loss1, "weight_diff": diff,
                         "largest_update": step}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
