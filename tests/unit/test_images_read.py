"""I1: reading images of every format and mode, options, errors and the batch reader."""

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from patchwork_widget.images import (
    SUPPORTED_EXTENSIONS,
    BatchResult,
    ImageReadError,
    read_array,
    read_image,
    read_images,
)
from patchwork_widget.images import read as read_module

RNG = np.random.default_rng(1234)
U8_RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
U8_GRAY = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
U16_GRAY = RNG.integers(0, 65536, (12, 10), dtype=np.uint16)


def expected(arr, norm=255.0):
    """Reference conversion: float32 division then clip, the documented rule."""
    out = np.asarray(arr).astype(np.float32) / np.float32(norm)
    return np.clip(out, 0, 1)


def save_pil(path, arr, **kwargs):
    Image.fromarray(arr).save(path, **kwargs)
    return path


# ----------------------------------------------------------------------------- formats and modes


def test_png_rgb_exact(tmp_path):
    p = save_pil(tmp_path / "a.png", U8_RGB)
    out = read_image(p)
    assert out.dtype == np.float32 and out.shape == (12, 10, 3)
    np.testing.assert_array_equal(out, expected(U8_RGB))


def test_png_gray_is_repeated_or_kept(tmp_path):
    p = save_pil(tmp_path / "g.png", U8_GRAY)
    assert read_array(p).shape == (12, 10, 1)
    np.testing.assert_array_equal(read_image(p, num_channels=1)[:, :, 0], expected(U8_GRAY))
    rgb = read_image(p)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], expected(U8_GRAY))


def test_png_rgba_truncates_alpha_or_keeps_it(tmp_path):
    rgba = RNG.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    p = save_pil(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(read_image(p), expected(rgba[:, :, :3]))
    np.testing.assert_array_equal(read_image(p, num_channels=4), expected(rgba))


def test_png_palette_maps_through_palette(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 30], [200, 200, 255]], np.uint8)
    idx = RNG.integers(0, 4, (7, 11), dtype=np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette(palette.ravel().tolist())
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected(palette[idx]))


def test_png_palette_with_transparency_reads_rgba(tmp_path):
    palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    idx = np.array([[0, 1], [1, 0]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette(palette.ravel().tolist())
    im.save(tmp_path / "t.png", transparency=1)
    out = read_image(tmp_path / "t.png", num_channels=4)
    np.testing.assert_array_equal(out[:, :, :3], expected(palette[idx]))
    np.testing.assert_array_equal(out[:, :, 3], (idx == 0).astype(np.float32))


def test_png_gray_alpha_reads_as_gray(tmp_path):
    la = Image.merge("LA", [Image.fromarray(U8_GRAY), Image.fromarray(255 - U8_GRAY)])
    la.save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out, np.repeat(expected(U8_GRAY)[:, :, None], 3, axis=2))


def test_png_16bit_gray(tmp_path):
    p = save_pil(tmp_path / "g16.png", U16_GRAY)
    np.testing.assert_array_equal(
        read_image(p, num_channels=1, norm=65535)[:, :, 0], expected(U16_GRAY, 65535)
    )


def test_jpeg_values_close(tmp_path):
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([yy * 8, xx * 8, (yy + xx) * 4], axis=-1).astype(np.uint8)
    p = save_pil(tmp_path / "a.jpg", smooth, quality=95)
    out = read_image(p)
    assert out.shape == (32, 32, 3)
    assert np.abs(out - expected(smooth)).mean() < 0.01
    assert np.abs(out - expected(smooth)).max() < 0.1


def test_tiff_uint8_rgb_exact(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", U8_RGB)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), expected(U8_RGB))


def test_tiff_16bit_norm_choices(tmp_path):
    tifffile.imwrite(tmp_path / "a.tiff", U16_GRAY)
    np.testing.assert_array_equal(read_array(tmp_path / "a.tiff")[:, :, 0], U16_GRAY)
    want = expected(U16_GRAY, 65535)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff", norm=65535)[:, :, 1], want)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff", norm=None)[:, :, 1], want)
    # the default norm follows the file's dtype: 16-bit data is not saturated (issue 10 item 6)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff")[:, :, 0], want)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff", norm=255)[:, :, 0],
                                  expected(U16_GRAY, 255))


def test_default_norm_follows_the_dtype(tmp_path):
    """Issue 10 item 6: 16-bit PNG, bool and float .npy read right without ``norm``."""
    save_pil(tmp_path / "g16.png", U16_GRAY)
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png", num_channels=1)[:, :, 0],
                                  expected(U16_GRAY, 65535))
    mask = RNG.random((5, 6)) > 0.5
    np.save(tmp_path / "mask.npy", mask)
    np.testing.assert_array_equal(read_image(tmp_path / "mask.npy", num_channels=1)[:, :, 0],
                                  mask.astype(np.float32))
    data = RNG.random((5, 6), dtype=np.float32)
    np.save(tmp_path / "f.npy", data)
    np.testing.assert_array_equal(read_image(tmp_path / "f.npy", num_channels=1)[:, :, 0], data)


def test_tiff_float32_clip_and_nan(tmp_path):
    data = RNG.uniform(-0.5, 1.5, (6, 7)).astype(np.float32)
    data[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", data)
    out = read_image(tmp_path / "f.tif", norm=1, num_channels=1)[:, :, 0]
    want = np.clip(data, 0, 1)
    want[0, 0] = 0.0
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif", norm=None, num_channels=1)[:, :, 0], want)
    np.testing.assert_array_equal(
        read_image(tmp_path / "f.tif", norm=2, num_channels=1)[1:, :, 0],
        np.clip(data[1:] / np.float32(2), 0, 1),
    )


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_tiff_five_bands(tmp_path, planar):
    bands = RNG.integers(0, 65536, (9, 8, 5), dtype=np.uint16)
    stored = bands if planar == "contig" else np.moveaxis(bands, -1, 0)
    tifffile.imwrite(tmp_path / "b.tif", stored, photometric="minisblack", planarconfig=planar)
    np.testing.assert_array_equal(read_array(tmp_path / "b.tif"), bands)
    np.testing.assert_array_equal(
        read_image(tmp_path / "b.tif", num_channels=5, norm=65535), expected(bands, 65535)
    )
    np.testing.assert_array_equal(
        read_image(tmp_path / "b.tif", norm=65535), expected(bands[:, :, :3], 65535)
    )


def test_tiff_lzw_without_imagecodecs_falls_back_to_pillow(tmp_path):
    Image.fromarray(U8_RGB).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), expected(U8_RGB))


def test_bmp_exact(tmp_path):
    p = save_pil(tmp_path / "a.bmp", U8_RGB)
    np.testing.assert_array_equal(read_image(p), expected(U8_RGB))


def test_gif_first_frame(tmp_path):
    first = np.zeros((10, 12, 3), np.uint8)
    first[::2] = (255, 0, 0)
    first[1::2] = (0, 0, 255)
    second = np.full((10, 12, 3), (0, 255, 0), np.uint8)
    frames = [Image.fromarray(a) for a in (first, second)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(tmp_path / "anim.gif") as im:
        assert im.n_frames == 2
    np.testing.assert_array_equal(read_image(tmp_path / "anim.gif"), expected(first))


def test_npy_2d_and_3d(tmp_path):
    np.save(tmp_path / "g.npy", U8_GRAY)
    np.testing.assert_array_equal(read_image(tmp_path / "g.npy"),
                                  np.repeat(expected(U8_GRAY)[:, :, None], 3, axis=2))
    data = RNG.random((5, 6, 4), dtype=np.float32)
    np.save(tmp_path / "f.npy", data)
    np.testing.assert_array_equal(read_image(tmp_path / "f.npy", num_channels=4, norm=1), data)
    np.testing.assert_array_equal(read_image(tmp_path / "f.npy", norm=1), data[:, :, :3])


def test_uppercase_extension_and_str_path(tmp_path):
    p = save_pil(tmp_path / "UP.PNG", U8_RGB)
    np.testing.assert_array_equal(read_image(str(p)), expected(U8_RGB))


# ------------------------------------------------------------------------------ channel handling


def test_truncate_channels(tmp_path):
    np.save(tmp_path / "m.npy", RNG.integers(0, 256, (4, 4, 7), dtype=np.uint8))
    raw = np.load(tmp_path / "m.npy")
    np.testing.assert_array_equal(read_image(tmp_path / "m.npy", num_channels=2),
                                  expected(raw[:, :, :2]))
    np.testing.assert_array_equal(read_image(tmp_path / "m.npy", num_channels=1),
                                  expected(raw[:, :, :1]))


def test_single_channel_repeats_first_channel(tmp_path):
    p = save_pil(tmp_path / "a.png", U8_RGB)
    out = read_image(p, single_channel=True, num_channels=4)
    assert out.shape == (12, 10, 4)
    for c in range(4):
        np.testing.assert_array_equal(out[:, :, c], expected(U8_RGB[:, :, 0]))


def test_too_few_channels_is_an_error(tmp_path):
    np.save(tmp_path / "two.npy", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageReadError, match="2 channels, fewer than num_channels=3"):
        read_image(tmp_path / "two.npy")
    p = save_pil(tmp_path / "a.png", U8_RGB)
    with pytest.raises(ImageReadError, match="3 channels"):
        read_image(p, num_channels=4)
    assert read_image(p, num_channels=4, single_channel=True).shape == (12, 10, 4)


# ---------------------------------------------------------------------------------- resizing


def test_resize_matches_pillow_bilinear_for_rgb(tmp_path):
    big = RNG.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    p = save_pil(tmp_path / "a.png", big)
    out = read_image(p, imshape=(16, 24))
    assert out.shape == (16, 24, 3) and out.dtype == np.float32
    ref = np.asarray(Image.fromarray(big).resize((24, 16), Image.BILINEAR)) / 255.0
    assert np.abs(out - ref).max() <= 1.01 / 255  # Pillow's 8-bit path rounds to integers


def test_resize_keeps_constant_bands_and_range_for_float_multiband(tmp_path):
    data = np.ones((20, 20, 5), np.float32) * np.linspace(0.1, 0.9, 5, dtype=np.float32)
    np.save(tmp_path / "c.npy", data)
    out = read_image(tmp_path / "c.npy", imshape=(7, 33), num_channels=5, norm=1)
    assert out.shape == (7, 33, 5)
    np.testing.assert_allclose(out, np.broadcast_to(data[0, 0], out.shape), atol=1e-6)
    noisy = RNG.random((50, 50, 5), dtype=np.float32)
    np.save(tmp_path / "n.npy", noisy)
    small = read_image(tmp_path / "n.npy", imshape=(10, 10), num_channels=5, norm=1)
    assert small.min() >= 0 and small.max() <= 1
    # antialiased downscale averages: a 5x shrink of uniform noise has a much smaller spread
    assert small.std() < noisy.std() / 2


def test_resize_gray_then_repeat(tmp_path):
    p = save_pil(tmp_path / "g.png", U8_GRAY)
    out = read_image(p, imshape=(6, 5))
    assert out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


def test_same_size_imshape_is_a_no_op(tmp_path):
    p = save_pil(tmp_path / "a.png", U8_RGB)
    np.testing.assert_array_equal(read_image(p, imshape=(12, 10)), expected(U8_RGB))


# -------------------------------------------------------------------------------------- errors


def first_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def assert_read_error(path, *fragments, **kwargs):
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert info.value.path == str(path)
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def test_missing_file(tmp_path):
    assert_read_error(tmp_path / "nope.png", "file not found")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert_read_error(tmp_path / "empty.jpg", "empty (0 bytes)")


def test_directory_named_like_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert_read_error(tmp_path / "dir.png", "not a regular file")


@pytest.mark.parametrize("ext", ["png", "jpg", "gif", "bmp"])
def test_truncated_pillow_formats(tmp_path, ext):
    noise = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    src = save_pil(tmp_path / f"full.{ext}", noise)
    assert read_image(src).shape == (64, 64, 3)
    bad = first_half(src, tmp_path / f"half.{ext}")
    assert_read_error(bad, "truncated")


def test_truncated_tiff_and_npy(tmp_path):
    tifffile.imwrite(tmp_path / "full.tif", RNG.integers(0, 65535, (64, 64, 3), dtype=np.uint16))
    assert_read_error(first_half(tmp_path / "full.tif", tmp_path / "half.tif"), "truncated")
    np.save(tmp_path / "full.npy", RNG.random((64, 64)))
    assert_read_error(first_half(tmp_path / "full.npy", tmp_path / "half.npy"), ".npy")


def test_truncated_is_not_hidden_by_pillow_flag(tmp_path, monkeypatch, caplog):
    src = save_pil(tmp_path / "full.png", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    bad = first_half(src, tmp_path / "half.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert_read_error(bad, "truncated")
    # if other code switches Pillow's flag on, Pillow stops raising: we say so in the log
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    monkeypatch.setattr(read_module, "_warned_load_truncated", False)
    with caplog.at_level(logging.WARNING, logger="patchwork_widget.images.read"):
        read_image(bad)
        read_image(bad)
    warnings = [r for r in caplog.records if "LOAD_TRUNCATED_IMAGES" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    "name, fragment",
    [("text.png", "not a recognised image"), ("text.jpeg", "not a recognised image"),
     ("text.tif", "not a valid TIFF"), ("text.npy", "not a readable .npy")],
)
def test_text_content_with_image_extension(tmp_path, name, fragment):
    (tmp_path / name).write_text("this is not an image\n" * 20)
    assert_read_error(tmp_path / name, fragment)


def test_corrupt_bytes_in_the_middle(tmp_path):
    src = save_pil(tmp_path / "a.png", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = bytearray(src.read_bytes())
    data[200:260] = bytes(60)
    (tmp_path / "bad.png").write_bytes(bytes(data))
    assert_read_error(tmp_path / "bad.png", "corrupt")


def test_npy_with_wrong_shape_or_dtype(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5))
    assert_read_error(tmp_path / "v.npy", "shape (5,)", "expected (H, W) or (H, W, C)")
    np.save(tmp_path / "c.npy", np.zeros((3, 3), np.complex64))
    assert_read_error(tmp_path / "c.npy", "complex64")
    np.save(tmp_path / "o.npy", np.array([[None]]), allow_pickle=True)
    assert_read_error(tmp_path / "o.npy", "not a readable .npy")


@pytest.mark.parametrize("name", ["a.txt", "a.webp", "noextension"])
def test_unsupported_extension_lists_allowed(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    err = assert_read_error(tmp_path / name, "unsupported extension")
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in str(err)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(imshape=(0, 5)), "imshape"), (dict(imshape=(5,)), "imshape"),
        (dict(imshape=(2.5, 3)), "imshape"), (dict(imshape="ab"), "imshape"),
        (dict(imshape=(True, 3)), "imshape"),
        (dict(num_channels=0), "num_channels"), (dict(num_channels=2.0), "num_channels"),
        (dict(norm=0), "norm"), (dict(norm=-1), "norm"), (dict(norm=float("nan")), "norm"),
        (dict(norm="255"), "norm"), (dict(single_channel="yes"), "single_channel"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, fragment):
    p = save_pil(tmp_path / "a.png", U8_RGB)
    assert_read_error(p, fragment, **kwargs)


def test_error_type_is_valueerror_and_pickles(tmp_path):
    err = ImageReadError(tmp_path / "x.png", "file not found")
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.cause, str(back)) == (err.path, err.cause, str(err))


# -------------------------------------------------------------------------------- batch reader


@pytest.fixture
def mixed_files(tmp_path):
    a = save_pil(tmp_path / "a.png", U8_RGB)
    (tmp_path / "empty.png").write_bytes(b"")
    b = tmp_path / "b.tif"
    tifffile.imwrite(b, U8_RGB[::-1])
    (tmp_path / "notes.txt").write_text("hello")
    trunc = first_half(save_pil(tmp_path / "full.jpg", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                       tmp_path / "half.jpg")
    np.save(tmp_path / "c.npy", U8_GRAY)
    paths = [a, tmp_path / "missing.png", tmp_path / "empty.png", b, tmp_path / "notes.txt",
             trunc, tmp_path / "c.npy"]
    return paths


@pytest.mark.parametrize("num_workers", [1, 3])
def test_batch_reader_keeps_going(mixed_files, num_workers):
    res = read_images(mixed_files, num_workers=num_workers)
    assert isinstance(res, BatchResult)
    np.testing.assert_array_equal(res.good_index, [0, 3, 6])
    assert res.arrays.shape == (3, 12, 10, 3) and res.arrays.dtype == np.float32
    for row, i in zip(res.arrays, res.good_index):
        np.testing.assert_array_equal(row, read_image(mixed_files[i]))
    assert [p for p, _ in res.errors] == [str(mixed_files[i]) for i in (1, 2, 4, 5)]
    causes = [e.cause for _, e in res.errors]
    assert "not found" in causes[0] and "empty" in causes[1]
    assert "unsupported extension" in causes[2] and "truncated" in causes[3]
    assert all(isinstance(e, ImageReadError) and e.path == p for p, e in res.errors)


def test_batch_sizes_must_agree_without_imshape(tmp_path):
    paths = [save_pil(tmp_path / "a.png", U8_RGB),
             save_pil(tmp_path / "big.png", np.zeros((20, 20, 3), np.uint8)),
             save_pil(tmp_path / "c.png", U8_RGB)]
    res = read_images(paths)
    np.testing.assert_array_equal(res.good_index, [0, 2])
    assert res.errors[0][0] == str(paths[1]) and "pass imshape" in str(res.errors[0][1])
    resized = read_images(paths, imshape=(8, 8), num_channels=1)
    assert resized.arrays.shape == (3, 8, 8, 1) and not resized.errors


def test_batch_all_bad_and_empty(tmp_path):
    res = read_images([tmp_path / "x.png", tmp_path / "y.png"], imshape=(4, 5))
    assert res.arrays.shape == (0, 4, 5, 3) and len(res.good_index) == 0 and len(res.errors) == 2
    res = read_images(iter([]))
    assert res.arrays.shape == (0, 0, 0, 3) and res.errors == []


def test_batch_bad_options_fail_before_reading(tmp_path):
    with pytest.raises(ValueError, match="num_workers"):
        read_images([tmp_path / "x.png"], num_workers=0)
    with pytest.raises(ValueError, match="imshape"):
        read_images([tmp_path / "x.png"], imshape=(-1, 2))


def test_no_tensorflow_import():
    import subprocess
    import sys

    code = ("import sys, patchwork_widget.images, patchwork_widget.datasets; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
