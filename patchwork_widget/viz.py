"""Figures for checking inputs by eye. Needs matplotlib (``pip install matplotlib``).

:func:`augplot` (feature I3) shows a few images beside augmented views of them, the quickest way
to see whether an augmentation setting destroys what the labels are about;
:func:`detcon_input_pipeline` (feature F7) shows DetCon's augmented pairs with their segments
and how often its sampling falls short.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from patchwork_widget.images.batch import read_images
from patchwork_widget.images.read import PathLike
from patchwork_widget.options.checks import check_int, check_paths, check_seed
from patchwork_widget.options.training import check_augment

logger = logging.getLogger(__name__)


def _displayable(img: np.ndarray) -> Tuple[np.ndarray, Optional[str]]:
    """RGB as is; one channel as gray; other counts show their first three (or first) bands."""
    if img.shape[-1] >= 3:
        return img[:, :, :3], None
    return img[:, :, 0], "gray"


def augplot(
    files: Sequence[PathLike],
    augment: Union[bool, Mapping[str, Any]],
    imshape: Tuple[int, int] = (256, 256),
    num_channels: int = 3,
    norm: Optional[float] = 255,
    single_channel: bool = False,
    num_images: int = 5,
    num_views: int = 4,
    seed: Optional[int] = None,
):
    """Plot ``num_images`` images (rows) beside ``num_views`` augmented views of each.

    Parameters
    ----------
    files : sequence of paths
        Images to draw from; a random ``num_images`` of them are shown (unreadable files are
        skipped).
    augment : bool or dict
        Augmentation parameters (:func:`~patchwork_widget.images.augment.validate_augment`).
    imshape, num_channels, norm, single_channel
        Reading options of :func:`~patchwork_widget.images.read.read_image`.
    num_images, num_views : int
        Rows and augmented columns.
    seed : int, optional
        Which files are picked (the augmentation itself follows TensorFlow's random state).

    Returns
    -------
    matplotlib.figure.Figure
        The first column holds the originals.
    """
    import matplotlib.pyplot as plt

    from patchwork_widget.images.augment import augment_batch, validate_augment

    files = check_paths("files", files)
    check_augment("augment", augment)
    params = validate_augment(augment)
    check_int("num_images", num_images, 1)
    check_int("num_views", num_views, 1)
    rng = np.random.default_rng(check_seed("seed", seed))
    pick = rng.choice(len(files), size=min(num_images, len(files)), replace=False)
    batch = read_images([files[i] for i in sorted(pick)], imshape, num_channels, norm,
                        single_channel)
    if not len(batch.arrays):
        raise ValueError("none of the chosen files could be read: "
                         + "; ".join(str(e) for _, e in batch.errors))
    originals = batch.arrays
    views = [augment_batch(originals, params).numpy() for _ in range(num_views)]
    n = len(originals)
    fig, axes = plt.subplots(n, num_views + 1, figsize=(2 * (num_views + 1), 2 * n),
                             squeeze=False)
    for i in range(n):
        for j, img in enumerate([originals[i]] + [v[i] for v in views]):
            shown, cmap = _displayable(img)
            ax = axes[i, j]
            ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=9)
    fig.tight_layout()
    return fig


def detcon_input_pipeline(
    files: Sequence[PathLike],
    augment: Union[bool, Mapping[str, Any]],
    mean_scale: float,
    num_samples: int,
    imshape: Tuple[int, int] = (256, 256),
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    num_pairs: int = 5,
    batch_size: int = 64,
) -> dict:
    """Run DetCon's input pipeline (feature F7) once over ``files`` and show what it makes.

    Segments every image as :class:`~patchwork_widget.feature.DetConTrainer` would with
    ``mean_scale`` and ``num_samples``, augments each twice with its masks, and counts how
    often the segments had to be sampled with replacement (fewer segments than
    ``num_samples``) and how many segment pairs the loss would discard (cropped out of a
    view). Tune ``mean_scale``, ``num_samples`` and the geometric augmentation (``zoom_scale``,
    ``shear``) together until both are low.

    Parameters
    ----------
    files : sequence of paths
        Images (a few hundred are plenty); batches of ``min(batch_size, len(files))``, the
        last partial batch left out.
    augment : bool or dict
        Augmentation parameters.
    mean_scale, num_samples
        As :class:`~patchwork_widget.feature.DetConTrainer`.
    imshape, num_channels, norm, single_channel
        Reading options.
    num_pairs : int
        Augmented pairs shown (rows: view 1, its segments, view 2, its segments).

    Returns
    -------
    dict
        ``images``, ``sampled_with_replacement`` (images), ``replacement_rate``, ``pairs``
        (``images * num_samples``), ``pairs_discarded``, ``discard_rate`` and ``figure`` (a
        matplotlib Figure).
    """
    import matplotlib.pyplot as plt

    from patchwork_widget.feature.segments import detcon_dataset, segment_present

    files = check_paths("files", files)
    check_augment("augment", augment)
    check_int("num_pairs", num_pairs, 1)
    check_int("batch_size", batch_size, 1)
    ds, _ = detcon_dataset(files, augment, mean_scale, num_samples, imshape=imshape,
                           num_channels=num_channels, norm=norm, single_channel=single_channel,
                           batch_size=min(batch_size, len(files)), shuffle=False,
                           with_stats=True)
    images = replaced = discarded = 0
    shown = []
    for (x1, m1), (x2, m2), rep in ds:
        images += int(x1.shape[0])
        replaced += int(np.sum(rep.numpy()))
        kept = np.logical_and(segment_present(m1).numpy(), segment_present(m2).numpy())
        discarded += int(np.sum(~kept))
        for i in range(min(num_pairs - len(shown), x1.shape[0])):
            shown.append((x1[i].numpy(), m1[i].numpy(), x2[i].numpy(), m2[i].numpy()))
    pairs = images * num_samples
    report = {"images": images, "sampled_with_replacement": replaced,
              "replacement_rate": replaced / max(images, 1), "pairs": pairs,
              "pairs_discarded": discarded, "discard_rate": discarded / max(pairs, 1)}
    logger.info("DetCon input pipeline: %s", report)

    fig, axes = plt.subplots(len(shown), 4, figsize=(8, 2 * len(shown)), squeeze=False)
    for row, (v1, s1, v2, s2) in enumerate(shown):
        for col, img in enumerate((v1, s1, v2, s2)):
            ax = axes[row, col]
            if col % 2:
                # each pixel coloured by its strongest segment; pixels outside all of them dark
                seg = np.where(img.max(axis=-1) > 0.5, img.argmax(axis=-1), -1)
                ax.imshow(np.ma.masked_less(seg, 0), cmap="tab20", vmin=0,
                          vmax=max(num_samples - 1, 1), interpolation="nearest")
                ax.set_facecolor("black")
            else:
                pic, cmap = _displayable(img)
                ax.imshow(pic, cmap=cmap, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(("view 1", "segments 1", "view 2", "segments 2")[col], fontsize=9)
    fig.suptitle(f"sampled with replacement: {report['replacement_rate']:.0%} of images; "
                 f"pairs discarded: {report['discard_rate']:.0%}", fontsize=9)
    fig.tight_layout()
    report["figure"] = fig
    return report
