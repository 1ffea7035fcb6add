"""P7 and trainer throughput: the cost of the self-supervised trainers on this machine.

1. P7: one SimCLR train step (64 images of 64x64, so 128 augmented views) against a bare Keras
   ``train_on_batch`` of the same network (fcn + projection head) on the same 128 views with an
   MSE loss; same optimizer (Adam), no XLA. Goal: ratio <= 1.3.
2. Images per second for each trainer, end to end over the demo images (decode, two
   augmentations, train step), batch 64 at 64x64, against SimCLR in the same process.

Usage: python benchmarks/bench_ssl.py [--rounds N] [--part all|p7|rate]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from typing import Callable, Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _table import print_table  # noqa: E402

from patchwork_widget.datasets import load_demo_dataset  # noqa: E402
from patchwork_widget.feature import (  # noqa: E402
    HCLTrainer,
    MomentumContrastTrainer,
    ResNetFCN,
    SimCLRTrainer,
)
from patchwork_widget.feature.data import pair_dataset  # noqa: E402
from patchwork_widget.feature.models import projection_head  # noqa: E402
from patchwork_widget.images.augment import validate_augment  # noqa: E402

SIZE, BATCH = 64, 64


def interleaved(cases: Dict[str, Callable[[], object]], rounds: int, block: int = 1,
                warmup: int = 2) -> Dict[str, float]:
    """Median seconds per call of each case, timed round-robin (``block`` calls of a case at
    a time) so that load from other jobs on a shared machine hits every case alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def p7(files: list, logdir: str, rounds: int) -> None:
    keras.utils.set_random_seed(0)
    trainer = SimCLRTrainer(logdir, files, fcn=ResNetFCN(3), imshape=(SIZE, SIZE),
                            batch_size=BATCH, augment=True, seed=0)
    rng = np.random.default_rng(0)
    x1 = tf.constant(rng.random((BATCH, SIZE, SIZE, 3), np.float32))
    x2 = tf.constant(rng.random((BATCH, SIZE, SIZE, 3), np.float32))
    both = tf.concat([x1, x2], axis=0)

    inp = keras.Input((None, None, 3))
    fcn = ResNetFCN(3)
    model = keras.Model(inp, projection_head(fcn.outputs[0].shape[-1])(fcn(inp)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)
    y2 = tf.constant(rng.standard_normal((2 * BATCH, 64)), tf.float32)

    t = interleaved({
        "keras128": lambda: model.train_on_batch(both, y2),
        "keras64": lambda: model.train_on_batch(x1, y2[:BATCH]),
        "simclr": lambda: trainer._train_step(x1, x2)["loss"].numpy(),
    }, rounds)
    base = t["keras128"]
    print_table(
        f"P7: SimCLR train step vs bare Keras train_on_batch, ResNetFCN + head, {SIZE}x{SIZE}, "
        f"batch {BATCH} (median of {rounds}, interleaved; goal: ratio <= 1.3 against the "
        f"same 128 views)",
        ["step", "images through the net", "seconds", "x Keras (128 views)"],
        [("Keras train_on_batch, MSE (baseline)", 2 * BATCH, base, 1.0),
         ("Keras train_on_batch, MSE, one view", BATCH, t["keras64"], t["keras64"] / base),
         ("SimCLR train step (NT-Xent)", 2 * BATCH, t["simclr"], t["simclr"] / base)],
    )


def throughput(files: list, logdir: str, rounds: int) -> None:
    ds, _ = pair_dataset(files, validate_augment(True), imshape=(SIZE, SIZE), batch_size=BATCH)
    pipeline = iter(ds.repeat())
    # alone, back to back: interleaved, its prefetching would overlap the other cases
    alone = interleaved({"pipeline": partial(next, pipeline)}, 4 * rounds)["pipeline"]
    del pipeline
    specs = {
        "SimCLR": (SimCLRTrainer, {}),
        "HCL (beta 0.5, tau+ 0.1)": (HCLTrainer, dict(beta=0.5, tau_plus=0.1)),
        "MoCo v2 (K = 16 batches)": (MomentumContrastTrainer, {}),
        "MoCo v2 + MoCHi (N 64, s 32, s' 16)": (MomentumContrastTrainer,
                                                 dict(N=64, s=32, s_prime=16)),
    }
    cases: Dict[str, Callable[[], object]] = {}
    for i, (name, (cls, kw)) in enumerate(specs.items()):
        trainer = cls(os.path.join(logdir, str(i)), files, fcn=ResNetFCN(3),
                      imshape=(SIZE, SIZE), batch_size=BATCH, augment=True, seed=0, **kw)
        batches = iter(trainer._ds.repeat())
        cases[name] = (lambda t=trainer, b=batches:
                       t._train_step(*next(b))["loss"].numpy())
    t = {"input pipeline alone (decode + 2 augments)": alone, **interleaved(cases, rounds, 2)}
    base = BATCH / t["SimCLR"]
    print_table(
        f"Trainer throughput end to end on {os.cpu_count()} CPU cores, {SIZE}x{SIZE}, "
        f"batch {BATCH}, augment=True (images/s, each image gives two views; median of "
        f"{2 * rounds} steps, interleaved)",
        ["trainer", "images/s", "x SimCLR"],
        [(name, BATCH / sec, "" if name.startswith("input") else BATCH / sec / base)
         for name, sec in t.items()],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per case")
    parser.add_argument("--part", choices=["all", "p7", "rate"], default="all",
                        help="run only P7 or only the throughput table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = load_demo_dataset(os.path.join(tmp, "demo")).filepath.tolist()
        if args.part in ("all", "p7"):
            p7(files, os.path.join(tmp, "p7"), args.rounds)
        if args.part in ("all", "rate"):
            throughput(files, os.path.join(tmp, "rate"), args.rounds)


if __name__ == "__main__":
    main()
