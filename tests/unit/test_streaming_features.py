"""Features that do not fit in memory: a memmap and a Zarr array larger than the memory the
process may take train, predict and sample, and give what the same features in memory give
(tests/unit/streaming_child.py runs it all in a child process under ``RLIMIT_DATA``; its
docstring says why that limit and how it is measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

ROWS, DIM = 40_000, 512  # 82 MB of float32 features
CHUNK_BYTES = 1 << 20  # 512 rows a chunk
HEADROOM = 60 << 20  # the memory allowed on top of the child's measured baseline
CHILD = Path(__file__).with_name("streaming_child.py")


def _write_features(folder: Path) -> None:
    """Three clusters of rows (one per class) in 512 dimensions, as .npy and as Zarr."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, ROWS)
    centres = rng.normal(size=(3, DIM)).astype(np.float32)
    x = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32,
                                  shape=(ROWS, DIM))
    stored = zarr.create_array(store=folder / "features.zarr", shape=(ROWS, DIM),
                               chunks=(1000, DIM), dtype="float32")
    for start in range(0, ROWS, 10_000):
        stop = start + 10_000
        block = centres[truth[start:stop]] + 1.5 * rng.normal(size=(stop - start, DIM))
        x[start:stop] = block
        stored[start:stop] = block.astype(np.float32)
    x.flush()
    np.save(folder / "truth.npy", truth)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("streaming")
    _write_features(folder)
    # glibc keeps freed heap memory, raising its mmap threshold as large blocks are freed;
    # a fixed threshold returns every block over 128 KB to the system when freed, so the data
    # size measures the memory in use, not what glibc kept (and few arenas, few threads)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_ARENA_MAX="2",
               TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(CHILD), str(folder), "--headroom", str(HEADROOM),
                           "--chunk-bytes", str(CHUNK_BYTES)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((folder / "report.json").read_text())
    with np.load(folder / "results.npz") as results:
        return dict(results), report


def test_the_limit_is_lower_than_the_array(streamed):
    _, report = streamed
    assert report["limit"] - report["base"] < report["array_bytes"]
    assert not report["copied"]  # a copy of the array fails under the limit


@pytest.mark.parametrize("kind", ["memmap", "zarr"])
def test_streaming_trains_predicts_and_samples_as_in_memory(streamed, kind):
    results, _ = streamed
    reference = {k.removeprefix("memory "): v for k, v in results.items()
                 if k.startswith("memory ")}
    assert np.isfinite(reference["predictions"]).all()
    # the same numbers within float32 rounding (BLAS may sum a block in another order)
    np.testing.assert_allclose(results[f"{kind} predictions"], reference.pop("predictions"),
                               rtol=1e-5, atol=1e-6)
    for name, value in reference.items():  # the same rows, in the same order
        np.testing.assert_array_equal(results[f"{kind} {name}"], value, err_msg=name)


@pytest.mark.parametrize("kind", ["memmap", "zarr"])
def test_what_needs_the_features_in_memory_says_so(streamed, kind):
    said = streamed[1]["refusals"][kind]
    assert "order 'knn confidence' cannot run here" in said["knn confidence"]
    assert "read from storage" in said["knn confidence"]
    assert "a kNN search holds every row in memory" in said["graph"]
    assert "the 'badge' order is not available" in said["badge"]
