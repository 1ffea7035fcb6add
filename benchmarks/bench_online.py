"""Online active learning (A6): acknowledgement latency while rounds run, and labels saved.

1. Ack latency: the widget's annotate request (validated, journaled with synchronous=FULL,
   answered) p50 / p95 over 300 requests with no training, and while online rounds run back to
   back in the background (every=1). Goal: ratio <= 1.2.
2. A simulated labeler on the demo set (labels from ground truth; 200 validation rows labeled
   first): labels needed until the validation macro AUC reaches the target, for online mode
   (a round every 20 labels, max entropy, 20% random), retraining by hand every 100 labels with
   max entropy, and the same by hand in random order.

    python benchmarks/bench_online.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _table import print_table

from patchwork_widget.datasets import demo_classes, demo_features, load_demo_dataset
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.widget import protocol

TARGET_AUC = 0.97
VALIDATION_ROWS = 200
MAX_LABELS = 600


def open_session(folder: Path, name: str, truth, features) -> Session:
    df = prep_label_dataframe(truth["filepath"].tolist(), demo_classes())
    session = Session.open(df, outfile=folder / f"{name}.csv", features=features, seed=0)
    rows = np.random.default_rng(0).permutation(len(df))[:VALIDATION_ROWS]
    classes = demo_classes()
    for row in rows:
        session.annotate(int(row), {**truth.loc[row, classes].to_dict(), "validation": True})
    return session


def ack_latency(session: Session, rows: list[int], background: bool) -> np.ndarray:
    if background:
        session.start_online(every=1, explore=0.0, stop={"all_labeled": False})
    out = []
    for i, row in enumerate(rows):
        session.dispatcher.drain()  # the kernel's loop would apply finished rounds here
        start = time.perf_counter()
        ((reply, _),) = protocol.handle(session, {"type": "annotate", "id": i, "rows": [row],
                                                  "changes": {demo_classes()[0]: 0.0}})
        out.append(time.perf_counter() - start)
        assert reply["type"] == "ack"
    if background:
        rounds = session.online_status()["rounds"]
        session.stop_online()
        print(f"  ({rounds} rounds finished during the timed requests)")
    return np.array(out) * 1e3


def labels_to_target(session: Session, truth, mode: str) -> tuple[int, float]:
    """Label the queue's first image from ground truth until the validation AUC reaches the
    target; returns (labels given, AUC reached)."""
    classes = demo_classes()
    if mode == "online":
        session.sample({"kind": "unlabeled"}, "random", 50)
        session.start_online(every=20, order="max entropy", explore=0.2, count=50,
                             stop={"macro_auc": TARGET_AUC})
    else:
        session.build_model()
        session.sample({"kind": "unlabeled"}, "random", 50)
    given, auc = 0, float("nan")
    while given < MAX_LABELS:
        if mode == "online":
            session.dispatcher.drain()
            status = session.online_status()
            if status["rounds"]:
                auc = status["history"][-1]["val_auc"]
            if status["state"] == "stopped":
                break
        elif given % 100 == 0 and given:
            session.train().result(timeout=300)
            auc = float(session.train_history["val_auc"].iloc[-1])
            if auc >= TARGET_AUC:
                break
            order = "max entropy" if mode == "by hand, max entropy" else "random"
            session.sample({"kind": "unlabeled"}, order, 100)
        if not session.queue:
            session.sample({"kind": "unlabeled"}, "random", 50)
        row = session.queue.pop(0) if mode != "online" else session.queue[session.cursor]
        if mode == "online":
            session.cursor = min(session.cursor + 1, len(session.queue) - 1)
        session.annotate(row, truth.loc[row, classes].to_dict())
        given += 1
    if mode == "online" and session.online.job is not None:
        session.online.job.result(timeout=300)
        session.dispatcher.drain()
        auc = session.online_status()["history"][-1]["val_auc"]
        session.stop_online()
    return given, auc


def main() -> None:
    truth = load_demo_dataset()
    features = demo_features(truth["filepath"].tolist())
    with tempfile.TemporaryDirectory() as folder:
        session = open_session(Path(folder), "latency", truth, features)
        for row in range(len(truth) - 60, len(truth)):  # training labels, then one warm-up run
            session.annotate(row, truth.loc[row, demo_classes()].to_dict())
        session.build_model()
        session.train().result(timeout=300)
        rows = [r for r in range(len(truth)) if np.isnan(session.df.at[r, demo_classes()[0]])][:300]
        quiet = ack_latency(session, rows[:150], background=False)
        busy = ack_latency(session, rows[150:], background=True)
        session.close()
        p = lambda a, q: float(np.percentile(a, q))  # noqa: E731
        print_table("Annotate request latency, ms (validated, journaled, answered)",
                    ["", "p50", "p95"],
                    [("no training", p(quiet, 50), p(quiet, 95)),
                     ("online rounds running", p(busy, 50), p(busy, 95)),
                     ("ratio", p(busy, 50) / p(quiet, 50), p(busy, 95) / p(quiet, 95))])
        table = []
        for mode in ("online", "by hand, max entropy", "by hand, random order"):
            session = open_session(Path(folder), mode.replace(" ", "_").replace(",", ""), truth, features)
            start = time.perf_counter()
            given, auc = labels_to_target(session, truth, mode)
            table.append((mode, given, auc, time.perf_counter() - start))
            session.close()
        print_table(f"Labels until the validation macro AUC reaches {TARGET_AUC} (demo set, "
                    f"{VALIDATION_ROWS} validation rows; at most {MAX_LABELS})",
                    ["mode", "labels", "AUC reached", "seconds"], table)


if __name__ == "__main__":
    main()
