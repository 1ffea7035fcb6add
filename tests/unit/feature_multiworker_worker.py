"""Subprocess for test_feature_multiworker: one worker of a two-process
MultiWorkerMirroredStrategy cluster on loopback (F11, for real).

Usage: python feature_multiworker_worker.py INDEX PORT0 PORT1 LOGDIR

Both workers run one training step of SimCLR and of the multitask trainer on the same global
batch (each feeds its half, from ``distribute_datasets_from_function``). Worker 0 then runs the
same step on one device from the same starting weights and prints one JSON line: per trainer,
the loss both ways, the largest difference of the fcn's weights and the largest change of a
weight in the step.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
INDEX, PORTS, LOGDIR = int(sys.argv[1]), sys.argv[2:4], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"localhost:{p}" for p in PORTS]},
    "task": {"type": "worker", "index": INDEX},
})

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow work

from patchwork_widget.feature import MultiTaskTrainer, ResNetFCN, SimCLRTrainer  # noqa: E402

BATCH = 8
SHAPE = (16, 16)
COMMON = dict(imshape=SHAPE, norm=1.0, batch_size=BATCH, opt_type="momentum", lr=0.1)
CASES = {
    "SimCLRTrainer": (SimCLRTrainer, dict(augment={"flip_left_right": True})),
    "MultiTaskTrainer": (MultiTaskTrainer, dict(
        labels={"a": [0, 1] * BATCH, "b": [1, None, 0, None] * (BATCH // 2)},
        task_weights="adaptive", shared_layers="8")),
}


def build(cls, strategy, logdir, images, kw):
    with strategy.scope():
        fcn = ResNetFCN(3, filters=(8, 16), synchronized_bn=True)
    return cls(logdir, images, fcn=fcn, strategy=strategy, **COMMON, **kw)


def step(trainer, strategy, a, b):
    def per_worker(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        per = BATCH // ctx.num_input_pipelines
        lo = ctx.input_pipeline_id * per
        return tf.data.Dataset.from_tensors((a[lo:lo + per], b[lo:lo + per]))

    for x, y in strategy.distribute_datasets_from_function(per_worker):
        return float(trainer._train_step(x, y)["loss"])
    raise RuntimeError("empty dataset")


def main() -> None:
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((2 * BATCH, *SHAPE, 3)).astype(np.float32)
    x1 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    x2 = rng.random((BATCH, *SHAPE, 3)).astype(np.float32)
    codes = np.array([[0, -1], [1, -1], [-1, -1], [0, -1], [1, 0], [-1, 1], [0, 1], [1, 0]],
                     np.float32)
    batches = {"SimCLRTrainer": (x1, x2), "MultiTaskTrainer": (x1, codes)}
    results = {"workers": 2, "replicas": STRATEGY.num_replicas_in_sync}
    for name, (cls, kw) in CASES.items():
        multi = build(cls, STRATEGY, os.path.join(LOGDIR, f"{name}_{INDEX}"), images, kw)
        start = {m: model.get_weights() for m, model in multi._models.items()}
        loss_multi = step(multi, STRATEGY, *batches[name])
        if INDEX != 0:
            continue
        single = tf.distribute.OneDeviceStrategy("/cpu:0")
        one = build(cls, single, os.path.join(LOGDIR, f"{name}_one"), images, kw)
        for m, weights in start.items():
            one._models[m].set_weights(weights)
        loss_one = step(one, single, *batches[name])
        results[name] = {
            "multi_worker": loss_multi, "one_device": loss_one,
            "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in
                               zip(multi.fcn.get_weights(), one.fcn.get_weights())),
            "largest_update": max(float(np.max(np.abs(a - b))) for a, b in
                                  zip(one.fcn.get_weights(), start["fcn"])),
        }
    # a last collective: worker 1 waits here for worker 0's one-device runs, so neither
    # leaves the cluster while the other still needs it
    barrier = tf.function(lambda: STRATEGY.run(lambda: tf.constant(1.0)))
    STRATEGY.reduce(tf.distribute.ReduceOp.SUM, barrier(), axis=None)
    if INDEX == 0:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
