"""The child process of tests/unit/test_streaming_features.py: labels, trains, predicts and
samples on the same features three times, in memory (the reference), then from a memmap and
from a Zarr array under a data limit smaller than the feature array, and writes what each run
gave to an ``.npz`` file.

Why ``RLIMIT_DATA``, set late: importing TensorFlow maps 1.4 GB of address space (measured;
more once its runtime starts), so ``RLIMIT_AS`` below the array is out of reach, and a memmap's
mapping counts in it whole; ``RLIMIT_DATA`` counts the process's private
writable memory (heap, anonymous maps, thread stacks), which is what reading a feature array
whole would take, and not the read-only file mapping of a memmap (the page cache). The child
first does everything once (TensorFlow's runtime, Zarr's readers, a training thread), measures
its data size (``VmData``), then allows that plus ``--headroom`` bytes, less than the array:
copying the array then fails (checked), streaming does not.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
from pathlib import Path

import numpy as np

CLASSES = ["cat", "dog", "bird"]
ORDERS = [("random", None), ("max entropy", None), ("margin", None), ("highest", "dog"),
          ("maxent", "cat"), ("diversity", None), ("coreset", None), ("disagreement", None)]


def vm_data() -> int:
    """This process's data size (``VmData``, bytes), which ``RLIMIT_DATA`` limits."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


def open_session(features, outfile: Path, n: int):
    from patchwork_widget.labels import prep_label_dataframe
    from patchwork_widget.session import Session

    outfile.parent.mkdir(exist_ok=True)
    df = prep_label_dataframe([f"img{i:06d}.png" for i in range(n)], CLASSES)
    session = Session.open(df, outfile=outfile, features=features, seed=3)
    truth = np.load(outfile.parent.parent / "truth.npy")  # a class per row
    rows = np.random.default_rng(0).choice(n, 300, replace=False)
    for k, cls in enumerate(CLASSES):
        mine = rows[truth[rows] == k]
        session.annotate(mine.tolist(), {cls: 1, **{c: 0 for c in CLASSES if c != cls}})
    session.build_model()
    return session


def run(session) -> dict[str, np.ndarray]:
    """Train, predict, sample and find "more like this"; what came out."""
    from patchwork_widget.session import navigation

    session.train({"seed": 0}).result()
    out = {"predictions": session.predictions[CLASSES].to_numpy()}
    for name, cls in ORDERS:
        order = {"name": name, "cls": cls}
        subset = {"kind": "fully_labeled"} if name == "disagreement" else {"kind": "unlabeled"}
        out[f"sample {name}"] = np.asarray(session.sample(subset, order, 40))
    out["more like this"] = np.asarray(navigation.more_like_this(session, 5, 40))
    return out


def refusals(session) -> dict[str, str]:
    """The messages of what needs the features in memory."""
    said = {}
    for what, call in (("knn confidence", lambda: session.sample(order="knn confidence")),
                       ("graph", lambda: session.build_graph()),
                       ("badge", lambda: session.train(update_embeddings=True))):
        try:
            call()
        except ValueError as e:
            said[what] = str(e)
    return said


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--headroom", type=int, required=True)
    parser.add_argument("--chunk-bytes", type=int, required=True)
    args = parser.parse_args()
    import zarr

    from patchwork_widget.images import feature_rows
    from patchwork_widget.options import checks

    feature_rows.CHUNK_BYTES = args.chunk_bytes
    # what is read into memory where every row is needed at once: less than this test's array
    checks.IN_MEMORY_BYTES = args.chunk_bytes
    folder = args.folder
    results: dict[str, np.ndarray] = {}

    memory = np.load(folder / "features.npy")
    n = len(memory)
    session = open_session(memory, folder / "memory" / "labels.csv", n)
    results.update({f"memory {k}": v for k, v in run(session).items()})
    session.close()
    del session, memory
    gc.collect()

    memmap = np.load(folder / "features.npy", mmap_mode="r")
    stored = zarr.open_array(folder / "features.zarr", mode="r")
    sessions = {"memmap": open_session(memmap, folder / "memmap" / "labels.csv", n),
                "zarr": open_session(stored, folder / "zarr" / "labels.csv", n)}
    step = stored.chunks[0]  # Zarr's reader threads start before the limit: read many chunks
    np.asarray(stored.oindex[np.arange(0, n, step)[:64]])
    gc.collect()
    base = vm_data()
    limit = base + args.headroom
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.array(memmap)  # a copy of the whole array: must not fit
        copied = True
    except MemoryError:
        copied = False
    said = {}
    for kind in list(sessions):
        session = sessions.pop(kind)  # one at a time: what the first keeps goes with it
        results.update({f"{kind} {k}": v for k, v in run(session).items()})
        said[kind] = refusals(session)
        session.close()
        del session
        gc.collect()
    np.savez(folder / "results.npz", **results)
    (folder / "report.json").write_text(json.dumps(
        {"base": base, "limit": limit, "copied": copied, "refusals": said,
         "array_bytes": int(memmap.nbytes)}))


if __name__ == "__main__":
    sys.exit(main())
