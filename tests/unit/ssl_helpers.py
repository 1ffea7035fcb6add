"""Helpers shared by the tests of the part-two self-supervised trainers (F7-F10)."""

from __future__ import annotations

import glob
import os

import tensorflow as tf


def events(logdir: str) -> set:
    """Summary tags written to ``logdir``'s TensorBoard event files."""
    tags = set()
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags
