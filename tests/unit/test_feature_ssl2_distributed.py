"""F11 for the part-two trainers (F7-F10): one training step under MirroredStrategy over two
logical CPU devices gives the same loss and the same updated weights as one device on the
same global batch. DetCon's batch leaves out pairs on one replica only and the multitask
batch has a task labelled on one replica only, so a per-replica mean (instead of the global
one) would show.

The logical devices must be set before TensorFlow initialises, so the work runs in a
subprocess (tests/unit/feature_ssl2_distributed_worker.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("skimage")

WORKER = Path(__file__).with_name("feature_ssl2_distributed_worker.py")
TRAINERS = ["DetConTrainer", "DeepClusterTrainer", "MultiTaskTrainer",
            "ContextEncoderTrainer"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path_factory.mktemp("dist2"))],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_replicas_are_used(results):
    assert results["replicas"] == 2


@pytest.mark.parametrize("trainer", TRAINERS)
def test_mirrored_step_equals_one_device(results, trainer):
    r = results[trainer]
    assert r["two_replicas"] == pytest.approx(r["one_device"], rel=1e-5, abs=1e-5)
    assert r["largest_update"] > 1e-3
    assert r["weight_diff"] <= 1e-3 * r["largest_update"]
