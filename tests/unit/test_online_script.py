"""Online mode from a plain script: no ``if __name__ == "__main__":`` guard, two threads
annotating, no IOLoop. The worker process must not run the script again, background results
must apply without recursion, and a stop during a round is a quiet cancel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tensorflow")

SCRIPT = """
import logging
import sys
import threading
import time

import numpy as np

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
print("the script ran", flush=True)
N = 400
rng = np.random.default_rng(0)
cat = (np.arange(N) % 2).astype(float)
features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(N, 2))).astype(np.float32)
session = Session.open(prep_label_dataframe([f"img_{i:04d}.png" for i in range(N)], ["cat"]),
                       outfile=OUTFILE, features=features, seed=0)
for row in range(12):
    session.annotate(row, {"cat": cat[row], "validation": row % 3 == 0})
session.start_online(every=5, order="margin", runner=RUNNER)


def annotate(rows):
    for row in rows:
        session.annotate(int(row), {"cat": cat[row]})


threads = [threading.Thread(target=annotate, args=(range(12 + k, 300, 2),)) for k in (0, 1)]
for thread in threads:
    thread.start()
deadline = time.monotonic() + 240
while time.monotonic() < deadline:  # the owner thread applies results as it asks for them
    status = session.online_status()
    if not any(t.is_alive() for t in threads) and status["rounds"] >= 2 and not status["training"]:
        break
    time.sleep(0.5)  # hundreds of labels are posted to the owner thread meanwhile
for thread in threads:
    thread.join()
print("rounds", status["rounds"], "state", status["state"], "reason", repr(status["reason"]),
      flush=True)
for row in range(300, 306):  # a new round starts ...
    session.annotate(row, {"cat": cat[row]})
session.online_status()
print("training when stopped", session.online_status()["training"], flush=True)
session.stop_online()  # ... and is stopped while it trains
time.sleep(2)
session.online_status()
session.start_online(every=5, order="margin", runner=RUNNER)  # a round starts at once ...
session.stop_online()  # ... and is stopped before it could train (the worker was starting)
time.sleep(2)
status = session.online_status()
print("stopped again", status["state"], repr(status["reason"]), status["rounds"], flush=True)
print("labeled", int(session.df["cat"].notna().sum()), flush=True)
session.close()
"""


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_online_mode_from_a_plain_script_with_two_annotating_threads(tmp_path, runner):
    script = tmp_path / "label_it.py"  # a file, as a user's script: no __main__ guard
    script.write_text(f"OUTFILE = {str(tmp_path / 'labels.csv')!r}\nRUNNER = {runner!r}\n"
                      + textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=500)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err[-4000:]
    assert out.count("the script ran") == 1, out  # never run again inside the worker
    rounds = int(out.split("rounds ")[1].split()[0])
    assert rounds >= 2 and "state running" in out and "reason ''" in out, out
    assert "training when stopped True" in out, out
    assert "stopped again stopped 'stopped by the user' 0" in out, out
    assert "labeled 306" in out, out  # 12 + 288 by the threads + 6
    assert "Traceback" not in err and "RecursionError" not in err, err[-4000:]
    assert " ERROR " not in err and "ERROR:" not in err, err[-4000:]
