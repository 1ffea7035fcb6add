"""F11 for real: SimCLR (a contrastive trainer) and the multitask trainer under
MultiWorkerMirroredStrategy with two worker processes on loopback (TF_CONFIG): after one step
on the same global batch the weights equal a single-process run's.

Each worker is a process of its own (tests/unit/feature_multiworker_worker.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

WORKER = Path(__file__).with_name("feature_multiworker_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("multiworker"))
    ports = [str(free_port()), str(free_port())]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(i), *ports, logdir],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in (1, 0)]
    try:
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    worker1, worker0 = outs
    assert procs[1].returncode == 0, worker0[1][-3000:]
    assert procs[0].returncode == 0, worker1[1][-3000:]
    return json.loads(worker0[0].strip().splitlines()[-1])


def test_two_workers_one_replica_each(results):
    assert results["workers"] == 2 and results["replicas"] == 2


@pytest.mark.parametrize("trainer", ["SimCLRTrainer", "MultiTaskTrainer"])
def test_multi_worker_step_equals_one_process(results, trainer):
    r = results[trainer]
    assert r["multi_worker"] == pytest.approx(r["one_device"], rel=1e-5, abs=1e-5)
    assert r["largest_update"] > 1e-3
    assert r["weight_diff"] <= 1e-3 * r["largest_update"]
