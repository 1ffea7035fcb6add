"""I3: every augmentation key does what docs/training.md says; validation; channel counts."""

import numpy as np
import pytest
import tensorflow as tf

from patchwork_widget.images.augment import (
    AUGMENT_KEYS,
    DEFAULT_AUGMENT,
    augment_batch,
    augment_image,
    validate_augment,
)

RNG = np.random.default_rng(7)
N = 64


@pytest.fixture(autouse=True)
def tf_seed():
    """Statistical checks below have wide bounds; a fixed seed also makes them repeatable."""
    tf.random.set_seed(1234)


def batch(c=3, h=16, w=16, lo=0.0, hi=1.0, n=N):
    return RNG.uniform(lo, hi, (n, h, w, c)).astype(np.float32)


def run(x, params):
    return augment_batch(x, params).numpy()


# ----------------------------------------------------------------------------- validation


def test_true_means_documented_defaults_and_false_means_off():
    on = validate_augment(True)
    assert set(on) == set(AUGMENT_KEYS)
    for k in AUGMENT_KEYS:
        assert on[k] == DEFAULT_AUGMENT.get(k, False if k in ("flip_left_right", "flip_up_down",
                                                              "rot90") else 0.0)
    off = validate_augment(False)
    assert not any(off.values()) and validate_augment(None) == off
    assert validate_augment({"mask": 0.3})["mask"] == 0.3
    assert validate_augment({"mask": 0.3})["zoom_scale"] == 0.0  # keys not given are off


def test_the_vocabulary_has_every_required_key():
    required = {"flip_left_right", "flip_up_down", "rot90", "zoom_scale", "center_zoom_scale",
                "jitter", "brightness_delta", "contrast_delta", "saturation_delta", "hue_delta",
                "gaussian_blur", "gaussian_noise", "drop_color", "sobel_prob", "jpeg_degrade",
                "mask", "shear", "solarize", "autocontrast"}
    assert required <= set(AUGMENT_KEYS)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as e:
        validate_augment({"flip_left_rigth": True})
    msg = str(e.value)
    assert "flip_left_rigth" in msg
    for k in AUGMENT_KEYS:
        assert k in msg


@pytest.mark.parametrize("bad", [
    {"gaussian_blur": 1.5}, {"gaussian_blur": True}, {"hue_delta": 0.6}, {"flip_up_down": 1},
    {"zoom_scale": -0.1}, {"jitter": "strong"}, {"mask": float("nan")},
])
def test_bad_values_are_rejected_with_the_allowed_range(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        validate_augment(bad)


def test_not_a_dict_is_rejected():
    with pytest.raises(ValueError, match="augment must be"):
        validate_augment("yes")


# ----------------------------------------------------------------------------- geometry is exact


def test_flip_left_right_is_exact_and_random():
    x = batch()
    y = run(x, {"flip_left_right": True})
    same = [np.array_equal(a, b) for a, b in zip(y, x)]
    flipped = [np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x)]
    assert all(s or f for s, f in zip(same, flipped))
    assert 0 < sum(flipped) < N


def test_flip_up_down_is_exact_and_random():
    x = batch()
    y = run(x, {"flip_up_down": True})
    flipped = [np.array_equal(a, b[::-1]) for a, b in zip(y, x)]
    same = [np.array_equal(a, b) for a, b in zip(y, x)]
    assert all(s or f for s, f in zip(same, flipped))
    assert 0 < sum(flipped) < N


def test_rot90_uses_all_four_quarter_turns_exactly():
    x = batch()
    y = run(x, {"rot90": True})
    turns = []
    for a, b in zip(y, x):
        k = [t for t in range(4) if np.array_equal(a, np.rot90(b, t))]
        assert k, "output is not a quarter turn of the input"
        turns.append(k[0])
    assert set(turns) == {0, 1, 2, 3}


def test_rot90_on_non_square_images_keeps_the_shape():
    x = batch(h=8, w=12)
    y = run(x, {"rot90": True})
    assert y.shape == x.shape
    assert all(np.array_equal(a, b) or np.array_equal(a, b[::-1, ::-1]) for a, b in zip(y, x))


def test_center_zoom_of_full_area_is_identity():
    x = batch()
    np.testing.assert_allclose(run(x, {"center_zoom_scale": 1.0}), x, atol=1e-6)


def gradient_image(n=N, h=24, w=24):
    row = np.linspace(0.0, 1.0, w, dtype=np.float32)
    return np.broadcast_to(row[None, None, :, None], (n, h, w, 3)).copy()


def test_zoom_scale_crops_at_least_the_minimum_area():
    s = 0.4
    y = run(gradient_image(), {"zoom_scale": s})
    # each output row is the gradient restricted to the crop's columns, stretched back:
    # still increasing, spanning the crop: (cw - 1) / (w - 1) with a crop width of
    # cw >= ceil(sqrt(s * 3/4) * w) pixels (minimum area at the widest aspect ratio)
    w = y.shape[2]
    span = y[:, :, -1, 0] - y[:, :, 0, 0]
    assert np.all(np.diff(y[:, 5, :, 0], axis=1) >= -1e-6)
    lower = (np.ceil(np.sqrt(s * 3 / 4) * w) - 1) / (w - 1)
    assert span.min() >= lower - 1e-5 and span.max() <= 1 + 1e-6
    assert span.min() < 0.99  # some images really are zoomed


def test_center_zoom_scale_is_centred():
    s = 0.5
    y = run(gradient_image(), {"center_zoom_scale": s})
    w = y.shape[2]
    span = y[:, :, -1, 0] - y[:, :, 0, 0]
    assert span.min() >= (np.ceil(np.sqrt(s) * w) - 1) / (w - 1) - 1e-5
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0.5, atol=1e-5)  # symmetric crop


def test_shear_moves_pixels_but_keeps_a_constant_image():
    flat = np.full((8, 16, 16, 3), 0.3, np.float32)
    np.testing.assert_allclose(run(flat, {"shear": 0.5}), flat, atol=1e-6)
    x = batch()
    assert not np.allclose(run(x, {"shear": 0.5}), x)


# ----------------------------------------------------------------------------- colour


def test_brightness_adds_one_offset_per_image_within_delta():
    x = batch(lo=0.3, hi=0.7)
    d = run(x, {"brightness_delta": 0.2}) - x
    per_image = d.reshape(N, -1)
    np.testing.assert_allclose(per_image - per_image[:, :1], 0.0, atol=1e-6)
    assert np.abs(per_image[:, 0]).max() <= 0.2 + 1e-6
    assert per_image[:, 0].std() > 0.01


def test_contrast_scales_around_the_channel_mean():
    x = batch(lo=0.4, hi=0.6)
    y = run(x, {"contrast_delta": 0.3})
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean, atol=1e-5)
    factor = ((y - mean) / (x - mean)).reshape(N, -1)
    ok = np.abs((x - mean).reshape(N, -1)) > 1e-2
    f = np.array([np.median(r[m]) for r, m in zip(factor, ok)])
    assert f.min() >= 0.7 - 1e-3 and f.max() <= 1.3 + 1e-3


def hsv(x):
    return tf.image.rgb_to_hsv(x).numpy()


def test_saturation_keeps_hue_and_value():
    x = batch(lo=0.2, hi=0.8)
    y = run(x, {"saturation_delta": 0.5})
    a, b = hsv(x), hsv(y)
    np.testing.assert_allclose(b[..., 2], a[..., 2], atol=1e-5)                # value
    ratio = b[..., 1] / a[..., 1]
    assert ratio.min() >= 0.5 - 1e-3 and ratio.max() <= 1.5 + 1e-3
    gray = np.repeat(x[..., :1], 3, axis=-1)
    np.testing.assert_allclose(run(gray, {"saturation_delta": 0.5}), gray, atol=1e-6)


def test_hue_keeps_saturation_and_value():
    x = batch(lo=0.2, hi=0.8)
    y = run(x, {"hue_delta": 0.3})
    a, b = hsv(x), hsv(y)
    np.testing.assert_allclose(b[..., 1:], a[..., 1:], atol=1e-4)
    shift = (b[..., 0] - a[..., 0]) % 1.0
    shift = np.where(shift > 0.5, shift - 1.0, shift).reshape(N, -1)
    assert np.abs(np.median(shift, axis=1)).max() <= 0.3 + 1e-3


@pytest.mark.parametrize("key, value, channel", [("hue_delta", 0.3, 0), ("saturation_delta", 0.5, 1),
                                                ("contrast_delta", 0.4, None)])
def test_colour_ops_draw_one_value_per_image(key, value, channel):
    # one image repeated: each copy must come out as TensorFlow's single-image op with its own
    # value (recovered from the output), and the copies' values must differ
    img = batch(n=1, lo=0.3, hi=0.7)[0]
    y = run(np.repeat(img[None], 8, axis=0), {key: value})
    if channel is None:
        a, b = img[None], y
    else:
        a, b = hsv(img[None])[..., channel], hsv(y)[..., channel]
    drawn = []
    for out, hue_or_sat in zip(y, b):
        if key == "contrast_delta":
            def spread(t):
                return (t - t.mean(axis=(0, 1))).std()

            v = float(spread(hue_or_sat) / spread(a[0]))
            want = tf.image.adjust_contrast(img, v).numpy()
        elif key == "hue_delta":
            shift = (hue_or_sat - a[0] + 0.5) % 1.0 - 0.5
            v = float(np.median(shift))
            want = tf.image.adjust_hue(img, v).numpy()
        else:
            v = float(np.median(hue_or_sat / a[0]))
            want = tf.image.adjust_saturation(img, v).numpy()
        np.testing.assert_allclose(out, want, atol=1e-4)
        drawn.append(v)
    centre = 0.0 if key == "hue_delta" else 1.0
    assert all(abs(v - centre) <= value + 1e-4 for v in drawn)
    assert len(np.unique(np.round(drawn, 4))) == 8


def test_jitter_changes_about_80_percent_of_images():
    n = 400
    x = batch(n=n, lo=0.2, hi=0.8)
    changed = np.abs(run(x, {"jitter": 1.0}) - x).reshape(n, -1).max(axis=1) > 1e-6
    # binomial(400, 0.8): mean 320, sd 8; 5 sd either side
    assert abs(changed.sum() - 320) <= 40


def test_drop_color_gives_luminance_in_every_channel():
    x = batch()
    y = run(x, {"drop_color": 1.0})
    gray = tf.image.rgb_to_grayscale(x).numpy()
    np.testing.assert_allclose(y, np.repeat(gray, 3, axis=-1), atol=1e-6)
    x4 = batch(c=4)
    y4 = run(x4, {"drop_color": 1.0})
    np.testing.assert_allclose(y4, np.repeat(x4.mean(-1, keepdims=True), 4, -1), atol=1e-6)


def test_solarize_inverts_the_bright_half():
    x = batch()
    np.testing.assert_allclose(run(x, {"solarize": 1.0}), np.where(x >= 0.5, 1 - x, x),
                               atol=1e-7)


def test_autocontrast_stretches_each_channel():
    x = batch(lo=0.3, hi=0.6)
    y = run(x, {"autocontrast": 1.0})
    np.testing.assert_allclose(y.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.max(axis=(1, 2)), 1.0, atol=1e-6)
    flat = np.full((4, 8, 8, 3), 0.4, np.float32)
    np.testing.assert_allclose(run(flat, {"autocontrast": 1.0}), flat)


# ----------------------------------------------------------------------------- filters, masks


def test_gaussian_blur_smooths_and_keeps_constants():
    x = batch(h=32, w=32)
    y = run(x, {"gaussian_blur": 1.0})
    # sigma is uniform in [0.1, 2]: near 0.1 the kernel is almost a delta
    sx, sy = x.std(axis=(1, 2, 3)), y.std(axis=(1, 2, 3))
    assert (sy <= sx + 1e-6).all() and (sy < 0.9 * sx).mean() > 0.5
    np.testing.assert_allclose(y.mean(), x.mean(), atol=0.01)
    flat = np.full((4, 32, 32, 3), 0.6, np.float32)
    np.testing.assert_allclose(run(flat, {"gaussian_blur": 1.0}), flat, atol=1e-6)


def test_gaussian_noise_is_zero_mean_with_bounded_sd():
    x = batch(h=32, w=32, lo=0.4, hi=0.6)
    d = (run(x, {"gaussian_noise": 1.0}) - x).reshape(N, -1)
    assert np.abs(d.mean(axis=1)).max() < 0.01
    assert d.std(axis=1).max() <= 0.1 * 1.1 and d.std(axis=1).max() > 0.02


def test_sobel_gives_scaled_edge_magnitude():
    x = batch()
    y = run(x, {"sobel_prob": 1.0})
    np.testing.assert_allclose(y.max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    flat = np.full((4, 16, 16, 3), 0.5, np.float32)
    np.testing.assert_allclose(run(flat, {"sobel_prob": 1.0}), 0.0, atol=1e-6)


def test_jpeg_degrade_quantises_to_8_bits_and_changes_pixels():
    x = batch()
    y = run(x, {"jpeg_degrade": 1.0})
    np.testing.assert_allclose(y * 255, np.round(y * 255), atol=1e-3)
    assert np.abs(y - x).mean() > 0.01


def test_mask_zeroes_one_rectangle_of_10_to_50_percent():
    h, w = 20, 30
    x = batch(h=h, w=w, lo=0.2, hi=1.0)
    y = run(x, {"mask": 1.0})
    for a, b in zip(y, x):
        zero = (a == 0).all(axis=-1)
        rows, cols = np.flatnonzero(zero.any(axis=1)), np.flatnonzero(zero.any(axis=0))
        assert zero[np.ix_(rows, cols)].all() and zero.sum() == len(rows) * len(cols)
        assert round(0.1 * h) <= len(rows) <= round(0.5 * h)
        assert round(0.1 * w) <= len(cols) <= round(0.5 * w)
        np.testing.assert_array_equal(a[~zero], b[~zero])


# ----------------------------------------------------------------------------- any channel count


@pytest.mark.parametrize("c", [1, 3, 4])
def test_every_key_at_full_strength_keeps_shape_and_range(c):
    strong = {k: (True if k in ("flip_left_right", "flip_up_down", "rot90") else 1.0)
              for k in AUGMENT_KEYS}
    strong.update(hue_delta=0.5, jitter=2.0, zoom_scale=0.1, center_zoom_scale=0.1)
    x = batch(c=c, h=12, w=20, n=16)
    y = run(x, strong)
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0 and np.isfinite(y).all()


@pytest.mark.parametrize("key", ["saturation_delta", "hue_delta", "jpeg_degrade"])
def test_rgb_only_ops_leave_other_channel_counts_alone(key):
    x = batch(c=4)
    value = 0.5 if key != "jpeg_degrade" else 1.0
    np.testing.assert_array_equal(run(x, {key: value}), x)


def test_drop_color_leaves_one_channel_alone():
    x = batch(c=1)
    np.testing.assert_array_equal(run(x, {"drop_color": 1.0}), x)


def test_one_image_in_tf_data_and_in_a_tf_function():
    img = batch(n=1)[0]
    out = augment_image(img, True).numpy()
    assert out.shape == img.shape and 0 <= out.min() and out.max() <= 1
    ds = tf.data.Dataset.from_tensor_slices(batch(n=6)).map(lambda t: augment_image(t, True))
    assert [tuple(t.shape) for t in ds] == [(16, 16, 3)] * 6
    step = tf.function(lambda t: augment_batch(t, {"mask": 0.5, "jitter": 0.5}))
    assert step(batch(n=5)).shape == (5, 16, 16, 3)


def test_augment_batch_needs_a_static_4d_shape():
    with pytest.raises(ValueError, match="batch"):
        augment_batch(batch()[0], True)


def test_augplot_shows_originals_beside_views(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from patchwork_widget import viz

    files = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.fromarray((batch(n=1)[0] * 255).astype(np.uint8)).save(p)
        files.append(str(p))
    fig = viz.augplot(files, True, imshape=(16, 16), num_images=2, num_views=3, seed=0)
    assert len(fig.axes) == 2 * 4
    assert fig.axes[0].get_title() == "original"
