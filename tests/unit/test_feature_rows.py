"""images/feature_rows.py: the one reader of feature arrays, in memory, memmap or Zarr."""

from __future__ import annotations

import numpy as np
import pytest

from patchwork_widget.images import feature_rows
from patchwork_widget.images.feature_rows import chunk_rows, chunks, map_chunks, take_rows
from patchwork_widget.options.checks import check_features, is_out_of_core

zarr = pytest.importorskip("zarr")


@pytest.fixture
def arrays(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 6)).astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32,
                                   shape=x.shape)
    mm[:] = x
    stored = zarr.create_array(store=tmp_path / "f.zarr", shape=x.shape, chunks=(64, 6),
                               dtype="float32")
    stored[:] = x
    return x, {"memory": x, "memmap": np.load(tmp_path / "f.npy", mmap_mode="r"),
               "zarr": zarr.open_array(tmp_path / "f.zarr", mode="r")}


def test_what_is_out_of_core(arrays):
    _, given = arrays
    assert [is_out_of_core(v) for v in given.values()] == [False, True, True]
    assert not is_out_of_core([[1.0, 2.0]]) and not is_out_of_core(None)


@pytest.mark.parametrize("kind", ["memory", "memmap", "zarr"])
def test_chunks_cover_every_row_once_in_order(arrays, kind, monkeypatch):
    x, given = arrays
    monkeypatch.setattr(feature_rows, "CHUNK_BYTES", 100 * 6 * 4)  # 100 rows
    blocks = list(chunks(given[kind]))
    step = 64 if kind == "zarr" else 100  # whole stored chunks of 64 rows: 64 (100 // 64 * 64)
    assert [start for start, _ in blocks] == list(range(0, 1000, step))
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), x)
    assert all(type(b) is np.ndarray and b.dtype == np.float32 for _, b in blocks)
    np.testing.assert_array_equal(map_chunks(lambda b: b.sum(axis=1), given[kind]), x.sum(axis=1))


def test_chunk_rows_follows_the_budget_and_the_stored_chunks(arrays):
    _, given = arrays
    assert chunk_rows(given["memory"], 24 * 10) == 10
    assert chunk_rows(given["memory"], 1) == 1  # at least one row
    assert chunk_rows(given["zarr"], 24 * 10) == 64  # at least one stored chunk
    assert chunk_rows(given["zarr"], 24 * 200) == 192  # whole stored chunks
    with pytest.raises(ValueError, match="chunk_bytes must be a positive integer; got 0"):
        chunk_rows(given["memory"], 0)


def test_feature_maps_are_pooled_per_chunk():
    maps = np.random.default_rng(1).normal(size=(30, 2, 3, 4)).astype(np.float32)
    pooled = map_chunks(lambda b: b, maps, 7, pooled=True)
    np.testing.assert_allclose(pooled, maps.reshape(30, 6, 4).mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize("kind", ["memory", "memmap", "zarr"])
def test_take_rows_in_any_order_with_repeats(arrays, kind):
    x, given = arrays
    rows = np.array([999, 3, 3, 500, 0, 64, 63])
    got = take_rows(given[kind], rows)
    assert got.dtype == np.float32 and type(got) is np.ndarray
    np.testing.assert_array_equal(got, x[rows])
    assert take_rows(given[kind], np.array([], dtype=int)).shape == (0, 6)


def test_check_features_reads_no_out_of_core_array(arrays):
    _, given = arrays
    assert check_features("features", given["zarr"], rows=1000) is given["zarr"]
    assert check_features("features", given["memmap"], rows=1000) is given["memmap"]
    with pytest.raises(ValueError, match="features must have 10 rows; got 1000"):
        check_features("features", given["zarr"], rows=10)
    with pytest.raises(ValueError, match=r"features must be a 4-d array; got shape \(1000, 6\)"):
        check_features("features", given["zarr"], 4)
    with pytest.raises(ValueError, match="features must be finite; got 1 NaN"):
        check_features("features", np.array([[np.nan, 1.0]]))


def test_a_small_stored_array_is_read_into_memory_where_every_row_is_needed(arrays, monkeypatch):
    """A memmap or Zarr array within IN_MEMORY_BYTES serves the kNN graph as an in-memory one
    does; past it, the kNN search refuses it by name."""
    from patchwork_widget.active.neighbors import find_neighbors
    from patchwork_widget.options import checks

    _, given = arrays
    reference = find_neighbors(given["memory"], k=3)
    for kind in ("memmap", "zarr"):
        assert checks.too_large_for_memory(given[kind]) is False
        found = find_neighbors(given[kind], k=3)
        np.testing.assert_array_equal(found.indices, reference.indices)
    monkeypatch.setattr(checks, "IN_MEMORY_BYTES", given["memmap"].nbytes // 2)
    assert checks.too_large_for_memory(given["memory"]) is False  # in memory already
    for kind in ("memmap", "zarr"):
        assert checks.too_large_for_memory(given[kind]) is True
        with pytest.raises(ValueError, match="IN_MEMORY_BYTES"):
            find_neighbors(given[kind], k=3)
