"""Features kept with the project: extracted once, reused on reopen, extended for new rows
(feature I5).

The cache lives in a folder beside the outfile (``labels.csv`` -> ``labels.csv.features/``).
It is keyed by the extractor's identity (for a named backbone: its name, weights and a digest
of them; for a ``.keras`` file: the file's digest), the image size and channels it reads, and
the reader's scaling; a different key empties the folder and extracts again. Within one key,
features are stored per file path in parts: each extraction of paths the cache does not hold
writes one resumable part (see :func:`~patchwork_widget.images.extract.extract_features`), so
rows added to the table later cost only their own extraction, and an interrupted extraction
resumes where it stopped.

Folder layout: ``meta.json`` (``{"key": ..., "parts": [...]}``) and per part
``part-NNNNN.npy`` with its ``.files.json`` (the paths of its rows, in order) and the resume
files of ``extract_features`` (``.status.npy``, ``.meta.json``, ``.errors.jsonl``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from patchwork_widget.images.extract import TODO, extract_features
from patchwork_widget.images.extractor import Extractor
from patchwork_widget.images.guard import ReadLimits
from patchwork_widget.images.read import PathLike
from patchwork_widget.options.checks import check_int, check_path, check_paths, check_shape, shown

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the layout or the reader's scaling changes
META_FILE = "meta.json"


def cache_key(extractor: Extractor) -> Dict[str, Any]:
    """What features made by ``extractor`` depend on: the cache's key."""
    return {"format": FORMAT_VERSION, "extractor": extractor.identity,
            "image_size": list(extractor.image_size), "num_channels": extractor.num_channels,
            "scaling": "dtype maximum to [0, 1]"}


def cache_folder(outfile: PathLike) -> Path:
    """The cache folder of a project: ``labels.csv`` -> ``labels.csv.features``."""
    path = Path(check_path("outfile", outfile))
    return path.with_name(path.name + ".features")


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


class FeatureCache:
    """The features of one project's images under one extractor (see the module docstring).

    Parameters
    ----------
    folder : path
        The cache folder (:func:`cache_folder` of the outfile).
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(check_path("folder", folder))

    def _meta(self, key: Dict[str, Any]) -> Dict[str, Any]:
        meta_path = self.folder / META_FILE
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("key") == key:
                return meta
            logger.info("feature cache %s was made by another extractor or image size "
                        "(%s); extracting again", self.folder, meta.get("key"))
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"key": key, "parts": []}
        _write_json(meta_path, meta)
        return meta

    def fill(self, files: Sequence[PathLike], extractor: Extractor,
             on_rows: Callable[[Path, np.ndarray, np.ndarray], None], *,
             first: Optional[Sequence[int]] = None,
             priority: Optional[Callable[[], Sequence[int]]] = None, batch_size: int = 64,
             progress: bool = True, limits: Optional[ReadLimits] = None) -> None:
        """Make sure the cache holds every one of ``files``, telling ``on_rows`` where each
        file's features are as soon as they are on disk.

        Parameters
        ----------
        files : sequence of paths
            One image per table row (the table's ``filepath`` column).
        extractor : Extractor
            The extractor (see :func:`~patchwork_widget.images.backbones.resolve_extractor`).
        on_rows : callable
            ``on_rows(part, part_rows, rows)``: the features of table ``rows`` are rows
            ``part_rows`` of the ``.npy`` file ``part`` (readable with
            ``np.load(part, mmap_mode="r")``). Called once per cached part, then after each
            extracted batch.
        first : sequence of int, optional
            Table rows to extract before the others (e.g. the labeled ones).
        priority : callable, optional
            Asked before every batch: table rows to extract next (e.g. those labeled or
            sampled meanwhile); see ``extract_features``.
        batch_size, progress, limits
            As in :func:`~patchwork_widget.images.extract.extract_features`.
        """
        paths = check_paths("files", files)
        if not isinstance(extractor, Extractor):
            raise TypeError(f"extractor must be an Extractor (see resolve_extractor); "
                            f"got {shown(extractor)}")
        check_int("batch_size", batch_size, 1)
        if not callable(on_rows):
            raise TypeError(f"on_rows must be a callable (part, part_rows, rows); "
                            f"got {shown(on_rows)}")
        positions: Dict[str, List[int]] = {}
        for row, path in enumerate(paths):
            positions.setdefault(path, []).append(row)

        def report(target: Path, part_files: List[str], part_rows: Sequence[int]) -> None:
            pairs = [(k, row) for k in part_rows for row in positions.get(part_files[k], ())]
            if pairs:
                where = np.asarray(pairs, dtype=np.int64)
                on_rows(target, where[:, 0], where[:, 1])

        def extract(part_files: List[str], target: Path) -> None:
            where = {path: k for k, path in enumerate(part_files)}

            def part_priority() -> List[int]:  # the table rows asked for, in this part
                asked = (paths[int(r)] for r in priority() if 0 <= int(r) < len(paths))
                return [where[path] for path in asked if path in where]

            extract_features(part_files, extractor.model, imshape=extractor.image_size,
                             num_channels=extractor.num_channels, batch_size=batch_size,
                             memmap_path=target, resume=True, progress=progress,
                             limits=limits,
                             on_batch=lambda rows: report(target, part_files, rows),
                             priority=None if priority is None else part_priority)

        meta = self._meta(cache_key(extractor))
        found: set = set()
        kept: List[str] = []
        for name in meta["parts"]:
            target = self.folder / name
            files_path = Path(f"{target}.files.json")
            if not files_path.is_file():  # stopped before its file list was written
                continue
            part_files = json.loads(files_path.read_text())
            status_path = Path(f"{target}.status.npy")
            status = np.load(status_path) if status_path.is_file() else None
            fresh = [k for k, path in enumerate(part_files) if path not in found]
            if status is not None:  # rows done before an interruption are there already
                report(target, part_files, [k for k in fresh if status[k] != TODO])
            if status is None or (status == TODO).any():
                logger.info("resuming the extraction of %s", target)
                extract(part_files, target)
                if status is None:  # its rows were not reported above
                    report(target, part_files, fresh)
            kept.append(name)
            found.update(part_files)
        missing = list(dict.fromkeys(p for p in paths if p not in found))
        if first is not None and missing:
            ahead = list(dict.fromkeys(paths[int(r)] for r in first if paths[int(r)] not in found))
            missing = ahead + [p for p in missing if p not in set(ahead)]
        if missing:
            name = f"part-{len(kept):05d}.npy"
            target = self.folder / name
            _write_json(Path(f"{target}.files.json"), missing)
            meta["parts"] = kept + [name]
            _write_json(self.folder / META_FILE, meta)
            logger.info("extracting features of %d of %d images with %s", len(missing),
                        len(paths), extractor.description or extractor.identity)
            extract(missing, target)
        elif kept != meta["parts"]:
            meta["parts"] = kept
            _write_json(self.folder / META_FILE, meta)

    def features(self, files: Sequence[PathLike], extractor: Extractor, *,
                 batch_size: int = 64, progress: bool = True,
                 limits: Optional[ReadLimits] = None) -> np.ndarray:
        """Features of ``files`` in order, extracting only the paths the cache lacks
        (:meth:`fill`, gathered in memory).

        Parameters
        ----------
        files : sequence of paths
            One image per output row (the table's ``filepath`` column).
        extractor : Extractor
            The extractor (see :func:`~patchwork_widget.images.backbones.resolve_extractor`).
        batch_size, progress, limits
            As in :func:`~patchwork_widget.images.extract.extract_features`.

        Returns
        -------
        np.ndarray
            float32, one row per file; zeros for files that could not be read (logged).
        """
        gathered = ArrivingFeatures(len(files))
        self.fill(files, extractor, gathered.take, batch_size=batch_size, progress=progress,
                  limits=limits)
        return gathered.array if gathered.array is not None else np.zeros((0, 0), np.float32)


class ArrivingFeatures:
    """The features of a table's rows, gathered from the cache's parts as they are reported
    (what :meth:`FeatureCache.fill`'s ``on_rows`` is given), and which rows have them.

    Parameters
    ----------
    rows : int
        Rows of the table.
    """

    def __init__(self, rows: int) -> None:
        self.array: Optional[np.ndarray] = None  # allocated at the first report
        self.ready = np.zeros(check_int("rows", rows, 0), dtype=bool)

    @property
    def done(self) -> int:
        return int(self.ready.sum())

    def read(self, part: PathLike, part_rows: np.ndarray) -> np.ndarray:
        """Rows ``part_rows`` of a cache part, in memory (the reading, which a background
        thread may do)."""
        array = np.load(part, mmap_mode="r")
        order = np.argsort(part_rows, kind="stable")  # read in file order
        values = np.empty((len(part_rows),) + array.shape[1:], dtype=np.float32)
        values[order] = array[np.asarray(part_rows)[order]]
        return values

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Store ``values`` (read by :meth:`read`) as the features of table ``rows``."""
        if self.array is None:
            self.array = np.zeros((len(self.ready),) + values.shape[1:], dtype=np.float32)
        elif values.shape[1:] != self.array.shape[1:]:
            raise ValueError(f"the feature cache holds parts of different feature shapes "
                             f"({self.array.shape[1:]} and {values.shape[1:]}); delete it")
        self.array[rows] = values
        self.ready[rows] = True

    def take(self, part: PathLike, part_rows: np.ndarray, rows: np.ndarray) -> None:
        """:meth:`read` then :meth:`put` (an ``on_rows`` for :meth:`FeatureCache.fill`)."""
        self.put(rows, self.read(part, part_rows))
