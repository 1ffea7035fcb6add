"""P7 and trainer throughput: the cost of the self-supervised trainers on this machine.

1. P7: one SimCLR train step (64 images of 64x64, so 128 augmented views) against a bare Keras
   ``train_on_batch`` of the same network (fcn + projection head) on the same 128 views with an
   MSE loss; same optimizer (Adam), no XLA. Goal: ratio <= 1.3.
2. Images per second for every trainer (``--part rate``), end to end over the demo images
   (decode, augmentations, segmentation or rectangles, train step), batch 64 at 64x64, against a
   bare Keras ``train_on_batch`` of ResNetFCN + projection head on 64 (and 128) images in
   memory, all in the same process and timed round-robin. Contrastive trainers and DetCon put
   two views of each image through the network, the others one.
3. DetCon's input pipeline (``--part pipeline``) with Felzenszwalb segmentation, with a grid
   instead, and the plain two-view pipeline, plus DetCon's step fed by its pipeline against
   the same step on one batch already in memory (equal when the segmentation does not stall
   the step). ``--part part2`` runs the part-two trainers' rates (with SimCLR) and this.
4. E3 (``--part e3``, not in ``all``): linear-probe accuracy on 600 single-label demo patches
   after two epochs of each trainer, against the same network at its random initialisation
   (32x32, batch 64, ResNetFCN 16-32-64, seed 0; the multitask trainer learns the demo's class
   columns on the other patches).

Usage: python benchmarks/bench_ssl.py [--rounds N] [--part all|p7|rate|pipeline|part2|e3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _table import print_table

from patchwork_widget.datasets import demo_classes, load_demo_dataset
from patchwork_widget.feature import (
    ContextEncoderTrainer,
    DeepClusterTrainer,
    DetConTrainer,
    HCLTrainer,
    MomentumContrastTrainer,
    MultiTaskTrainer,
    ResNetFCN,
    SimCLRTrainer,
)
from patchwork_widget.feature.data import pair_dataset
from patchwork_widget.feature.segments import detcon_dataset
from patchwork_widget.images.augment import validate_augment
from patchwork_widget.models.networks import projection_head

SIZE, BATCH = 64, 64


def interleaved(cases: dict[str, Callable[[], object]], rounds: int, block: int = 1,
                warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each case, timed round-robin (``block`` calls of a case at
    a time) so that load from other jobs on a shared machine hits every case alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
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


def _keras_baseline(views: int) -> Callable[[], object]:
    """A bare Keras ``train_on_batch`` (Adam, MSE, no XLA) of a fresh ResNetFCN with SimCLR's
    projection head on ``views`` random 64x64 images already in memory."""
    rng = np.random.default_rng(views)
    x = tf.constant(rng.random((views, SIZE, SIZE, 3), np.float32))
    y = tf.constant(rng.standard_normal((views, 64)), tf.float32)
    inp = keras.Input((None, None, 3))
    fcn = ResNetFCN(3)
    model = keras.Model(inp, projection_head(fcn.outputs[0].shape[-1])(fcn(inp)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)
    return lambda: model.train_on_batch(x, y)


# trainer name -> (class, views of each image through the network per step, method options)
TRAINERS: dict[str, tuple] = {
    "SimCLR": (SimCLRTrainer, 2, {}),
    "HCL (beta 0.5, tau+ 0.1)": (HCLTrainer, 2, {"beta": 0.5, "tau_plus": 0.1}),
    "MoCo v2 (K = 16 batches)": (MomentumContrastTrainer, 2, {}),
    "MoCo v2 + MoCHi (N 64, s 32, s' 16)": (MomentumContrastTrainer, 2,
                                             {"N": 64, "s": 32, "s_prime": 16}),
    "DetCon (16 segments, mean_scale 100)": (DetConTrainer, 2,
                                             {"mean_scale": 100, "num_samples": 16}),
    "DeepCluster (k 50, pca_dim 64)": (DeepClusterTrainer, 1, {"k": 50, "pca_dim": 64,
                                                                   "dense": [256]}),
    "context encoder (adv_weight 0.001)": (ContextEncoderTrainer, 1, {"adv_weight": 0.001}),
    "multitask (3 tasks, adaptive)": (MultiTaskTrainer, 1, {"shared_layers": "64,p"}),
}
PART_TWO = ("SimCLR", "DetCon (16 segments, mean_scale 100)", "DeepCluster (k 50, pca_dim 64)",
            "context encoder (adv_weight 0.001)", "multitask (3 tasks, adaptive)")


def rates(files: list, table, logdir: str, rounds: int, names) -> None:
    """Images/s of each trainer end to end (its input pipeline, then its train step) against
    a bare Keras step of the same network on images in memory, timed round-robin."""
    cases: dict[str, Callable[[], object]] = {
        "Keras train_on_batch, 64 images (baseline)": _keras_baseline(BATCH),
        "Keras train_on_batch, 128 images": _keras_baseline(2 * BATCH),
    }
    views = {name: 1 for name in cases}
    views["Keras train_on_batch, 128 images"] = 2
    for i, name in enumerate(names):
        cls, views[name], kw = TRAINERS[name]
        data = (files, table) if cls is MultiTaskTrainer else (files,)
        trainer = cls(os.path.join(logdir, str(i)), *data, fcn=ResNetFCN(3),
                      imshape=(SIZE, SIZE), batch_size=BATCH, augment=True, seed=0, **kw)
        trainer._before_epoch(0)        # DeepCluster clusters, multitask draws its epoch
        batches = iter(trainer._ds.repeat())
        cases[name] = (lambda t=trainer, b=batches: t._train_step(*next(b))["loss"].numpy())
    t = interleaved(cases, rounds, 2)
    base = BATCH / t["Keras train_on_batch, 64 images (baseline)"]
    print_table(
        f"Trainers end to end on {os.cpu_count()} CPU cores, {SIZE}x{SIZE}, batch {BATCH}, "
        f"augment=True, ResNetFCN (images/s; median of {2 * rounds} steps, interleaved) "
        "against a bare Keras step of ResNetFCN + projection head on images in memory",
        ["trainer", "views per image", "images/s", "x Keras (64 images)"],
        [(name, views[name], BATCH / sec, BATCH / sec / base) for name, sec in t.items()],
    )


def detcon_pipeline(files: list, logdir: str, rounds: int) -> None:
    """DetCon's input pipeline with Felzenszwalb segments, with a grid instead, and the plain
    two-view pipeline; then DetCon's step fed by its pipeline against the same step on one
    batch already in memory (equal when the segmentation does not stall the step)."""
    aug = validate_augment(True)
    pipes = {
        "two views, no segments": pair_dataset(files, aug, imshape=(SIZE, SIZE),
                                               batch_size=BATCH)[0],
        "DetCon, grid (mean_scale=0)": detcon_dataset(files, aug, 0, 16, imshape=(SIZE, SIZE),
                                                      batch_size=BATCH)[0],
        "DetCon, Felzenszwalb (mean_scale=100)": detcon_dataset(
            files, aug, 100, 16, imshape=(SIZE, SIZE), batch_size=BATCH)[0],
    }
    # each alone, back to back: interleaved, their prefetching would overlap one another
    pipe_t = {name: interleaved({name: partial(next, iter(ds.repeat()))}, 4 * rounds)[name]
              for name, ds in pipes.items()}
    plain = pipe_t["two views, no segments"]
    print_table(
        f"DetCon input pipeline on {os.cpu_count()} CPU cores, {SIZE}x{SIZE}, batch {BATCH}, "
        f"16 segments per image, augment=True (images/s, median of {4 * rounds} batches)",
        ["pipeline", "images/s", "x no segments"],
        [(name, BATCH / sec, plain / sec) for name, sec in pipe_t.items()])

    detcon = DetConTrainer(os.path.join(logdir, "detcon"), files, fcn=ResNetFCN(3),
                           imshape=(SIZE, SIZE), batch_size=BATCH, augment=True, seed=0,
                           mean_scale=100, num_samples=16)
    batches = iter(detcon._ds.repeat())
    fixed = next(iter(detcon._ds))
    t = interleaved({
        "DetCon step on one batch in memory": lambda: detcon._train_step(*fixed)["loss"].numpy(),
        "DetCon step fed by its pipeline": lambda: detcon._train_step(*next(batches))[
            "loss"].numpy(),
    }, rounds, 2)
    base = t["DetCon step on one batch in memory"]
    print_table(
        f"Does segmentation stall DetCon's step? (images/s, median of {2 * rounds} steps, "
        "interleaved; 1.0 = no stall)",
        ["step", "images/s", "x in memory"],
        [(name, BATCH / sec, base / sec) for name, sec in t.items()])


E3_AUGMENT = {"flip_left_right": True, "flip_up_down": True, "rot90": True, "zoom_scale": 0.3,
              "jitter": 1.0, "drop_color": 0.2, "gaussian_blur": 0.3}


def e3(df, logdir: str) -> None:
    """Linear-probe accuracy before and after two epochs of every trainer."""
    classes = demo_classes()
    single = df[df[classes].sum(axis=1) == 1].iloc[:600]
    labels = {f: classes[int(np.argmax(r))] for f, r in zip(single.filepath,
                                                            single[classes].values)}
    files = df.filepath.tolist()
    others = df[~df.filepath.isin(labels)]
    common = {"augment": E3_AUGMENT, "imshape": (32, 32), "batch_size": 64, "lr": 3e-3,
                  "downstream_labels": labels, "seed": 0}
    specs = {
        "SimCLR": (SimCLRTrainer, (files,), {"temperature": 0.2}),
        "HCL": (HCLTrainer, (files,), {"temperature": 0.2, "beta": 0.5, "tau_plus": 0.1}),
        "MoCo v2": (MomentumContrastTrainer, (files,), {"tau": 0.2, "alpha": 0.99,
                                                            "batches_in_buffer": 4}),
        "DetCon-S": (DetConTrainer, (files,), {"temperature": 0.2, "mean_scale": 50,
                                                   "num_samples": 4}),
        "DeepCluster": (DeepClusterTrainer, (files,), {"k": 50, "pca_dim": 32, "dense": [256]}),
        "context encoder": (ContextEncoderTrainer, (files,), {"adv_weight": 0.001}),
        "multitask (supervised, other patches)": (
            MultiTaskTrainer, (others.filepath.tolist(), others[classes]), {}),
    }
    rows = []
    for i, (name, (cls, data, kw)) in enumerate(specs.items()):
        keras.utils.set_random_seed(0)     # the same initial network for every trainer
        trainer = cls(os.path.join(logdir, str(i)), *data,
                      fcn=ResNetFCN(3, filters=(16, 32, 64)), **common, **kw)
        before = trainer.evaluate()["linear_classification_accuracy"]
        start = time.perf_counter()
        after = trainer.fit(2, save=False, progress=False)["linear_classification_accuracy"]
        rows.append((name, before, after, after - before, time.perf_counter() - start))
    print_table("E3: linear probe on 600 single-label demo patches (11 classes, one third "
                "held out), two epochs, 32x32, batch 64, ResNetFCN 16-32-64, seed 0",
                ["trainer", "random init", "after 2 epochs", "gain", "seconds"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per case")
    parser.add_argument("--part", choices=["all", "p7", "rate", "pipeline", "part2", "e3"],
                        default="all",
                        help="run only P7, every trainer's images/s, DetCon's input pipeline, "
                        "the part-two trainers with DetCon's pipeline, or the E3 linear-probe "
                        "table (not part of all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        df = load_demo_dataset(os.path.join(tmp, "demo"))
        files = df.filepath.tolist()
        if args.part in ("all", "p7"):
            p7(files, os.path.join(tmp, "p7"), args.rounds)
        table = df[demo_classes()[:3]].astype(object)
        table.iloc[::3, 0] = None           # some labels missing, as in a real table
        if args.part in ("all", "rate", "part2"):
            names = list(TRAINERS) if args.part != "part2" else list(PART_TWO)
            rates(files, table, os.path.join(tmp, "rate"), args.rounds, names)
        if args.part in ("all", "pipeline", "part2"):
            detcon_pipeline(files, os.path.join(tmp, "pipeline"), args.rounds)
        if args.part == "e3":
            e3(df, os.path.join(tmp, "e3"))


if __name__ == "__main__":
    main()
