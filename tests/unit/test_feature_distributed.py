"""F11: one training step under MirroredStrategy over two logical CPU devices gives the
same loss and the same updated weights as one device, for SimCLR and HCL.

The logical devices must be set before TensorFlow initialises, so the work runs in a
subprocess (tests/unit/feature_distributed_worker.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

WORKER = Path(__file__).with_name("feature_distributed_worker.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path_factory.mktemp("dist"))],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_replicas_are_used(results):
    assert results["replicas"] == 2


@pytest.mark.parametrize("trainer", ["SimCLRTrainer", "HCLTrainer"])
def test_mirrored_step_equals_one_device(results, trainer):
    r = results[trainer]
    assert r["two_replicas"] == pytest.approx(r["one_device"], rel=1e-5, abs=1e-5)
    # the step itself moves weights by ~0.4; a missing cross-replica term would show at that scale
    assert r["weight_diff"] <= 1e-3 * r["largest_update"]
