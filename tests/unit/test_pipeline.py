"""I2: the tf.data pipeline decodes like read_image, pairs targets, batches, caches, feeds fit."""

import numpy as np
import pytest
import tifffile
from PIL import Image

tf = pytest.importorskip("tensorflow")

from patchwork_widget import loaders
from patchwork_widget.images import BadFiles
from patchwork_widget.images.pipeline import dataset, decoder_kinds
from patchwork_widget.images.read import read_image

RNG = np.random.default_rng(3)


def u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file per format and mode, all 20x20."""
    d = tmp_path_factory.mktemp("formats")
    out = {}

    def pil(name, arr, **kw):
        Image.fromarray(arr).save(d / name, **kw)
        out[name] = str(d / name)

    pil("rgb.png", u8(20, 20, 3))
    pil("gray.png", u8(20, 20))
    pil("rgba.png", u8(20, 20, 4))
    pil("la.png", np.asarray(Image.fromarray(u8(20, 20, 4)).convert("LA")))
    pil("gray16.png", RNG.integers(0, 65536, (20, 20), dtype=np.uint16))
    pil("palette.png", np.asarray(Image.fromarray(u8(20, 20, 3)).convert("P")))
    pil("rgb.jpg", u8(20, 20, 3), quality=90)
    pil("gray.jpg", u8(20, 20), quality=90)
    pil("rgb.bmp", u8(20, 20, 3))
    Image.fromarray(u8(20, 20, 3)).convert("P").save(d / "anim.gif")
    out["anim.gif"] = str(d / "anim.gif")
    tifffile.imwrite(d / "bands.tif", RNG.integers(0, 65536, (20, 20, 5), dtype=np.uint16))
    out["bands.tif"] = str(d / "bands.tif")
    np.save(d / "arr.npy", RNG.random((20, 20, 3)).astype(np.float32))
    out["arr.npy"] = str(d / "arr.npy")
    return out


def collect(ds):
    return np.concatenate([b.numpy() for b in ds])


def test_loaders_dataset_is_the_pipeline():
    assert loaders.dataset is dataset


def test_decoders_are_chosen_by_extension():
    kinds = decoder_kinds(["a.png", "b.JPG", "c.jpeg", "d.tif", "e.npy", "f.bmp", "g.gif"])
    assert kinds.tolist() == [0, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize("norm", [255, None])
def test_every_format_decodes_exactly_like_read_image(files, norm):
    paths = list(files.values())
    ds, steps = dataset(paths, imshape=(20, 20), norm=norm, batch_size=5, shuffle=False)
    assert steps == 3
    out = collect(ds)
    for p, got in zip(paths, out):
        np.testing.assert_array_equal(got, read_image(p, (20, 20), 3, norm), err_msg=p)


@pytest.mark.parametrize("names", [["gray16.png", "rgb.png", "la.png"], ["rgb.jpg", "gray.jpg"],
                                   ["bands.tif", "arr.npy"]])
def test_lists_of_one_decoder_kind_decode_like_read_image(files, names):
    paths = [files[n] for n in names]
    out = collect(dataset(paths, imshape=(20, 20), norm=None, shuffle=False)[0])
    for p, got in zip(paths, out):
        np.testing.assert_array_equal(got, read_image(p, (20, 20), 3, None), err_msg=p)


def test_channel_options_match_read_image(files):
    paths = [files["rgb.png"], files["gray.png"], files["rgba.png"], files["bands.tif"]]
    for kw in ({"num_channels": 1}, {"num_channels": 3, "single_channel": True}):
        out = collect(dataset(paths, imshape=(20, 20), shuffle=False, **kw)[0])
        for p, got in zip(paths, out):
            np.testing.assert_array_equal(got, read_image(p, (20, 20), **kw), err_msg=p)
    out = collect(dataset([files["rgba.png"], files["bands.tif"]], imshape=(20, 20),
                          num_channels=4, norm=None, shuffle=False)[0])
    np.testing.assert_array_equal(out[0], read_image(files["rgba.png"], (20, 20), 4, None))
    np.testing.assert_array_equal(out[1], read_image(files["bands.tif"], (20, 20), 4, None))


def test_too_few_channels_is_an_error(files):
    ds, _ = dataset([files["rgb.png"]], imshape=(20, 20), num_channels=4, skip_errors=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="fewer channels"):
        collect(ds)
    ds, _ = dataset([files["rgb.png"], files["rgba.png"]], imshape=(20, 20), num_channels=4,
                    shuffle=False)
    assert len(collect(ds)) == 1  # skipped by default


def test_resizing_is_close_to_pillows(files):
    paths = [files["rgb.png"], files["rgb.jpg"], files["bands.tif"]]
    out = collect(dataset(paths, imshape=(12, 14), norm=None, shuffle=False)[0])
    assert out.shape == (3, 12, 14, 3)
    for p, got in zip(paths, out):
        ref = read_image(p, (12, 14), 3, None)
        assert np.abs(got - ref).mean() < 0.03, p


def test_targets_stay_with_their_images_when_shuffled(tmp_path):
    paths = []
    for i in range(23):  # image i is filled with the value i
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(p)
        paths.append(str(p))
    ys = np.stack([np.arange(23), np.full(23, np.nan)], axis=1)
    ds, steps = dataset(paths, ys, imshape=(8, 8), batch_size=5, shuffle=True)
    assert steps == 5
    seen = []
    for x, y in ds:
        assert x.shape[1:] == (8, 8, 3) and y.shape[1] == 2
        np.testing.assert_array_equal(np.round(x.numpy()[:, 0, 0, 0] * 255), y.numpy()[:, 0])
        assert np.isnan(y.numpy()[:, 1]).all()
        seen += y.numpy()[:, 0].tolist()
    assert sorted(seen) == list(range(23)) and seen != list(range(23))


def test_drop_remainder_and_repeat(tmp_path):
    arr = u8(10, 6, 6, 3)
    ds, steps = dataset(arr, imshape=(6, 6), batch_size=4, drop_remainder=True)
    assert steps == 2 and [b.shape[0] for b in ds] == [4, 4]
    ds, steps = dataset(arr, imshape=(6, 6), batch_size=4, repeat=True)
    assert steps == 3 and [b.shape[0] for b in ds.take(7)] == [4] * 7  # batches span passes


def test_in_memory_arrays_follow_the_file_rules():
    arr = u8(7, 6, 6, 3)
    out = collect(dataset(arr, imshape=(6, 6), batch_size=3, shuffle=False)[0])
    np.testing.assert_array_equal(out, arr.astype(np.float32) / np.float32(255))
    gray = u8(4, 6, 6)
    out = collect(dataset(gray, imshape=(3, 3), batch_size=4, shuffle=False)[0])
    assert out.shape == (4, 3, 3, 3) and np.array_equal(out[..., 0], out[..., 2])
    floats = RNG.random((3, 6, 6, 3)).astype(np.float32)
    out = collect(dataset(floats, imshape=(6, 6), norm=1, shuffle=False)[0])
    np.testing.assert_allclose(out, floats)


def test_cache_gives_the_same_images_every_pass():
    arr = u8(9, 6, 6, 3)
    ds, _ = dataset(arr, imshape=(6, 6), batch_size=9, cache=True)
    first, second = collect(ds), collect(ds)
    key = lambda a: sorted(map(bytes, (a * 255).astype(np.uint8)))
    assert key(first) == key(second) == key(arr.astype(np.float32) / 255)


def test_augmentation_in_the_pipeline_keeps_range_and_shape():
    arr = u8(12, 16, 16, 3)
    ds, _ = dataset(arr, np.ones((12, 2)), imshape=(16, 16), batch_size=5, augment=True)
    for x, y in ds:
        assert x.shape[1:] == (16, 16, 3) and y.shape[1] == 2
        assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0


def test_bad_files_fail_or_are_skipped(files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all" * 4)
    paths = [files["rgb.png"], str(bad), files["bands.tif"], str(tmp_path / "missing.tif")]
    with pytest.raises(tf.errors.OpError, match="bad.png.*not a recognised image"):
        collect(dataset(paths, imshape=(20, 20), shuffle=False, skip_errors=False)[0])
    bad_files = BadFiles()
    out = collect(dataset(paths, imshape=(20, 20), shuffle=False, bad_files=bad_files)[0])
    assert len(out) == 2  # skipped by default (I1)
    assert dict(bad_files.items()) == {
        str(bad): "not a recognised image (Pillow cannot identify it)",
        str(tmp_path / "missing.tif"): "file not found",
    }


@pytest.mark.parametrize("bad", [{"imshape": None}, {"batch_size": 0}, {"augment": {"x": 1}},
                                 {"cache": 3}])
def test_options_are_checked(files, bad):
    kw = {"imshape": (20, 20), **bad}
    with pytest.raises(ValueError):
        dataset([files["rgb.png"]], **kw)


def test_feeds_keras_fit_directly():
    import keras

    arr = u8(16, 8, 8, 3)
    ys = RNG.integers(0, 2, (16, 2)).astype(np.float32)
    ds, steps = dataset(arr, ys, imshape=(8, 8), batch_size=8, augment={"flip_left_right": True})
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    hist = model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(hist.history["loss"][0])


def test_pair_dataset_views_are_flips_of_the_clipped_images():
    from patchwork_widget.feature.data import pair_dataset

    rng = np.random.default_rng(3)
    images = rng.uniform(-1.0, 2.0, (8, 6, 6, 3)).astype(np.float32)  # out of [0, 1]
    flips = {"flip_left_right": True, "flip_up_down": True, "rot90": True}
    ds, steps = pair_dataset(tf.data.Dataset.from_tensor_slices(images), flips, (6, 6),
                             batch_size=4)
    clipped = np.clip(images, 0.0, 1.0)
    dihedral = [np.rot90(f(img), k) for img in clipped
                for f in (lambda t: t, np.fliplr) for k in range(4)]
    seen = 0
    for view1, view2 in ds:
        for view in (view1.numpy(), view2.numpy()):
            for out in view:
                assert any(np.array_equal(out, d) for d in dihedral)
        seen += len(view1)
    assert steps == 2 and seen == 8


def test_fast_path_checks_run_per_chunk_and_send_failures_to_read_image(files, tmp_path):
    from pathlib import Path

    from patchwork_widget.images.decode import kind_sniffer

    data = Path(files["rgb.png"]).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])                   # truncated
    (tmp_path / "jpeg.png").write_bytes(Path(files["rgb.jpg"]).read_bytes())     # wrong format
    paths = [files["rgb.png"], files["gray16.png"], str(tmp_path / "cut.png"),
             str(tmp_path / "jpeg.png"), files["rgb.jpg"], files["bands.tif"]]
    kinds = kind_sniffer()(tf.constant(paths), tf.constant(decoder_kinds(paths))).numpy()
    np.testing.assert_array_equal(kinds, [0, 2, 2, 2, 1, 2])
    bad = BadFiles()
    ds, _ = dataset(paths, imshape=(20, 20), shuffle=False, batch_size=4, bad_files=bad)
    got = collect(ds)
    assert len(got) == 5 and [p for p, _ in bad.items()] == [str(tmp_path / "cut.png")]
    np.testing.assert_allclose(got[0], read_image(paths[0], (20, 20)), atol=1e-6)
    np.testing.assert_allclose(got[2], read_image(paths[3], (20, 20)), atol=1e-6)


@pytest.mark.parametrize("size, imshape", [((333, 170), (20, 20)), ((640, 480), (64, 64)),
                                           ((90, 90), (20, 20)), ((79, 200), (20, 20)),
                                           ((50, 40), (64, 64))])
def test_a_large_jpeg_is_decoded_at_the_reduced_size_read_image_uses(tmp_path, size, imshape):
    """The ratio given to TensorFlow's JPEG decoder is Pillow's draft scale in read_image
    (at least twice imshape on each side), so both readers start from the same pixels."""
    from patchwork_widget.images.decode import _JPEG_RATIOS, _jpeg_ratio
    from patchwork_widget.images.read import REDUCING_GAP

    path = tmp_path / "a.jpg"
    Image.fromarray(u8(size[1], size[0], 3)).save(path, quality=90)
    contents = tf.io.read_file(str(path))
    ratio = _JPEG_RATIOS[int(_jpeg_ratio(tf.io.extract_jpeg_shape(contents), imshape))]
    decoded = tf.io.decode_jpeg(contents, ratio=ratio).shape
    with Image.open(path) as im:
        im.draft(im.mode, (imshape[1] * REDUCING_GAP, imshape[0] * REDUCING_GAP))
        assert (decoded[1], decoded[0]) == im.size
    out = collect(dataset([str(path)], imshape=imshape, shuffle=False)[0])[0]
    assert np.abs(out - read_image(path, imshape)).mean() < 0.03
