"""Label tables to start from: a folder of images, and a small real-image demo dataset with
ground truth, built offline (feature B7).

:func:`load_folder` lists a folder's images (recursively, by extension, up to a size limit) as
a fresh label table; the folder may be local or a prefix in object storage (an fsspec URL,
listed by :func:`patchwork_widget.images.storage.list_folder`).

Patches are cut at random positions, scales, flips and quarter turns from photographs that
scikit-image and scikit-learn ship inside their wheels, so nothing is downloaded. Each class is
one source; about 15% of the images hold two classes (two half patches side by side, or a
handwritten digit drawn over a texture). The table uses the project's label schema.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import numbers
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from PIL import Image

from patchwork_widget.options.checks import (
    check_int,
    check_path,
    check_paths,
    shown,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

DEMO_DIR_ENV = "PATCHWORK_DEMO_DIR"
GROUND_TRUTH_FILE = "ground_truth.csv"
PARAMS_FILE = "demo_params.json"
IMAGE_DIR = "images"
FORMAT_VERSION = 1  # bump when the recipe changes, so cached copies are rebuilt

TEXTURES = ("brick", "grass", "gravel")  # the classes a digit is drawn over


# Class name -> what its patches show; the table's column order.
DEMO_CLASSES: Dict[str, str] = {
    "brick": "brick wall texture, gray (skimage.data.brick)",
    "grass": "grass texture, gray (skimage.data.grass)",
    "gravel": "gravel texture, gray (skimage.data.gravel)",
    "cat": "Chelsea the cat (skimage.data.chelsea)",
    "coffee": "a cup of coffee on its saucer (skimage.data.coffee)",
    "astronaut": "astronaut Eileen Collins (skimage.data.astronaut)",
    "rocket": "a rocket on its launch pad (skimage.data.rocket)",
    "stars": "galaxies of the Hubble deep field (skimage.data.hubble_deep_field)",
    "cells": "stained tissue (skimage.data.immunohistochemistry)",
    "retina": "retinal fundus, inside the disk (skimage.data.retina)",
    "digit": "handwritten digit, 8x8 upscaled, white on black (scikit-learn's load_digits)",
}
# Class name -> the skimage.data function giving its source photo (uint8).
_SKIMAGE_SOURCES = {
    "brick": "brick", "grass": "grass", "gravel": "gravel", "cat": "chelsea",
    "coffee": "coffee", "astronaut": "astronaut", "rocket": "rocket",
    "stars": "hubble_deep_field", "cells": "immunohistochemistry", "retina": "retina",
}


def load_folder(
    folder: PathLike,
    classes: Sequence[str] = (),
    *,
    extensions: Optional[Sequence[str]] = None,
    recursive: bool = True,
    max_images: Optional[int] = None,
    max_bytes: Optional[int] = None,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> pd.DataFrame:
    """A new label table holding the images in ``folder``, a local folder or a folder /
    prefix in object storage.

    Parameters
    ----------
    folder : path or str
        The folder to list: a local path, a ``file://`` URL (a local folder too) or the fsspec
        URL of a folder or prefix (``s3://bucket/prefix``, ``gs://bucket/prefix``, ...),
        listed through its fsspec filesystem (one flat listing of the prefix on object
        stores; sizes come from the listing, so nothing is downloaded). ``http(s)://`` has
        no listing and is refused. Files and folders whose name starts with ``.`` are
        skipped; symbolic links to local folders are not followed.
    classes : sequence of str
        Class columns of the table (more can be added while labeling).
    extensions : sequence of str, optional
        File extensions to take (case-insensitive, e.g. ``[".jpg", ".png"]``); default every
        extension the image reader supports
        (:data:`~patchwork_widget.images.read.SUPPORTED_EXTENSIONS`).
    recursive : bool
        List sub-folders (objects below deeper prefixes) too.
    max_images : int, optional
        Take at most this many images, the first in path order (the rest are logged).
    max_bytes : int, optional
        Skip files larger than this many bytes (logged).
    storage_options : dict, optional
        Options of a URL's fsspec filesystem (``endpoint_url``, ``profile``, ``anon``, ...;
        see :class:`~patchwork_widget.images.storage.Storage`). Default: the process's, the
        ones every image reader uses (:func:`~patchwork_widget.images.storage.configure_storage`,
        or a project's ``storage_options``); without any, the filesystem's own defaults (for
        S3 the standard AWS environment variables and config files). Not used for local
        folders.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`~patchwork_widget.labels.prep_label_dataframe`: absolute paths
        (full URLs such as ``s3://bucket/prefix/a.png`` for a URL), sorted, one row per
        image.

    Raises
    ------
    ValueError
        For a folder that does not exist (a URL's missing bucket or prefix, or one that lists
        nothing), a URL naming one file or an ``http(s)://`` URL, an unsupported extension, a
        bad limit, or a folder holding no image; messages name the folder or URL.
    OSError
        When a URL's listing fails otherwise (refused credentials, no answer), naming it.
    """
    from patchwork_widget.images.read import SUPPORTED_EXTENSIONS
    from patchwork_widget.images.storage import list_folder
    from patchwork_widget.labels import prep_label_dataframe

    where = check_path("folder", folder)
    if extensions is None:
        wanted = set(SUPPORTED_EXTENSIONS)
    else:
        if isinstance(extensions, str) or not isinstance(extensions, Sequence):
            raise ValueError(f"extensions must be a list of extensions such as ['.jpg']; "
                             f"got {shown(extensions)}")
        wanted = set()
        for ext in extensions:
            norm = ext.lower() if isinstance(ext, str) else ext
            if isinstance(norm, str) and not norm.startswith("."):
                norm = "." + norm
            if norm not in SUPPORTED_EXTENSIONS:
                raise ValueError(f"extensions: {shown(ext)} is not read by the image reader; "
                                 f"allowed: {', '.join(SUPPORTED_EXTENSIONS)}")
            wanted.add(norm)
    if not isinstance(recursive, bool):
        raise ValueError(f"recursive must be True or False; got {shown(recursive)}")
    check_int("max_images", max_images, 1, allow_none=True)
    check_int("max_bytes", max_bytes, 1, allow_none=True)
    paths: List[str] = []
    too_large = 0
    for path, size in list_folder(where, recursive, storage_options):
        if os.path.splitext(path)[1].lower() not in wanted:
            continue
        if max_bytes is not None and size is not None and size > max_bytes:
            too_large += 1
            continue
        paths.append(path)
    if too_large:
        logger.warning("%d file(s) in %s are larger than max_bytes=%d and were skipped",
                       too_large, where, max_bytes)
    if not paths:
        raise ValueError(f"folder {where!r} holds no image with extension "
                         f"{', '.join(sorted(wanted))}" + (" (sub-folders included)"
                                                           if recursive else ""))
    if max_images is not None and len(paths) > max_images:
        logger.warning("%s holds %d images; the table takes the first %d (max_images)",
                       where, len(paths), max_images)
        paths = paths[:max_images]
    return prep_label_dataframe(paths, list(classes))


def demo_classes() -> List[str]:
    """Names of the demo classes, in the table's column order."""
    return list(DEMO_CLASSES)


def default_demo_dir() -> Path:
    """Where the demo lives: ``$PATCHWORK_DEMO_DIR``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``patchwork_widget/demo``."""
    env = os.environ.get(DEMO_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "patchwork_widget" / "demo"


# ---------------------------------------------------------------------------------------------
# Patch sampling.


def _load_digits() -> np.ndarray:
    """scikit-learn's 1797 8x8 digits (values 0..16), read from its data file directly:
    importing sklearn costs ~2 s, longer than building the whole demo."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = os.path.join(location, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            return np.loadtxt(path, delimiter=",")[:, :64].reshape(-1, 8, 8)
    from sklearn.datasets import (
        load_digits,  # layout changed: take the slow, public way
    )

    return load_digits().images


def _load_sources() -> Dict[str, np.ndarray]:
    """Texture and photo sources as uint8 (H, W) or (H, W, 3); digits as (N, 8, 8) uint8."""
    import skimage.data

    sources = {name: getattr(skimage.data, fn)() for name, fn in _SKIMAGE_SOURCES.items()}
    sources["digit"] = np.round(_load_digits() * (255 / 16)).astype(np.uint8)
    return sources


# Where crop centres may fall, as fractions (y0, y1, x0, x1) of the source: the part of the
# photo the class name describes (the rocket, not the sky; the cup, not the table; the
# astronaut, not the shuttle model behind her). Other sources use the whole image.
CENTRE_BOXES = {
    "cat": (0.10, 0.90, 0.10, 0.80),
    "coffee": (0.10, 0.75, 0.28, 0.70),
    "astronaut": (0.15, 0.90, 0.25, 0.55),
    "rocket": (0.33, 0.90, 0.48, 0.53),
}


def _valid_crop(name: str, crop: np.ndarray) -> bool:
    """Reject crops that would not show the class: outside the retina disk, empty sky."""
    if name == "retina":
        return float((crop.max(axis=2) > 20).mean()) >= 0.98
    if name == "stars":
        return float((crop.max(axis=2) > 40).mean()) >= 0.05
    return True


def _crop(rng: np.random.Generator, name: str, src: np.ndarray, out_hw: Tuple[int, int]
          ) -> np.ndarray:
    """A random crop of ``src`` (scale 1-2x the output size), flipped/turned, resized."""
    h, w = out_hw
    y0, y1, x0, x1 = CENTRE_BOXES.get(name, (0.0, 1.0, 0.0, 1.0))
    sh, sw = src.shape[:2]
    for _ in range(100):
        scale = rng.uniform(1.0, 2.0)
        ch, cw = min(sh, int(round(h * scale))), min(sw, int(round(w * scale)))
        cy, cx = rng.uniform(y0 * sh, y1 * sh), rng.uniform(x0 * sw, x1 * sw)
        y = int(np.clip(round(cy - ch / 2), 0, sh - ch))
        x = int(np.clip(round(cx - cw / 2), 0, sw - cw))
        crop = src[y:y + ch, x:x + cw]
        if _valid_crop(name, crop):
            break
    img = Image.fromarray(crop).resize((w, h), Image.BILINEAR)
    arr = np.asarray(img)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    if h == w:  # quarter turns keep the shape only for square outputs
        arr = np.rot90(arr, int(rng.integers(0, 4)))
    return np.ascontiguousarray(arr)


def _digit(rng: np.random.Generator, digits: np.ndarray, size: int) -> np.ndarray:
    """A random digit, upscaled to 60-100% of ``size`` at a random place; uint8 (size, size)."""
    glyph = Image.fromarray(digits[int(rng.integers(0, len(digits)))])
    g = int(round(size * rng.uniform(0.6, 1.0)))
    glyph = np.asarray(glyph.resize((g, g), Image.BILINEAR)).astype(np.float32)
    glyph = np.clip(glyph * 1.5, 0, 255).astype(np.uint8)  # upscaling blurs: restore solid strokes
    out = np.zeros((size, size), dtype=np.uint8)
    y, x = (int(v) for v in rng.integers(0, size - g + 1, size=2))
    out[y:y + g, x:x + g] = glyph
    return out


def _rgb(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2)


def _halves(rng, sources, a: str, b: str, size: int) -> np.ndarray:
    """Class ``a`` on one half and ``b`` on the other, split left/right or top/bottom."""
    half = size // 2
    if rng.random() < 0.5:  # left | right
        parts = [_crop(rng, n, sources[n], (size, s)) for n, s in ((a, half), (b, size - half))]
        return np.concatenate([_rgb(p) for p in parts], axis=1)
    parts = [_crop(rng, n, sources[n], (s, size)) for n, s in ((a, half), (b, size - half))]
    return np.concatenate([_rgb(p) for p in parts], axis=0)


def _digit_on(rng, sources, texture: str, size: int) -> np.ndarray:
    """A white digit drawn over a patch of ``texture`` (alpha = digit intensity)."""
    alpha = _digit(rng, sources["digit"], size).astype(np.float32) / 255
    base = _crop(rng, texture, sources[texture], (size, size)).astype(np.float32)
    return np.round(base * (1 - alpha) + 255 * alpha).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Building and loading.


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _params(seed, patch_size, n_per_class, multi_label_fraction) -> dict:
    """Validate the build parameters; return them as stored in ``demo_params.json``."""
    if not (_is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    if not (_is_int(patch_size) and 16 <= patch_size <= 256):
        raise ValueError(f"patch_size must be an int in [16, 256]; got {patch_size!r}")
    if not (_is_int(n_per_class) and n_per_class >= 1):
        raise ValueError(f"n_per_class must be an int >= 1; got {n_per_class!r}")
    if not (isinstance(multi_label_fraction, numbers.Real)
            and not isinstance(multi_label_fraction, bool) and 0 <= multi_label_fraction < 1):
        raise ValueError(
            f"multi_label_fraction must be a number in [0, 1); got {multi_label_fraction!r}"
        )
    return dict(seed=int(seed), patch_size=int(patch_size), n_per_class=int(n_per_class),
                multi_label_fraction=float(multi_label_fraction), version=FORMAT_VERSION)


def build_demo_dataset(
    outdir: PathLike,
    seed: int = 0,
    patch_size: int = 64,
    n_per_class: int = 100,
    multi_label_fraction: float = 0.15,
) -> pd.DataFrame:
    """Write the demo PNGs under ``outdir/images`` and return their ground-truth table.

    Parameters
    ----------
    outdir : str or os.PathLike
        Folder to build in (created if needed). Earlier demo images there are replaced.
    seed : int
        Seed of the one random generator used; the same seed gives byte-identical files.
    patch_size : int
        Side of the square patches, 16..256 pixels.
    n_per_class : int
        Single-label images per class.
    multi_label_fraction : float
        Share of all images that hold two classes, in [0, 1). Two thirds of them are two
        half patches of different non-digit classes; one third a digit over a texture.

    Returns
    -------
    pandas.DataFrame
        ``filepath`` (absolute), ``exclude`` and ``validation`` (False), then one float64
        column per class of :func:`demo_classes` holding 1.0 or 0.0; also written to
        ``outdir/ground_truth.csv``. Rows are in random order.
    """
    check_path("outdir", outdir)
    params = _params(seed, patch_size, n_per_class, multi_label_fraction)
    start = time.perf_counter()
    classes = demo_classes()
    rng = np.random.default_rng(seed)
    sources = _load_sources()

    samples: List[Tuple[Tuple[str, ...], np.ndarray]] = []
    for name in classes:
        for _ in range(n_per_class):
            if name == "digit":
                img = _digit(rng, sources["digit"], patch_size)
            else:
                img = _crop(rng, name, sources[name], (patch_size, patch_size))
            samples.append(((name,), img))
    n_single = len(samples)
    n_multi = int(round(n_single * multi_label_fraction / (1 - multi_label_fraction)))
    scenes = [c for c in classes if c != "digit"]
    for k in range(n_multi):
        if k % 3 == 2:
            texture = TEXTURES[int(rng.integers(0, len(TEXTURES)))]
            samples.append(((texture, "digit"), _digit_on(rng, sources, texture, patch_size)))
        else:
            a, b = (scenes[i] for i in rng.choice(len(scenes), size=2, replace=False))
            samples.append(((a, b), _halves(rng, sources, a, b, patch_size)))

    outdir = Path(outdir).expanduser().absolute()
    image_dir = outdir / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    for old in image_dir.glob("img_*.png"):
        old.unlink()
    (outdir / GROUND_TRUTH_FILE).unlink(missing_ok=True)

    order = rng.permutation(len(samples))
    width = max(5, len(str(len(samples))))
    rows = []
    for i, j in enumerate(order):
        names, img = samples[j]
        path = image_dir / f"img_{i:0{width}d}.png"
        Image.fromarray(img).save(path)  # 2-D arrays become gray PNGs, 3-D become RGB
        rows.append([str(path), False, False] + [float(c in names) for c in classes])
    df = pd.DataFrame(rows, columns=["filepath", "exclude", "validation"] + classes)

    (outdir / PARAMS_FILE).write_text(json.dumps(params, indent=1))
    tmp = outdir / (GROUND_TRUTH_FILE + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, outdir / GROUND_TRUTH_FILE)  # the table appears last: its presence = done
    logger.info("built %d demo images (%d with two classes) in %s in %.1f s",
                len(df), n_multi, outdir, time.perf_counter() - start)
    return df


def _read_finished_build(outdir: Path, params: dict) -> Optional[pd.DataFrame]:
    """The table of a complete build with these parameters in ``outdir``, else None."""
    table = outdir / GROUND_TRUTH_FILE
    if not table.is_file():
        return None
    classes = demo_classes()
    try:
        if json.loads((outdir / PARAMS_FILE).read_text()) != params:
            return None
        df = pd.read_csv(table, dtype={"filepath": str, "exclude": bool, "validation": bool,
                                       **{c: np.float64 for c in classes}})
    except (OSError, ValueError) as e:  # unreadable or damaged files: build again
        logger.warning("demo in %s is damaged (%s); rebuilding it", outdir, e)
        return None
    image_dir = outdir / IMAGE_DIR
    df["filepath"] = [str(image_dir / os.path.basename(f)) for f in df["filepath"]]
    if list(df.columns) != ["filepath", "exclude", "validation"] + classes or not all(
        os.path.isfile(f) for f in df["filepath"]
    ):
        logger.warning("demo in %s is incomplete; rebuilding it", outdir)
        return None
    return df


def load_demo_dataset(
    outdir: Optional[PathLike] = None,
    seed: int = 0,
    patch_size: int = 64,
    n_per_class: int = 100,
    multi_label_fraction: float = 0.15,
) -> pd.DataFrame:
    """Return the demo's ground-truth table, building it first if needed.

    A finished build in ``outdir`` (default :func:`default_demo_dir`) made with the same
    parameters is read back (a few milliseconds); otherwise, or if an image is missing, the
    set is built with :func:`build_demo_dataset`. Paths are re-rooted at ``outdir``, so a
    copied or moved demo folder still works.
    """
    check_path("outdir", outdir, allow_none=True)
    params = _params(seed, patch_size, n_per_class, multi_label_fraction)
    outdir = Path(outdir if outdir is not None else default_demo_dir()).expanduser().absolute()
    df = _read_finished_build(outdir, params)
    if df is not None:
        return df
    return build_demo_dataset(outdir, seed=seed, patch_size=patch_size,
                              n_per_class=n_per_class, multi_label_fraction=multi_label_fraction)


def demo_features(paths: List[str]) -> np.ndarray:
    """Simple hand-made features for the demo, so models train without a feature extractor.

    Per image (read at 32x32): an 8-bin histogram per colour channel and an 8x8 grey thumbnail,
    each column standardised over the set. Returns float32, shape (len(paths), 88). A stand-in
    for a pretrained extractor's features (see ``patchwork_widget.feature``).
    """
    from patchwork_widget.images.batch import read_images

    images = read_images(check_paths("paths", paths), imshape=(32, 32), num_channels=3)
    if images.errors:
        path, err = images.errors[0]
        raise ValueError(f"paths: {len(images.errors)} demo image(s) could not be read, e.g. "
                         f"{path}: {err}")
    x = images.arrays
    bins = [np.apply_along_axis(lambda v: np.histogram(v, bins=8, range=(0.0, 1.0))[0], 1,
                                x[..., c].reshape(len(x), -1)) for c in range(3)]
    hist = np.concatenate(bins, axis=1) / (32 * 32)
    grey = x.mean(axis=-1).reshape(len(x), 8, 4, 8, 4).mean(axis=(2, 4)).reshape(len(x), -1)
    feats = np.hstack([hist, grey])
    return ((feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)).astype(np.float32)
