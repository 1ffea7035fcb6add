"""The rows of a feature array, in chunks: the one reader of pre-extracted features.

Features are an N x d (or N x h x w x c) array: in memory (``np.ndarray``), or out of core, a
NumPy memmap or a Zarr array (any array-like with ``shape``, ``dtype`` and row slicing counts
as out of core), so that a project whose features do not fit in memory is labeled, trained,
predicted and sampled all the same. Prediction, the diversity orders' projection, "more like
this" and the online round worker's copy read every row through :func:`chunks` (or
:func:`map_chunks`), one chunk of about :data:`CHUNK_BYTES` at a time, so their memory is a
small multiple of one chunk plus their outputs (a few numbers per row); training reads only the
rows it uses through :func:`take_rows`. An in-memory array goes through the same chunks, so its
results equal an out-of-core array's (products within float32 rounding: BLAS may sum a block
at another address in another order).

What needs every row in memory at once (a kNN index, BADGE embeddings of a whole array) asks
:func:`~patchwork_widget.options.checks.is_out_of_core` and refuses with its own message;
:func:`~patchwork_widget.options.checks.check_features` checks a feature array without reading
an out-of-core one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from patchwork_widget.options.checks import is_out_of_core, shown

CHUNK_BYTES = 32 << 20  # bytes of float32 rows read at a time (8,192 rows of 1,024 floats)


def chunk_rows(features: Any, chunk_bytes: int | None = None) -> int:
    """Rows per chunk: as many float32 rows as fit in ``chunk_bytes`` (default
    :data:`CHUNK_BYTES`), at least one, and for an array stored in chunks (Zarr) a whole
    number of its stored row chunks, so that no stored chunk is read twice."""
    budget = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"chunk_bytes must be a positive integer; got {shown(budget)}")
    row_bytes = 4 * max(1, math.prod(int(s) for s in features.shape[1:]))
    rows = max(1, int(budget) // row_bytes)
    stored = getattr(features, "chunks", None)
    if not isinstance(features, np.ndarray) and isinstance(stored, tuple) and stored:
        step = max(1, int(stored[0]))
        rows = max(step, rows // step * step)
    return rows


def chunks(features: Any, rows: int | None = None, *, pooled: bool = False,
           dtype: Any = np.float32) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` for consecutive blocks of ``rows`` rows (default :func:`chunk_rows`),
    each an in-memory ``dtype`` array (``None``: the stored dtype); with ``pooled``, feature
    maps (N x h x w x c) are average-pooled to N x c."""
    n = int(features.shape[0])
    step = chunk_rows(features) if rows is None else int(rows)
    if step < 1:
        raise ValueError(f"rows must be a positive integer; got {rows!r}")
    for start in range(0, n, step):
        block = np.asarray(features[start:start + step], dtype=dtype)
        if pooled and block.ndim > 2:
            block = block.reshape(len(block), -1, block.shape[-1]).mean(axis=1, dtype=np.float32)
        yield start, block


def map_chunks(fn: Callable[[np.ndarray], np.ndarray], features: Any, rows: int | None = None,
               *, pooled: bool = False, dtype: Any = np.float32) -> np.ndarray:
    """``fn`` applied to every block of :func:`chunks`, its outputs (one row per input row)
    written into one array allocated from the first block's output; only that array and one
    block are held at a time."""
    n = int(features.shape[0])
    out: np.ndarray | None = None
    for start, block in chunks(features, rows, pooled=pooled, dtype=dtype):
        result = np.asarray(fn(block))
        if len(result) != len(block):
            raise ValueError(f"a chunk function must return one row per row; got {len(result)} "
                             f"for {len(block)}")
        if out is None:
            out = np.empty((n,) + result.shape[1:], dtype=result.dtype)
        out[start:start + len(block)] = result
    if out is None:
        probe = np.asarray(fn(np.zeros((0,) + tuple(features.shape[1:]), dtype=dtype)))
        out = np.empty((0,) + probe.shape[1:], dtype=probe.dtype)
    return out


def take_rows(features: Any, rows: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The rows ``rows`` (integer positions, any order, repeats allowed) as an in-memory
    ``dtype`` array. Reads only those rows: a memmap by fancy indexing (the pages holding
    them), a Zarr array by orthogonal selection (the stored chunks holding them), another
    array-like by its own indexing with increasing, distinct row numbers."""
    rows = np.asarray(rows, dtype=np.intp).reshape(-1)
    if not is_out_of_core(features) or isinstance(features, np.memmap):
        return np.asarray(features[rows], dtype=dtype)
    wanted, inverse = np.unique(rows, return_inverse=True)
    if not len(wanted):
        return np.zeros((0,) + tuple(features.shape[1:]), dtype=dtype)
    # Zarr: an orthogonal selection, one read per stored chunk touched; others (h5py, Dask)
    # index by increasing, distinct row numbers
    got = features.oindex[wanted] if hasattr(features, "oindex") else features[wanted]
    return np.asarray(got, dtype=dtype)[inverse]
