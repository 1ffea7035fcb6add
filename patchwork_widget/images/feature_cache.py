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

    def features(self, files: Sequence[PathLike], extractor: Extractor, *,
                 batch_size: int = 64, progress: bool = True,
                 limits: Optional[ReadLimits] = None) -> np.ndarray:
        """Features of ``files`` in order, extracting only the paths the cache lacks.

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
        paths = check_paths("files", files)
        if not isinstance(extractor, Extractor):
            raise TypeError(f"extractor must be an Extractor (see resolve_extractor); "
                            f"got {shown(extractor)}")

        def extract(part_files: List[str], target: Path) -> None:
            extract_features(part_files, extractor.model, imshape=extractor.image_size,
                             num_channels=extractor.num_channels, batch_size=batch_size,
                             memmap_path=target, resume=True, progress=progress,
                             limits=limits)

        meta = self._meta(cache_key(extractor))
        index: Dict[str, Tuple[int, int]] = {}
        arrays: List[np.ndarray] = []
        kept: List[str] = []
        for name in meta["parts"]:
            target = self.folder / name
            files_path = Path(f"{target}.files.json")
            if not files_path.is_file():  # stopped before its file list was written
                continue
            part_files = json.loads(files_path.read_text())
            status_path = Path(f"{target}.status.npy")
            if not status_path.is_file() or (np.load(status_path) == TODO).any():
                logger.info("resuming the extraction of %s", target)
                extract(part_files, target)
            kept.append(name)
            arrays.append(np.load(target, mmap_mode="r"))
            for row, path in enumerate(part_files):
                index.setdefault(path, (len(arrays) - 1, row))
        missing = list(dict.fromkeys(p for p in paths if p not in index))
        if missing:
            name = f"part-{len(kept):05d}.npy"
            target = self.folder / name
            _write_json(Path(f"{target}.files.json"), missing)
            meta["parts"] = kept + [name]
            _write_json(self.folder / META_FILE, meta)
            logger.info("extracting features of %d of %d images with %s", len(missing),
                        len(paths), extractor.description or extractor.identity)
            extract(missing, target)
            kept.append(name)
            arrays.append(np.load(target, mmap_mode="r"))
            for row, path in enumerate(missing):
                index[path] = (len(arrays) - 1, row)
        elif kept != meta["parts"]:
            meta["parts"] = kept
            _write_json(self.folder / META_FILE, meta)
        shape = arrays[0].shape[1:]
        out = np.empty((len(paths),) + shape, dtype=np.float32)
        where = np.array([index[p] for p in paths], dtype=np.int64).reshape(-1, 2)
        for k, array in enumerate(arrays):
            rows = np.flatnonzero(where[:, 0] == k)
            if len(rows):
                if array.shape[1:] != shape:
                    raise ValueError(f"{self.folder} holds parts of different feature shapes "
                                     f"({shape} and {array.shape[1:]}); delete the folder")
                out[rows] = array[where[rows, 1]]
        return out
