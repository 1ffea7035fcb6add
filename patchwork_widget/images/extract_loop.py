"""The extraction loop both extractors share: one process (:mod:`.extract`) and the workers of a
Dask cluster (:mod:`.extract_cluster`).

Images are read with :func:`~patchwork_widget.images.batch.read_images` one chunk ahead of the
model, in a background thread; a bad file is listed with its row, never fatal.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from patchwork_widget.images.batch import BatchResult, read_images
from patchwork_widget.images.guard import ReadLimits
from patchwork_widget.images.read import ReadOptions


@dataclass(frozen=True, eq=False)
class Extraction:
    """What :func:`extract_features` returns.

    Attributes
    ----------
    features : np.ndarray, np.memmap or zarr.Array
        float32, shape ``(N,) + feature shape``, one row per input file (zeros for bad files);
        a Zarr array (opened read-only) for an extraction on a Dask cluster.
    errors : list of (str, str)
        ``(path, error message)`` for each unreadable file, in row order.
    failed : np.ndarray
        bool (N,): True for the rows of ``errors``.
    """

    features: np.ndarray
    errors: List[Tuple[str, str]]
    failed: np.ndarray


def files_hash(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def call_extractor(extractor: Any, x: np.ndarray) -> np.ndarray:
    predict = getattr(extractor, "predict_on_batch", None)
    out = predict(x) if predict is not None else extractor(x)
    return np.asarray(out, dtype=np.float32)


def feature_shape(extractor: Any, opts: ReadOptions) -> Tuple[int, ...]:
    """The shape of one row of ``extractor``'s features for images read with ``opts``."""
    h, w = opts.imshape
    return tuple(call_extractor(extractor, np.zeros((1, h, w, opts.num_channels), np.float32)).shape[1:])


def reader(paths: Sequence[str], opts: ReadOptions, limits: ReadLimits,
           num_workers: int) -> Callable[[np.ndarray], BatchResult]:
    """A function reading the images of some positions of ``paths`` (bad files listed)."""

    def read(rows: np.ndarray) -> BatchResult:
        return read_images([paths[r] for r in rows], opts.imshape, opts.num_channels,
                           opts.norm, opts.single_channel, num_workers=num_workers,
                           limits=limits)

    return read


def read_ahead(chunks: Iterable[np.ndarray], read: Callable[[np.ndarray], BatchResult]
               ) -> Iterator[Tuple[np.ndarray, BatchResult]]:
    """``(rows, images)`` for each of ``chunks`` in order, the next chunk read in a background
    thread while the caller runs the extractor on this one. The next chunk is taken from
    ``chunks`` only when this one's images are in, so an iterator may choose it late (the
    rows asked for meanwhile: ``extract_features(priority=...)``)."""
    chunks = iter(chunks)
    with ThreadPoolExecutor(1) as pool:
        rows = next(chunks, None)
        pending = pool.submit(read, rows) if rows is not None else None
        while rows is not None:
            batch = pending.result()
            following = next(chunks, None)
            pending = pool.submit(read, following) if following is not None else None
            yield rows, batch
            rows = following


def features_of(extractor: Any, rows: np.ndarray, batch: BatchResult
                ) -> Tuple[Optional[np.ndarray], List[Tuple[int, str, str]]]:
    """The features of the good images of ``batch`` (None when there are none) and
    ``(row, path, error)`` for each bad one; ``rows`` are the batch's row numbers."""
    feats = call_extractor(extractor, batch.arrays) if len(batch.arrays) else None
    # errors are in input order: they are the positions missing from good_index
    failed_pos = np.setdiff1d(np.arange(len(rows)), batch.good_index)
    bad = [(int(rows[i]), path, str(err)) for i, (path, err) in zip(failed_pos, batch.errors)]
    return feats, bad
