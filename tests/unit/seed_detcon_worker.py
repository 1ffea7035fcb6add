"""Subprocess for test_seed_examples: the original's DetCon example under a two-replica
MirroredStrategy, with its ``fcn`` built outside ``strategy.scope()`` as the example does.

Usage: python seed_detcon_worker.py WORKDIR

The two logical CPU devices must be configured before TensorFlow runs any op, hence a process
of its own. WORKDIR holds the example's files (``mytrainfiles.txt`` and the label dictionary).
Prints one JSON line: the replicas, whether the trainer trains a copy of the fcn, and the
largest weight change of that copy in one epoch.
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

import patchwork_widget as pw  # noqa: E402


def small_fcn():
    """Stands in for the example's ResNet50: the same kind of model, far smaller."""
    return tf.keras.Sequential([tf.keras.Input((None, None, 3)),
                                tf.keras.layers.Conv2D(8, 3, activation="relu"),
                                tf.keras.layers.MaxPooling2D(2),
                                tf.keras.layers.Conv2D(16, 3, activation="relu")])


def main(workdir: str) -> None:
    os.chdir(workdir)
    small_fcn().save_weights("my_previous_model.weights.h5")
    # the example's code from here on, sizes made small
    trainfiles = [x.strip() for x in open("mytrainfiles.txt").readlines()]
    labeldict = json.load(open("dictionary_mapping_some_images_to_labels.json"))
    testfiles = list(labeldict)[:16]

    strat = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strat.scope():
        fcn = small_fcn()
        fcn.load_weights("my_previous_model.weights.h5")  # Keras 3 names weight files so
    fcn = small_fcn()  # the example builds it again, outside the scope
    aug_params = {'jitter': 1, 'gaussian_blur': 0.25, 'flip_left_right': True,
                  'zoom_scale': 0.1}
    log_dir = os.path.join(workdir, "detcon_log")
    trainer = pw.feature.DetConTrainer(
        log_dir, trainfiles, testdata=testfiles, fcn=fcn, num_parallel_calls=6,
        augment=aug_params, lr=1e-3, weight_decay=1e-6, num_hidden=128, output_dim=64,
        temperature=0.1, mean_scale=200, num_samples=5, batch_size=16, imshape=(32, 32),
        downstream_labels=labeldict, strategy=strat)
    before = [w.copy() for w in trainer.fcn.get_weights()]
    trainer.fit(1)
    change = max(float(np.max(np.abs(a - b))) for a, b in zip(trainer.fcn.get_weights(), before))
    print(json.dumps({"replicas": strat.num_replicas_in_sync, "copied": trainer.fcn is not fcn,
                      "weights_equal_at_start": all(np.array_equal(a, b) for a, b in
                                                    zip(before, fcn.get_weights())),
                      "largest_update": change}))


if __name__ == "__main__":
    main(sys.argv[1])
