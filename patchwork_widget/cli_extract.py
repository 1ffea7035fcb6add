"""``patchwork-widget extract`` and ``join``: features of a file list, in shards or on a Dask
cluster (B6).

``extract --scheduler ADDRESS --out F.zarr`` hands chunks of the list to the workers of a
running Dask distributed cluster, which write a Zarr array (a rerun resumes; see
:mod:`~patchwork_widget.images.extract_cluster`).

``extract --shard i/n`` computes rows ``[i*N//n, (i+1)*N//n)`` of the list into their own
resumable ``.npy`` part (see :func:`~patchwork_widget.images.extract.extract_features`), so n
jobs (a cluster's array job, several machines sharing a folder) each write one part; ``join``
checks every part is complete and writes them, in order, into one ``.npy`` (TensorFlow-free).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import List, Tuple

import numpy as np

from patchwork_widget.cli_args import image_side, json_mapping
from patchwork_widget.images.storage import configure_storage, is_url

logger = logging.getLogger(__name__)


def read_file_list(path: str | os.PathLike) -> List[str]:
    """Image paths from a text file (one a line, blank lines skipped) or a CSV / Parquet
    label table (its ``filepath`` column); relative paths are taken from the list's folder, URLs
    (``s3://``, ``https://``, ...) are kept as they are."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--files: no such file {os.fspath(path)!r}")
    if p.suffix.lower() in (".csv", ".parquet"):
        from patchwork_widget.labels import load_labels

        files = [str(f) for f in load_labels(p)["filepath"]]
    else:
        files = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not files:
        raise ValueError(f"--files: {os.fspath(path)!r} lists no images")
    return [f if os.path.isabs(f) or is_url(f) else str(p.parent / f) for f in files]


def parse_shard(text: str) -> Tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4); "
                                         f"got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_rows(n_rows: int, shard: Tuple[int, int]) -> range:
    """The rows of shard ``i`` of ``n``: contiguous, sizes differing by at most one."""
    i, n = shard
    return range(i * n_rows // n, (i + 1) * n_rows // n)


def part_path(out: str | os.PathLike, shard: Tuple[int, int]) -> Path:
    """Where shard ``i/n`` of ``out`` is written: ``<out stem>.part-i-of-n.npy``."""
    out = Path(out)
    i, n = shard
    return out.with_name(f"{out.stem}.part-{i}-of-{n}.npy")


def _run_on_cluster(args: argparse.Namespace, files: List[str]) -> List[str]:
    from distributed import Client

    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.options.backbones import Backbone, is_backbone_name

    if args.shard:
        raise ValueError("--shard splits the list by hand for jobs without a cluster; with "
                         "--scheduler the cluster's workers share the chunks: leave it out")
    if is_backbone_name(args.model):
        extractor = Backbone(args.model, weights=None if args.weights == "none" else
                             args.weights, image_size=args.imshape)
    elif args.weights != "imagenet":
        raise ValueError(f"--weights applies to a backbone name; --model {args.model!r} is a "
                         "file")
    else:
        extractor = args.model
    try:
        client = Client(args.scheduler, timeout=args.connect_timeout)
    except (OSError, TimeoutError) as e:
        raise OSError(f"--scheduler {args.scheduler!r}: cannot reach the Dask scheduler "
                      f"({e})") from e
    with client:
        result = extract_features(files, extractor, imshape=args.imshape,
                                  num_channels=args.num_channels, norm=args.norm,
                                  batch_size=args.batch_size, resume=not args.restart,
                                  progress=not args.no_progress, client=client,
                                  zarr_path=args.out, chunk_rows=args.chunk_rows)
    report = [f"features:  {args.out}  {len(files)} rows, shape {result.features.shape}, "
              f"chunks of {result.features.chunks[0]} rows"]
    if result.errors:
        report.append(f"unreadable: {len(result.errors)} (listed in "
                      f"{args.out}/extraction/errors.jsonl)")
    return report


def run_extract(args: argparse.Namespace) -> List[str]:
    files = read_file_list(args.files)
    if args.storage_options is not None:  # how this process reads image URLs
        configure_storage(args.storage_options)
    if args.scheduler:
        return _run_on_cluster(args, files)
    if args.chunk_rows is not None:
        raise ValueError("--chunk-rows applies to an extraction on a cluster (--scheduler)")

    from patchwork_widget.images.backbones import resolve_extractor
    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.options.backbones import Backbone, is_backbone_name

    rows = shard_rows(len(files), args.shard) if args.shard else range(len(files))
    target = part_path(args.out, args.shard) if args.shard else Path(args.out)
    if is_backbone_name(args.model):
        weights = None if args.weights == "none" else args.weights
        extractor = resolve_extractor(Backbone(args.model, weights=weights,
                                               image_size=args.imshape))
    else:
        if args.weights != "imagenet":
            raise ValueError(f"--weights applies to a backbone name; --model {args.model!r} "
                             "is a file")
        extractor = resolve_extractor(args.model, "--model", args.imshape)
    result = extract_features([files[r] for r in rows], extractor.model,
                              imshape=extractor.image_size,
                              num_channels=args.num_channels, norm=args.norm,
                              batch_size=args.batch_size, memmap_path=target,
                              resume=not args.restart, progress=not args.no_progress)
    report = [f"features:  {target}  rows {rows.start}..{rows.stop - 1} of {len(files)}, "
              f"shape {result.features.shape}"]
    if result.errors:
        report.append(f"unreadable: {len(result.errors)} (listed in {target}.errors.jsonl)")
    return report


def run_join(args: argparse.Namespace) -> List[str]:
    from patchwork_widget.images.extract import TODO

    out = Path(args.out)
    n = args.shards
    if n < 1:
        raise ValueError(f"--shards must be >= 1; got {n}")
    parts = [part_path(out, (i, n)) for i in range(n)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ValueError(f"missing part(s) {missing}: run `extract --shard i/{n}` for each")
    arrays = [np.load(p, mmap_mode="r") for p in parts]
    for p, a in zip(parts, arrays):
        status = np.load(f"{p}.status.npy", mmap_mode="r")
        todo = int((status == TODO).sum())
        if todo:
            raise ValueError(f"{p} is unfinished ({todo} of {len(status)} rows left): run its "
                             "extract again, it resumes")
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"{p} has features of shape {a.shape[1:]}, {parts[0]} "
                             f"{arrays[0].shape[1:]}: the parts come from different models")
    total = sum(len(a) for a in arrays)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    joined = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                       shape=(total,) + arrays[0].shape[1:])
    errors = []
    start = 0
    for p, a in zip(parts, arrays):
        for s in range(0, len(a), 4096):
            chunk = a[s:s + 4096]
            joined[start + s:start + s + len(chunk)] = chunk
        errors_file = Path(f"{p}.errors.jsonl")
        if errors_file.is_file():
            for line in errors_file.read_text().splitlines():
                if line.strip():
                    e = json.loads(line)
                    errors.append({**e, "row": int(e["row"]) + start})
        start += len(a)
    joined.flush()
    del joined
    os.replace(tmp, out)
    errors_out = Path(f"{out}.errors.jsonl")
    errors_out.write_text("".join(json.dumps(e) + "\n" for e in errors))
    return [f"features:  {out}  {total} rows from {n} parts; unreadable: {len(errors)}"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from patchwork_widget.options.backbones import BACKBONES

    ex = sub.add_parser(
        "extract", help="features of every image with a backbone or a saved model (.npy, "
                        "resumable)",
        description="Run a pretrained backbone by name or a saved Keras model (.keras) over a "
                    "list of images and write the features to a .npy file, memory-mapped, "
                    "with a progress bar. An "
                    "interrupted run resumes where it stopped. With --shard i/n only the "
                    "i-th of n contiguous parts is computed, into OUT's part file; `join` "
                    "then assembles the parts in order. With --scheduler the workers of a "
                    "Dask cluster share the list and write OUT as a Zarr array.")
    ex.add_argument("--model", required=True,
                    help=f"a backbone ({', '.join(BACKBONES)}) or a .keras model: images "
                         "-> features")
    ex.add_argument("--weights", choices=("imagenet", "none"), default="imagenet",
                    help="a backbone's weights: ImageNet (downloaded once into Keras' cache) "
                         "or none (random)")
    ex.add_argument("--files", required=True,
                    help="text file of image paths (one a line) or a label table (CSV/Parquet)")
    ex.add_argument("--out", required=True,
                    help="the .npy file to write (with --scheduler: the Zarr array)")
    ex.add_argument("--shard", type=parse_shard, help="i/n: compute part i of n (0-based)")
    ex.add_argument("--scheduler", metavar="ADDRESS",
                    help="a Dask distributed scheduler (tcp://host:8786): its workers extract "
                         "chunks of the list into OUT, a Zarr array (a path or an fsspec URL "
                         "such as s3://bucket/features.zarr)")
    ex.add_argument("--chunk-rows", type=int, default=None,
                    help="with --scheduler: images per task and per Zarr chunk (default 512)")
    ex.add_argument("--connect-timeout", type=float, default=30.0,
                    help="with --scheduler: seconds to wait for the scheduler")
    ex.add_argument("--imshape", type=image_side, nargs=2, metavar=("H", "W"),
                    help="image size (default: the backbone's or the model's input size)")
    ex.add_argument("--num-channels", type=int, default=3)
    ex.add_argument("--norm", type=float, default=None,
                    help="divide pixels by this (default: by the file's dtype maximum)")
    ex.add_argument("--batch-size", type=int, default=64)
    ex.add_argument("--storage-options", type=json_mapping, metavar="JSON",
                    help="fsspec filesystem options for image URLs (s3://, https://, ...), "
                         "e.g. '{\"endpoint_url\": \"http://...\", \"anon\": true}' "
                         "(default: the AWS environment variables and config files)")
    ex.add_argument("--restart", action="store_true", help="start over instead of resuming")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.set_defaults(run=run_extract)

    jn = sub.add_parser(
        "join", help="join the parts of `extract --shard i/n` into one .npy",
        description="Check that every part OUT.part-i-of-N.npy is complete and write them in "
                    "order into OUT (unreadable images listed in OUT.errors.jsonl).")
    jn.add_argument("--out", required=True, help="the .npy file the parts were written for")
    jn.add_argument("--shards", required=True, type=int, help="N, the number of parts")
    jn.set_defaults(run=run_join)
