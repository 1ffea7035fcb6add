"""Issue 10 item 3, FEATURES I1: a corpus of bad files through every image reader.

Each reader (read_image, read_images, thumbnails, feature extraction, the tf.data loader)
reports every bad file with its path and cause and reads every good one. Bounded time and
memory are checked by structure: a FIFO or device is never opened, and an image over the
limits is refused from its header (the refusal names the limit), before any decoding.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from patchwork_widget.images import (
    BadFiles,
    ImageReadError,
    ReadLimits,
    read_image,
    read_images,
)
from patchwork_widget.images import guard as guard_module
from patchwork_widget.images.extract import extract_features
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache

RNG = np.random.default_rng(7)
#: Small limits so that real decompression bombs stay cheap to build.
LIMITS = ReadLimits(max_pixels=1_000_000, max_bytes=16 * 2**20)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (the body is one tiny row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def _encoded(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(good name -> path, bad name -> (path, words the cause must contain))."""
    d = tmp_path_factory.mktemp("corpus")
    good: dict[str, str] = {}
    bad: dict[str, tuple[str, str]] = {}

    def put(name: str, data: bytes) -> str:
        (d / name).write_bytes(data)
        return str(d / name)

    rgb = RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    good["rgb.png"] = put("rgb.png", _encoded(rgb, "PNG"))
    good["rgb.jpg"] = put("rgb.jpg", _encoded(rgb, "JPEG", quality=90))
    good["gray16.png"] = put(
        "gray16.png", _encoded(RNG.integers(0, 65536, (24, 24), dtype=np.uint16), "PNG")
    )
    good["cmyk.jpg"] = put("cmyk.jpg", _cmyk_jpeg(rgb))
    good["bilevel.png"] = put("bilevel.png", _bilevel_png())
    good["jpeg_named.png"] = put("jpeg_named.png", _encoded(rgb, "JPEG"))
    tifffile.imwrite(d / "bands16.tif", RNG.integers(0, 65536, (24, 24, 5), dtype=np.uint16))
    good["bands16.tif"] = str(d / "bands16.tif")
    np.save(d / "float.npy", RNG.random((24, 24, 3), dtype=np.float32))
    good["float.npy"] = str(d / "float.npy")
    np.save(d / "bool.npy", RNG.random((24, 24)) > 0.5)
    good["bool.npy"] = str(d / "bool.npy")

    png = _encoded(rgb, "PNG")
    jpeg = _encoded(rgb, "JPEG", quality=90)
    bad["missing.png"] = (str(d / "missing.png"), "file not found")
    bad["empty.png"] = (put("empty.png", b""), "file is empty")
    bad["truncated.png"] = (put("truncated.png", png[: len(png) // 2]), "truncated")
    bad["truncated.jpg"] = (put("truncated.jpg", jpeg[: len(jpeg) // 2]), "truncated")
    tif = io.BytesIO()
    tifffile.imwrite(tif, RNG.integers(0, 65536, (64, 64), dtype=np.uint16))
    bad["truncated.tif"] = (put("truncated.tif", tif.getvalue()[:-3000]), "corrupt")
    bad["text.png"] = (put("text.png", b"this is not an image\n" * 20), "not a recognised image")
    os.mkfifo(d / "fifo.png")
    bad["fifo.png"] = (str(d / "fifo.png"), "not a regular file: it is a FIFO")
    os.symlink("/dev/zero", d / "zero.png")
    bad["zero.png"] = (str(d / "zero.png"), "not a regular file: it is a device")
    os.mkdir(d / "folder.png")
    bad["folder.png"] = (str(d / "folder.png"), "not a regular file: it is a folder")
    # decompression bombs: 2000 x 2000 = 4 megapixels in a few kilobytes
    bad["bomb.png"] = (put("bomb.png", _encoded(np.zeros((2000, 2000), np.uint8), "PNG")),
                       "over the limit of 1,000,000 (ReadLimits.max_pixels)")
    bad["bomb.jpg"] = (put("bomb.jpg", _encoded(np.zeros((2000, 2000), np.uint8), "JPEG")),
                       "over the limit of 1,000,000 (ReadLimits.max_pixels)")
    tifffile.imwrite(d / "bomb.tif", np.zeros((2000, 2000), np.uint16), compression="zlib")
    bad["bomb.tif"] = (str(d / "bomb.tif"), "over the limit of 1,000,000")
    bad["header_bomb.png"] = (put("header_bomb.png", _header_only_png(20000, 20000)),
                              "over the limit")
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.float64))
    header["shape"] = (100_000, 100_000)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    bad["bomb.npy"] = (put("bomb.npy", npy.getvalue() + b"\0" * 64), "over the limit")
    return good, bad


def _cmyk_jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def _bilevel_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.random((24, 24)) > 0.5).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every path the readers open with ``os.open``."""
    calls: list[str] = []
    real = os.open

    def spy(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(guard_module.os, "open", spy)
    return calls


def _check_never_opened(opened: list[str], bad: dict) -> None:
    for name in ("fifo.png", "zero.png", "folder.png"):
        assert bad[name][0] not in opened, f"{name} was opened"


def test_read_image_reports_every_bad_file_and_reads_every_good_one(corpus, opened) -> None:
    good, bad = corpus
    for name, (path, cause) in bad.items():
        with pytest.raises(ImageReadError) as caught:
            read_image(path, imshape=(24, 24), limits=LIMITS)
        assert caught.value.path == path, name
        assert cause in caught.value.cause, (name, caught.value.cause)
        assert path in str(caught.value)
    for name, path in good.items():
        out = read_image(path, imshape=(24, 24), limits=LIMITS)
        assert out.shape == (24, 24, 3) and 0 <= out.min() and out.max() <= 1, name
    _check_never_opened(opened, bad)


def test_default_limits_refuse_a_20000_pixel_square_png(corpus) -> None:
    _, bad = corpus
    with pytest.raises(ImageReadError, match="over the limit of 100,000,000 pixels"):
        read_image(bad["header_bomb.png"][0])


def test_read_images_lists_every_bad_file(corpus, opened) -> None:
    good, bad = corpus
    paths = list(good.values()) + [path for path, _ in bad.values()]
    result = read_images(paths, imshape=(24, 24), limits=LIMITS, num_workers=2)
    assert result.good_index.tolist() == list(range(len(good)))
    assert len(result.arrays) == len(good)
    causes = {path: error.cause for path, error in result.errors}
    assert set(causes) == {path for path, _ in bad.values()}
    for name, (path, cause) in bad.items():
        assert cause in causes[path], name
    _check_never_opened(opened, bad)


def test_thumbnails_report_every_bad_file(corpus, opened) -> None:
    good, bad = corpus
    cache = ThumbnailCache(DisplayOptions(size=(16, 16)), limits=LIMITS)
    for path in good.values():
        assert cache.get(path)
    for name, (path, cause) in bad.items():
        with pytest.raises(ImageReadError, match=cause.replace("(", r"\(").replace(")", r"\)")):
            cache.get(path)
    _check_never_opened(opened, bad)


def test_extraction_lists_every_bad_file(corpus) -> None:
    good, bad = corpus
    paths = list(good.values()) + [path for path, _ in bad.values()]
    out = extract_features(paths, lambda x: x.mean(axis=(1, 2)), imshape=(24, 24),
                           batch_size=7, progress=False, limits=LIMITS)
    assert out.failed.tolist() == [False] * len(good) + [True] * len(bad)
    assert [path for path, _ in out.errors] == [path for path, _ in bad.values()]


def test_tf_data_loader_skips_and_records_every_bad_file(corpus, opened) -> None:
    pytest.importorskip("tensorflow")
    from patchwork_widget.images.pipeline import dataset

    good, bad = corpus
    paths = list(good.values()) + [path for path, _ in bad.values()]
    bad_files = BadFiles()
    ds, _ = dataset(paths, imshape=(24, 24), batch_size=4, shuffle=False, limits=LIMITS,
                    bad_files=bad_files)
    images = np.concatenate([batch.numpy() for batch in ds])
    assert len(images) == len(good)
    for path, got in zip(good.values(), images):
        np.testing.assert_allclose(got, read_image(path, (24, 24), limits=LIMITS), atol=1e-6)
    causes = dict(bad_files.items())
    assert set(causes) == {path for path, _ in bad.values()}
    for name, (path, cause) in bad.items():
        assert cause in causes[path], name
    _check_never_opened(opened, bad)


def test_tf_data_loader_can_stop_at_the_first_bad_file(corpus) -> None:
    tf = pytest.importorskip("tensorflow")

    from patchwork_widget.images.pipeline import dataset

    good, bad = corpus
    path = bad["fifo.png"][0]
    ds, _ = dataset([good["rgb.png"], path], imshape=(24, 24), shuffle=False,
                    skip_errors=False, limits=LIMITS)
    with pytest.raises(tf.errors.OpError, match="fifo.png.*not a regular file: it is a FIFO"):
        list(ds)


def test_read_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_pixels must be an int >= 1; got 0"):
        ReadLimits(max_pixels=0)
    with pytest.raises(ValueError, match="max_bytes must be an int >= 1; got 1.5"):
        ReadLimits(max_bytes=1.5)
    with pytest.raises(ValueError, match="limits must be a ReadLimits or None; got 5"):
        read_images([], limits=5)


def test_bad_files_record_the_first_cause_once() -> None:
    record = BadFiles()
    record.add(ImageReadError("a.png", "file not found"))
    record.add(ImageReadError("a.png", "something else"))
    record.add(ImageReadError(Path("b.png"), "file is empty (0 bytes)"))
    assert record.items() == [("a.png", "file not found"), ("b.png", "file is empty (0 bytes)")]
    assert len(record) == 2 and "a.png" in record


def test_only_plain_8bit_png_and_jpeg_take_tensorflows_decoder(corpus) -> None:
    from patchwork_widget.images.sniff import fast_path_ok

    good, bad = corpus
    assert fast_path_ok(good["rgb.png"], "PNG", LIMITS)
    assert fast_path_ok(good["bilevel.png"], "PNG", LIMITS)
    assert fast_path_ok(good["rgb.jpg"], "JPEG", LIMITS)
    assert not fast_path_ok(good["gray16.png"], "PNG", LIMITS)  # read_image keeps 16 bits
    assert not fast_path_ok(good["cmyk.jpg"], "JPEG", LIMITS)
    assert not fast_path_ok(good["jpeg_named.png"], "PNG", LIMITS)
    for name in ("missing.png", "empty.png", "truncated.png", "text.png", "fifo.png",
                 "zero.png", "folder.png", "bomb.png", "header_bomb.png"):
        assert not fast_path_ok(bad[name][0], "PNG", LIMITS), name
    for name in ("truncated.jpg", "bomb.jpg"):
        assert not fast_path_ok(bad[name][0], "JPEG", LIMITS), name
