"""Read many image files into one array without stopping on a bad file (feature I1)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

from patchwork_widget.images.guard import ByteBudget, ImageReadError, ReadLimits, check_limits
from patchwork_widget.images.read import (
    Decoding,
    PathLike,
    ReadOptions,
    _is_int,
    check_options,
    decode_array,
    to_float,
)
from patchwork_widget.options.checks import check_paths

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BatchResult:
    """What :func:`read_images` returns.

    Attributes
    ----------
    arrays : np.ndarray
        float32, shape (n_good, h, w, num_channels): the images that were read, in input order.
    good_index : np.ndarray
        int64, shape (n_good,): position in the input list of each row of ``arrays``.
    errors : list of (str, ImageReadError)
        The paths that could not be read, in input order, each with its error.
    """

    arrays: np.ndarray
    good_index: np.ndarray
    errors: List[Tuple[str, ImageReadError]]


def _attempt(
    path: str, opts: ReadOptions, limits: ReadLimits, budget: ByteBudget
) -> Union[np.ndarray, ImageReadError]:
    """Read one file, holding its decoded bytes in ``budget`` until it is converted."""
    try:
        with budget.share() as reserve:
            return to_float(decode_array(path, Decoding(limits, opts.imshape, reserve)), path, opts)
    except ImageReadError as e:
        return e


def read_images(
    paths: Iterable[PathLike],
    imshape: Optional[Tuple[int, int]] = None,
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    num_workers: int = 1,
    limits: Optional[ReadLimits] = None,
) -> BatchResult:
    """Read many files with :func:`read_image`'s options; bad files are listed, not raised.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files to read.
    imshape, num_channels, norm, single_channel
        As in :func:`read_image`. Without ``imshape`` the first good image sets the size and an
        image of another size is reported as an error (pass ``imshape`` to resize instead).
    num_workers : int
        Threads used for decoding (Pillow, tifffile and NumPy release the GIL); 1 reads
        serially in the calling thread. The threads share one budget of
        ``limits.max_bytes`` decoded bytes: a thread waits before decoding while the
        others hold more (one image larger than that is read alone), so the memory of
        many large images read at once stays near twice that budget.
    limits : ReadLimits, optional
        Largest file and image accepted (see :func:`read_array`); larger ones are errors.

    Returns
    -------
    BatchResult
        Stacked good images, their input positions, and (path, error) for the rest.

    Raises
    ------
    ValueError
        An option is invalid (nothing is read).
    """
    opts = check_options(imshape, num_channels, norm, single_channel)
    limits = check_limits(limits)
    if not (_is_int(num_workers) and num_workers >= 1):
        raise ValueError(f"num_workers must be an int >= 1; got {num_workers!r}")
    paths = check_paths("paths", paths, allow_empty=True)

    pool = ThreadPoolExecutor(num_workers) if num_workers > 1 and len(paths) > 1 else None
    budget = ByteBudget(limits.max_bytes)
    try:
        if pool is None:
            results = (_attempt(p, opts, limits, budget) for p in paths)
        else:
            n = len(paths)
            results = pool.map(_attempt, paths, [opts] * n, [limits] * n, [budget] * n)
        out: Optional[np.ndarray] = None
        good: List[int] = []
        errors: List[Tuple[str, ImageReadError]] = []
        for i, (path, res) in enumerate(zip(paths, results)):
            if isinstance(res, ImageReadError):
                errors.append((path, res))
                continue
            if out is None:
                out = np.empty((len(paths) - i,) + res.shape, dtype=np.float32)
            elif res.shape != out.shape[1:]:
                errors.append((path, ImageReadError(
                    path,
                    f"size {res.shape[0]}x{res.shape[1]} differs from the batch's "
                    f"{out.shape[1]}x{out.shape[2]}; pass imshape to resize",
                )))
                continue
            out[len(good)] = res
            good.append(i)
    finally:
        if pool is not None:
            pool.shutdown()

    if out is None:
        h, w = opts.imshape or (0, 0)
        out = np.empty((0, h, w, opts.num_channels), dtype=np.float32)
    if errors:
        logger.warning(
            "%d of %d images could not be read; first: %s", len(errors), len(paths), errors[0][1]
        )
    arrays = out[: len(good)]
    if len(good) < len(out):  # release the rows reserved for files that failed
        arrays = arrays.copy()
    return BatchResult(arrays, np.asarray(good, dtype=np.int64), errors)
