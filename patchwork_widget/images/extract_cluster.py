"""Feature extraction on a Dask distributed cluster into a chunked Zarr array (I5, B6).

:func:`~patchwork_widget.images.extract.extract_features` with ``client=`` comes here. The file
list is cut into chunks of ``chunk_rows`` rows, one Dask task each; a task reads its images,
runs the extractor and writes its rows, one Zarr chunk, into the array at ``zarr_path`` (a local
folder or an fsspec URL such as ``s3://bucket/features.zarr``). Scheduling, retries after a lost
worker and load balancing are Dask's.

The extractor travels as a worker plugin (:class:`ExtractorPlugin`): a backbone's name (each
worker builds it, ImageNet weights from its own Keras cache) or a ``.keras`` file's bytes (no
shared file system needed). A worker loads it once, at its first task, and keeps it.

Layout of ``zarr_path``:

- the Zarr array itself: float32, shape ``(N,) + feature shape``, chunks of ``chunk_rows``
  rows, zeros for unreadable images; its attribute ``patchwork_extraction`` holds what a
  resume must match (row count, feature shape, a hash of the file list, the extractor's
  identity, the reading options, ``chunk_rows``);
- ``extraction/done/<chunk>.<attempt>.json``: one completion record per finished chunk
  (its rows and its unreadable images), written after the chunk's features. A record counts
  only when it parses as a whole, so a chunk whose worker died while writing its features or
  its record has no record and is computed again. A task first looks for its chunk's record
  and returns it without computing when one exists: a retry of a task whose outcome was lost
  with its worker writes nothing twice;
- ``extraction/errors.jsonl``: ``{"row", "path", "error"}`` per unreadable image, written by
  the client when every chunk is done.

A rerun with the same arguments (``resume=True``) submits only the chunks that have no record,
whichever process died before (a worker, the client, the scheduler). Its tasks are named
``patchwork-extract-<chunk>-<run>`` (so they can be told apart on Dask's dashboard).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import fsspec
import numpy as np
import zarr
from distributed import Client, WorkerPlugin, as_completed, get_worker
from tqdm.auto import tqdm

from patchwork_widget.images.extract_loop import (
    Extraction,
    files_hash,
    feature_shape,
    features_of,
    read_ahead,
    reader,
)
from patchwork_widget.images.extractor import Extractor
from patchwork_widget.images.guard import ReadLimits
from patchwork_widget.images.read import ReadOptions, check_options
from patchwork_widget.images.storage import configure_storage, current_storage
from patchwork_widget.options.backbones import Backbone, parse_backbone
from patchwork_widget.options.checks import shown

logger = logging.getLogger(__name__)

__all__ = ["ExtractorPlugin", "extract_on_cluster"]

META_KEY = "patchwork_extraction"
"""The array attribute holding what a resume must match."""


@dataclass(frozen=True)
class _Source:
    """What a worker loads: a backbone, or a ``.keras`` file's bytes (and its read size)."""

    description: str
    backbone: Optional[Backbone] = None
    keras: Optional[bytes] = None
    image_size: Optional[Tuple[int, int]] = None

    @property
    def token(self) -> str:
        h = hashlib.sha256(repr((self.backbone, self.image_size)).encode())
        if self.keras is not None:
            h.update(self.keras)
        return h.hexdigest()[:20]


def _source_of(extractor: Any, imshape: Optional[Tuple[int, int]]) -> _Source:
    """``extractor`` as something each worker can load, or an error saying what can be."""
    if not isinstance(extractor, (str, os.PathLike, Backbone)):
        raise TypeError(
            "with client, extractor must be what each worker loads: a backbone name, a "
            "Backbone or the path of a .keras model (save a model with "
            f"model.save('extractor.keras') and pass the path); got {shown(extractor)}")
    backbone = parse_backbone(extractor, "extractor")
    if backbone is not None:
        if backbone.weights is None:
            raise ValueError(
                f"extractor {backbone.name!r} with random weights would get other weights on "
                "each worker: save one built model (model.save('extractor.keras')) and pass "
                "its path, or use weights='imagenet'")
        return _Source(backbone.name, backbone=backbone)
    path = Path(extractor)
    if path.suffix != ".keras" or not path.is_file():
        raise ValueError(f"extractor {os.fspath(extractor)!r} is not a .keras model file; pass "
                         "a saved Keras model (model.save('extractor.keras')) or a backbone "
                         "name")
    return _Source(path.name, keras=path.read_bytes(),
                   image_size=None if imshape is None else tuple(imshape))


class ExtractorPlugin(WorkerPlugin):
    """A Dask worker plugin carrying an extractor; each worker loads it once, when a task
    first asks for it (:meth:`extractor`), and keeps it for every later task."""

    idempotent = True  # registering the same extractor again (a rerun) keeps loaded models

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.name = f"patchwork-extractor-{source.token}"

    def setup(self, worker: Any) -> None:
        self._lock = threading.Lock()
        self._extractor: Optional[Extractor] = None
        self._folder = Path(worker.local_directory)

    def extractor(self) -> Extractor:
        """The loaded extractor (loaded at the first call in this worker)."""
        from patchwork_widget.images.backbones import resolve_extractor

        with self._lock:
            if self._extractor is None:
                src = self.source
                if src.backbone is not None:
                    self._extractor = resolve_extractor(src.backbone, "extractor")
                else:
                    path = self._folder / f"extractor-{src.token}.keras"
                    path.write_bytes(src.keras)
                    self._extractor = resolve_extractor(path, "extractor", src.image_size)
                logger.info("worker loaded extractor %s (%s)", src.description,
                            self._extractor.identity)
            return self._extractor


def _for_workers(path: str) -> str:
    """A local path made absolute (a worker's working folder is not the client's); a URL as
    it is."""
    protocol, _ = fsspec.core.split_protocol(path)
    return os.path.abspath(path) if protocol is None else path


def _plugin(name: str) -> ExtractorPlugin:
    return get_worker().plugins[name]


def _describe(plugin: str, imshape: Optional[Tuple[int, int]], num_channels: int
              ) -> Tuple[str, Tuple[int, int], Tuple[int, ...]]:
    """On a worker: the extractor's identity, the image size read and the feature shape."""
    extractor = _plugin(plugin).extractor()
    size = extractor.image_size if imshape is None else imshape
    return extractor.identity, size, feature_shape(extractor.model,
                                                   check_options(size, num_channels))


class _ExtractionFiles:
    """What an extraction keeps at ``zarr_path`` besides the array: the completion records
    (``extraction/done/``) and the errors; and what the path holds already."""

    def __init__(self, url: str, storage_options: Mapping[str, Any]) -> None:
        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")
        self.folder = f"{self.root}/extraction/done"

    @staticmethod
    def _valid(data: bytes, chunk: int) -> Optional[dict]:
        try:
            record = json.loads(data)
        except ValueError:  # cut short by a dying writer: not a completion
            return None
        if (isinstance(record, dict) and record.get("chunk") == chunk
                and isinstance(record.get("errors"), list)
                and all(isinstance(record.get(k), int) for k in ("start", "stop"))):
            return record
        return None

    def _names(self, pattern: str) -> List[str]:
        # other processes write records: a listing cached by this fsspec instance is stale
        self.fs.invalidate_cache(self.folder)
        return sorted(self.fs.glob(f"{self.folder}/{pattern}"))

    def read(self) -> Dict[int, List[dict]]:
        """Every valid record, by chunk."""
        names = self._names("*.json")
        contents = self.fs.cat(names, on_error="omit") if names else {}
        found: Dict[int, List[dict]] = {}
        for name, data in contents.items():
            chunk = int(os.path.basename(name).split(".")[0])
            record = self._valid(data, chunk)
            if record is not None:
                found.setdefault(chunk, []).append(record)
        return found

    def find(self, chunk: int) -> Optional[dict]:
        """The record of ``chunk``, if it is done."""
        for name in self._names(f"{chunk:08d}.*.json"):
            try:
                record = self._valid(self.fs.cat_file(name), chunk)
            except FileNotFoundError:
                continue
            if record is not None:
                return record
        return None

    def write(self, chunk: int, record: dict) -> None:
        """Record ``chunk`` as done, under a name of its own (attempts never overwrite)."""
        self.fs.makedirs(self.folder, exist_ok=True)
        self.fs.pipe_file(f"{self.folder}/{chunk:08d}.{uuid.uuid4().hex}.json",
                          json.dumps(record).encode())

    def clear(self) -> None:
        if self.fs.exists(f"{self.root}/extraction"):
            self.fs.rm(f"{self.root}/extraction", recursive=True)

    def write_errors(self, errors: Sequence[dict]) -> str:
        path = f"{self.root}/extraction/errors.jsonl"
        self.fs.makedirs(f"{self.root}/extraction", exist_ok=True)
        self.fs.pipe_file(path, "".join(json.dumps(e) + "\n" for e in errors).encode())
        return path

    def is_array(self) -> bool:
        self.fs.invalidate_cache(self.root)
        return any(self.fs.exists(f"{self.root}/{key}") for key in ("zarr.json", ".zarray"))

    def holds_other_files(self) -> bool:
        self.fs.invalidate_cache(self.root)
        return self.fs.isdir(self.root) and bool(self.fs.ls(self.root)) and not self.is_array()


@dataclass(frozen=True)
class _Job:
    """What every chunk task needs, besides its chunk number and files."""

    plugin: str
    url: str
    storage_options: Mapping[str, Any]
    image_options: Mapping[str, Any]  # the client's Storage options, for image URLs
    identity: str
    shape: Tuple[int, ...]
    opts: ReadOptions
    limits: ReadLimits
    batch_size: int
    num_workers: int
    chunk_rows: int


def _open_kwargs(storage_options: Mapping[str, Any]) -> Dict[str, Any]:
    # zarr takes storage_options only with a URL; for a local path they must be left out
    return {"storage_options": dict(storage_options)} if storage_options else {}


def _extract_chunk(job: _Job, chunk: int, paths: List[str]) -> dict:
    """On a worker: features of ``paths`` (chunk ``chunk``) into the array, then its record."""
    completions = _ExtractionFiles(job.url, job.storage_options)
    record = completions.find(chunk)
    if record is not None:  # an earlier attempt finished it; its outcome was lost
        return record
    if dict(current_storage().storage_options) != dict(job.image_options):
        configure_storage(job.image_options)  # image URLs read as the client reads them
    extractor = _plugin(job.plugin).extractor()
    if extractor.identity != job.identity:
        raise RuntimeError(
            f"worker {get_worker().address} loaded another extractor ({extractor.identity}) "
            f"than the one this extraction was started with ({job.identity}): its weights "
            "differ (Keras caches of different content?)")
    start = chunk * job.chunk_rows
    rows = np.zeros((len(paths),) + job.shape, dtype=np.float32)
    bad: List[Tuple[int, str, str]] = []
    batches = [np.arange(i, min(i + job.batch_size, len(paths)))
               for i in range(0, len(paths), job.batch_size)]
    for positions, batch in read_ahead(batches, reader(paths, job.opts, job.limits,
                                                       job.num_workers)):
        feats, errors = features_of(extractor.model, positions, batch)
        if feats is not None:
            rows[positions[batch.good_index]] = feats
        bad += errors
    array = zarr.open_array(store=job.url, mode="r+", **_open_kwargs(job.storage_options))
    array[start:start + len(paths)] = rows
    record = {"chunk": chunk, "start": start, "stop": start + len(paths),
              "errors": [{"row": start + r, "path": p, "error": e} for r, p, e in bad],
              "worker": get_worker().address}
    completions.write(chunk, record)
    return record


def _open_array(url: str, storage_options: Mapping[str, Any], completions: _ExtractionFiles,
                meta: dict, shape: Tuple[int, ...], resume: bool) -> Any:
    """The array to write: the existing one when resuming the same extraction, else new."""
    kwargs = _open_kwargs(storage_options)
    if completions.holds_other_files():
        raise ValueError(f"zarr_path {url!r} is a folder holding other files, not a Zarr "
                         "array: choose another zarr_path")
    if resume and completions.is_array():
        array = zarr.open_array(store=url, mode="r+", **kwargs)
        old = dict(array.attrs).get(META_KEY)
        if old == meta:
            return array
        if old is not None:
            raise ValueError(
                f"{url} holds an extraction of other files, another extractor or other "
                f"options (rows {old.get('rows')}, shape {old.get('shape')}, extractor "
                f"{old.get('extractor')}); pass resume=False (--restart) to start over or "
                "choose another zarr_path")
    completions.clear()
    array = zarr.open_array(store=url, mode="w", shape=(meta["rows"],) + shape,
                            chunks=(meta["chunk_rows"],) + shape, dtype="float32",
                            fill_value=0.0, **kwargs)
    array.attrs.update({META_KEY: meta})
    return array


def extract_on_cluster(
    paths: List[str],
    extractor: Any,
    client: Client,
    zarr_path: str,
    *,
    imshape: Optional[Tuple[int, int]],
    num_channels: int,
    norm: Optional[float],
    single_channel: bool,
    batch_size: int,
    chunk_rows: int,
    resume: bool,
    num_workers: int,
    progress: bool,
    limits: ReadLimits,
    storage_options: Optional[Mapping[str, Any]],
) -> Extraction:
    """:func:`~patchwork_widget.images.extract.extract_features` on ``client``'s workers,
    into the Zarr array ``zarr_path`` (arguments checked there and as documented there)."""
    if not isinstance(client, Client):
        raise TypeError(f"client must be a distributed.Client; got {shown(client)}")
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise ValueError(f"storage_options must be a mapping of fsspec options or None; got "
                         f"{shown(storage_options)}")
    options = dict(storage_options or {})
    zarr_path = _for_workers(zarr_path)
    check_options((256, 256) if imshape is None else imshape, num_channels, norm,
                  single_channel)
    plugin = ExtractorPlugin(_source_of(extractor, imshape))
    client.register_plugin(plugin)
    identity, size, shape = client.submit(_describe, plugin.name, imshape, num_channels,
                                          pure=False).result()
    opts = check_options(tuple(size), num_channels, norm, single_channel)
    n = len(paths)
    meta = {"rows": n, "shape": list(shape), "files_sha256": files_hash(paths),
            "extractor": identity, "imshape": list(opts.imshape),
            "num_channels": opts.num_channels, "norm": opts.norm,
            "single_channel": opts.single_channel, "chunk_rows": chunk_rows}
    completions = _ExtractionFiles(zarr_path, options)
    _open_array(zarr_path, options, completions, meta, tuple(shape), resume)
    n_chunks = math.ceil(n / chunk_rows)
    done = completions.read()
    todo = [k for k in range(n_chunks) if k not in done]
    if done:
        logger.info("resuming extraction into %s: %d of %d chunks done", zarr_path,
                    n_chunks - len(todo), n_chunks)
    job = _Job(plugin.name, zarr_path, options, current_storage().storage_options, identity,
               tuple(shape), opts, limits, batch_size, num_workers, chunk_rows)
    run = uuid.uuid4().hex[:8]
    shipped = [_for_workers(p) for p in paths]
    futures = [client.submit(_extract_chunk, job, k, shipped[k * chunk_rows:(k + 1) * chunk_rows],
                             key=f"patchwork-extract-{k}-{run}") for k in todo]
    left = sum(min(n, (k + 1) * chunk_rows) - k * chunk_rows for k in todo)
    bar = tqdm(total=n, initial=n - left, desc="extracting features", unit="img",
               disable=not progress)
    try:
        for future in as_completed(futures):
            record = future.result()
            bar.update(record["stop"] - record["start"])
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    records = completions.read()
    missing = [k for k in range(n_chunks) if k not in records]
    if missing:
        raise RuntimeError(f"chunks {missing[:10]} of {zarr_path} have no completion record "
                           "although their tasks finished: was the store changed meanwhile? "
                           "Run again to compute them")
    # the paths as the caller gave them (the workers read them made absolute)
    errors = sorted(({**e, "path": paths[e["row"]]} for k in range(n_chunks)
                     for e in records[k][0]["errors"]), key=lambda e: e["row"])
    completions.write_errors(errors)
    failed = np.zeros(n, dtype=bool)
    failed[[e["row"] for e in errors]] = True
    if errors:
        logger.warning("%d of %d images could not be read; first: %s: %s",
                       len(errors), n, errors[0]["path"], errors[0]["error"])
    features = zarr.open_array(store=zarr_path, mode="r", **_open_kwargs(options))
    return Extraction(features, [(e["path"], e["error"]) for e in errors], failed)
