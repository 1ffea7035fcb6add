"""Run a feature extractor over every image once (feature I5).

Images are read with :func:`~patchwork_widget.images.batch.read_images` in a background thread
(one batch ahead of the model), so a bad file is reported, not fatal: its row of features is
zero and it is listed in :attr:`Extraction.errors`. With ``memmap_path`` the features go to an
on-disk ``.npy`` (openable with ``np.load(path, mmap_mode="r")``) and progress is kept beside
it, so an interrupted run resumes where it stopped. With ``client`` (a Dask
``distributed.Client``) the work goes to the cluster's workers and the features to a Zarr array
(:mod:`~patchwork_widget.images.extract_cluster`); the reading loop here is shared by both.

Resume files next to ``memmap_path``:

- ``<path>.status.npy``: one int8 per row, 0 to do, 1 done, 2 unreadable; a row is marked only
  after its features have been flushed to disk;
- ``<path>.meta.json``: row count, feature shape and a hash of the file list, checked on resume;
- ``<path>.errors.jsonl``: one ``{"row", "path", "error"}`` line per unreadable file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, List, Mapping, Optional,
                    Sequence, Tuple, Union)

import numpy as np
from tqdm.auto import tqdm

from patchwork_widget.images.extract_loop import (
    Extraction,
    feature_shape,
    features_of,
    files_hash,
    read_ahead,
    reader,
)
from patchwork_widget.images.extractor import Extractor
from patchwork_widget.images.guard import ReadLimits, check_limits
from patchwork_widget.images.read import PathLike, check_options
from patchwork_widget.options.backbones import Backbone
from patchwork_widget.options.checks import (
    check_bool,
    check_int,
    check_path,
    check_paths,
    shown,
)

if TYPE_CHECKING:
    import distributed

logger = logging.getLogger(__name__)

TODO, DONE, FAILED = 0, 1, 2


class _Store:
    """Features, status and errors, in memory or in resumable files."""

    def __init__(self, n: int, shape: Tuple[int, ...], paths: List[str],
                 memmap_path: Optional[Path], resume: bool) -> None:
        self.path = memmap_path
        self.errors: dict = {}
        if memmap_path is None:
            self.features = np.zeros((n,) + shape, dtype=np.float32)
            self.status = np.zeros(n, dtype=np.int8)
            return
        meta = {"rows": n, "shape": list(shape), "files_sha256": files_hash(paths)}
        meta_path = Path(f"{memmap_path}.meta.json")
        status_path = Path(f"{memmap_path}.status.npy")
        errors_path = Path(f"{memmap_path}.errors.jsonl")
        if resume and meta_path.is_file() and status_path.is_file() and memmap_path.is_file():
            old = json.loads(meta_path.read_text())
            if old != meta:
                raise ValueError(
                    f"{memmap_path} holds an extraction of other files or another extractor "
                    f"(rows {old.get('rows')}, shape {old.get('shape')}); pass resume=False to "
                    "start over or choose another memmap_path"
                )
            self.features = np.load(memmap_path, mmap_mode="r+")
            self.status = np.load(status_path, mmap_mode="r+")
            if errors_path.is_file():
                for line in errors_path.read_text().splitlines():
                    if line.strip():
                        e = json.loads(line)
                        self.errors[int(e["row"])] = (e["path"], e["error"])
            logger.info("resuming extraction into %s: %d of %d rows done", memmap_path,
                        int((self.status != TODO).sum()), n)
        else:
            memmap_path.parent.mkdir(parents=True, exist_ok=True)
            self.features = np.lib.format.open_memmap(
                memmap_path, mode="w+", dtype=np.float32, shape=(n,) + shape
            )
            self.status = np.lib.format.open_memmap(status_path, mode="w+", dtype=np.int8,
                                                    shape=(n,))
            errors_path.unlink(missing_ok=True)
            meta_path.write_text(json.dumps(meta))
        self._errors_file = open(errors_path, "a", encoding="utf-8")

    def write(self, rows: np.ndarray, feats: Optional[np.ndarray], good: np.ndarray,
              errors: List[Tuple[int, str, str]]) -> None:
        if feats is not None and len(good):
            self.features[rows[good]] = feats
        for row, path, msg in errors:
            self.features[row] = 0.0
            self.errors[row] = (path, msg)
        if self.path is not None:
            self.features.flush()
            for row, path, msg in errors:
                self._errors_file.write(json.dumps({"row": int(row), "path": path,
                                                    "error": msg}) + "\n")
            self._errors_file.flush()
        self.status[rows[good]] = DONE
        self.status[[r for r, _, _ in errors]] = FAILED
        if self.path is not None:
            self.status.flush()

    def close(self) -> None:
        if self.path is not None:
            self._errors_file.close()


class _Chunks:
    """The batches of rows to extract, in order, except that rows ``priority()`` names go
    first (asked before every batch)."""

    def __init__(self, todo: np.ndarray, scheduled: np.ndarray, size: int,
                 priority: Optional[Callable[[], Sequence[int]]]) -> None:
        self._todo, self._scheduled = todo, np.array(scheduled, dtype=bool)
        self._size, self._priority, self._next = size, priority, 0

    def __iter__(self) -> "_Chunks":
        return self

    def __next__(self) -> np.ndarray:
        rows: List[int] = []
        if self._priority is not None:
            for row in self._priority():
                row = int(row)
                if 0 <= row < len(self._scheduled) and not self._scheduled[row]:
                    rows.append(row)
                    self._scheduled[row] = True
                    if len(rows) == self._size:
                        break
        while len(rows) < self._size and self._next < len(self._todo):
            row = int(self._todo[self._next])
            self._next += 1
            if not self._scheduled[row]:
                rows.append(row)
                self._scheduled[row] = True
        if not rows:
            raise StopIteration
        return np.asarray(rows, dtype=np.int64)


def extract_features(
    files: Sequence[PathLike],
    extractor: Union[Any, Callable[[np.ndarray], Any]],
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    batch_size: int = 64,
    memmap_path: Optional[PathLike] = None,
    resume: bool = True,
    num_workers: int = 2,
    progress: bool = True,
    limits: Optional[ReadLimits] = None,
    on_batch: Optional[Callable[[np.ndarray], None]] = None,
    priority: Optional[Callable[[], Sequence[int]]] = None,
    client: Optional["distributed.Client"] = None,
    zarr_path: Optional[PathLike] = None,
    chunk_rows: Optional[int] = None,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> Extraction:
    """Compute ``extractor`` features of every file, in order.

    Parameters
    ----------
    files : sequence of paths
        Images, one per output row.
    extractor : str, Backbone, path, Extractor, keras.Model or callable
        A pretrained backbone by name (``"mobilenet_v3_small"``, ...; see
        :data:`~patchwork_widget.options.backbones.BACKBONES`), a
        :class:`~patchwork_widget.options.backbones.Backbone` (to choose its weights or image
        size), the path of a ``.keras`` model, an
        :class:`~patchwork_widget.images.feature_cache.Extractor`, or a model / callable
        mapping a float32 batch ``(n, h, w, num_channels)`` in [0, 1] to features
        ``(n, ...)`` (``predict_on_batch`` is used when it exists). Names and paths are
        resolved by :func:`~patchwork_widget.images.backbones.resolve_extractor`.
    imshape : (int, int), optional
        Size images are resized to; default the named extractor's own size (the backbone's
        input size, the ``.keras`` model's input), else 256 x 256.
    num_channels, norm, single_channel
        Reading options of :func:`~patchwork_widget.images.read.read_image`.
    batch_size : int
        Images per extractor call.
    memmap_path : path, optional
        Write features to this ``.npy`` file (memory-mapped) instead of memory.
    resume : bool
        With ``memmap_path``: continue a run over the same files (rows already done are
        skipped). False starts over.
    num_workers : int
        Threads decoding images.
    progress : bool
        Show a tqdm progress bar.
    limits : ReadLimits, optional
        Largest file and image read (see :func:`~patchwork_widget.images.read.read_array`);
        larger files are listed in ``errors``.
    on_batch : callable, optional
        Called with the rows (positions in ``files``) of each batch once their features are
        written (with ``memmap_path``: flushed to disk, so another process may read them).
    priority : callable, optional
        Asked before each batch is read: rows (positions in ``files``) to extract before the
        others, e.g. the images a user is labeling meanwhile; rows done already are skipped.
    client : distributed.Client, optional
        Run on this Dask cluster instead: chunks of ``chunk_rows`` files go to the workers,
        which write their rows into the Zarr array ``zarr_path`` (see
        :mod:`~patchwork_widget.images.extract_cluster`). ``extractor`` must then be
        something a worker can load: a backbone name or :class:`Backbone` with ImageNet
        weights, or the path of a ``.keras`` model.
    zarr_path : path or fsspec URL, optional
        With ``client`` (and only then; required): the Zarr array to write, e.g.
        ``"features.zarr"`` or ``"s3://bucket/features.zarr"``. ``resume`` skips the chunks
        an earlier run finished.
    chunk_rows : int, optional
        With ``client``: rows per task and per Zarr chunk (default 512).
    storage_options : mapping, optional
        With ``client``: fsspec options of ``zarr_path`` (endpoint, credentials, ...).
        Image URLs are read with the process's storage options
        (:func:`~patchwork_widget.images.storage.configure_storage`, a project's
        ``storage_options``), which go to the workers with each task.

    Returns
    -------
    Extraction
        Features (array, memmap or, with ``client``, the Zarr array), ``(path, error)`` for
        unreadable files and their mask.

    Raises
    ------
    ValueError
        For invalid options, or a ``memmap_path`` or ``zarr_path`` holding another extraction
        when resuming.
    """
    if client is not None or zarr_path is not None:
        if client is None:
            raise ValueError(f"zarr_path={os.fspath(zarr_path)!r} is written by the workers "
                             "of a Dask cluster: pass client (a distributed.Client) too, or "
                             "memmap_path for an extraction in this process")
        if memmap_path is not None:
            raise ValueError("memmap_path is for an extraction in this process; with client "
                             "the features go to zarr_path")
        from patchwork_widget.images.extract_cluster import extract_on_cluster

        return extract_on_cluster(
            check_paths("files", files), extractor, client,
            check_path("zarr_path", zarr_path), imshape=imshape,
            num_channels=num_channels, norm=norm, single_channel=single_channel,
            batch_size=check_int("batch_size", batch_size, 1),
            chunk_rows=check_int("chunk_rows", 512 if chunk_rows is None else chunk_rows, 1),
            resume=check_bool("resume", resume),
            num_workers=check_int("num_workers", num_workers, 1),
            progress=check_bool("progress", progress), limits=check_limits(limits),
            storage_options=storage_options)
    for name, value in (("chunk_rows", chunk_rows), ("storage_options", storage_options)):
        if value is not None:
            raise ValueError(f"{name}={shown(value)} applies to an extraction on a Dask cluster "
                             "(with client and zarr_path) only")
    if isinstance(extractor, (str, os.PathLike, Backbone, Extractor)):
        from patchwork_widget.images.backbones import resolve_extractor

        resolved = resolve_extractor(extractor, "extractor")
        extractor = resolved.model
        imshape = resolved.image_size if imshape is None else imshape
    opts = check_options((256, 256) if imshape is None else imshape, num_channels, norm,
                         single_channel)
    limits = check_limits(limits)
    check_int("batch_size", batch_size, 1)
    check_bool("resume", resume)
    check_bool("progress", progress)
    check_path("memmap_path", memmap_path, allow_none=True)
    if on_batch is not None and not callable(on_batch):
        raise TypeError(f"on_batch must be a callable taking the rows of a batch, or None; "
                        f"got {shown(on_batch)}")
    if priority is not None and not callable(priority):
        raise TypeError(f"priority must be a callable returning rows to extract first, or "
                        f"None; got {shown(priority)}")
    if not callable(extractor):
        raise TypeError(f"extractor must be a Keras model or a callable mapping an image batch "
                        f"to features; got {shown(extractor)}")
    paths = check_paths("files", files)
    n = len(paths)
    shape = feature_shape(extractor, opts)
    store = _Store(n, shape, paths, Path(memmap_path) if memmap_path is not None else None,
                   resume)
    todo = np.flatnonzero(store.status == TODO)
    chunks = _Chunks(todo, store.status != TODO, batch_size, priority)

    read = reader(paths, opts, limits, num_workers)
    bar = tqdm(total=n, initial=n - len(todo), desc="extracting features", unit="img",
               disable=not progress)
    try:
        for rows, batch in read_ahead(chunks, read):
            feats, bad = features_of(extractor, rows, batch)
            store.write(rows, feats, batch.good_index, bad)
            bar.update(len(rows))
            if on_batch is not None:
                on_batch(rows)
    finally:
        bar.close()
        store.close()
    failed = store.status == FAILED
    errors = [store.errors[r] for r in sorted(store.errors)]
    if errors:
        logger.warning("%d of %d images could not be read; first: %s: %s",
                       len(errors), n, *errors[0])
    return Extraction(store.features, errors, np.asarray(failed))
