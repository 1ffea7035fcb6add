"""Display thumbnails: size, stretch, band choice, encoding and the LRU cache."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from patchwork_widget.images import ImageReadError
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache, display_array, encode_thumbnail


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_8bit_images_are_shown_as_stored():
    raw = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    np.testing.assert_array_equal(display_array(raw, DisplayOptions()), raw)


def test_16bit_images_get_a_percentile_stretch_per_band():
    rng = np.random.default_rng(0)
    raw = rng.integers(1000, 3000, (50, 50, 1)).astype(np.uint16)
    out = display_array(raw, DisplayOptions())
    low, high = np.percentile(raw, [2, 98])
    expected = np.clip((raw[:, :, 0].astype(np.float32) - low) / (high - low), 0, 1) * 255 + 0.5
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    assert out.min() == 0 and out.max() == 255


def test_band_choice_picks_bands_of_a_multispectral_image():
    raw = np.stack([np.full((8, 8), v, np.float32) for v in range(6)], axis=-1)
    raw[0, 0] = 10.0  # give each band a range
    opts = DisplayOptions(bands=(5, 3, 1), stretch=(0, 100))
    out = display_array(raw, opts)
    assert out.shape == (8, 8, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == [0, 0, 0]
    gray = display_array(raw, DisplayOptions(bands=(2,)))
    assert gray.shape == (8, 8)
    with pytest.raises(ValueError, match=r"bands \(7,\) asked of an image with 6 band"):
        display_array(raw, DisplayOptions(bands=(7,)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": (0, 10)}, "size must be two positive ints"),
        ({"bands": (0, 1)}, "one or three bands"),
        ({"stretch": (50, 10)}, "percentiles"),
        ({"fmt": "gif"}, "fmt must be one of"),
        ({"quality": 0}, "quality"),
    ],
)
def test_bad_display_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DisplayOptions(**kwargs)


def test_thumbnails_fit_the_display_size_and_keep_the_aspect_ratio(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((200, 400, 3), np.uint8)).save(big)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(small)
    opts = DisplayOptions(size=(100, 100), fmt="png")
    assert decode(encode_thumbnail(str(big), opts)).shape == (50, 100, 3)
    assert decode(encode_thumbnail(str(small), opts)).shape == (50, 100, 3)  # scaled up, crisp


def test_a_multiband_tiff_becomes_a_jpeg(tmp_path):
    path = tmp_path / "scene.tif"
    tifffile.imwrite(path, np.random.default_rng(1).integers(0, 4096, (32, 32, 5)).astype(np.uint16),
                     photometric="minisblack", planarconfig="contig")
    data = encode_thumbnail(str(path), DisplayOptions(size=(32, 32)))
    assert data[:2] == b"\xff\xd8" and decode(data).shape == (32, 32, 3)


def test_cache_encodes_once_and_evicts_the_least_recent(tmp_path, monkeypatch):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.full((4, 4), i, np.uint8)).save(paths[-1])
    calls = []
    import patchwork_widget.images.thumbnails as thumbnails

    real = thumbnails.encode_thumbnail
    monkeypatch.setattr(
        thumbnails, "encode_thumbnail", lambda p, o, lim: calls.append(p) or real(p, o, lim)
    )
    cache = ThumbnailCache(DisplayOptions(size=(4, 4)), maxsize=2)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first and calls == [paths[0]]
    cache.get(paths[1])
    cache.get(paths[0])  # 0 is now the most recent
    cache.get(paths[2])  # evicts 1
    assert len(cache) == 2
    cache.get(paths[1])
    assert calls == [paths[0], paths[1], paths[2], paths[1]]


def test_unreadable_files_raise_image_read_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    with pytest.raises(ImageReadError, match="broken.png"):
        ThumbnailCache().get(str(path))
