"""Figures for checking inputs by eye. Needs matplotlib (``pip install matplotlib``).

:func:`augplot` (feature I3) shows a few images beside augmented views of them, the quickest way
to see whether an augmentation setting destroys what the labels are about.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from patchwork_widget.images.batch import read_images
from patchwork_widget.images.read import PathLike

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

    params = validate_augment(augment)
    if num_images < 1 or num_views < 1:
        raise ValueError(f"num_images and num_views must be >= 1; got {num_images}, {num_views}")
    rng = np.random.default_rng(seed)
    files = list(files)
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
