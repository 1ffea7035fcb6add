"""F7 DetCon-S: masks follow the image's geometry exactly, cropped-away segments leave the
loss, the loss equals a NumPy reference, segments are sampled as documented, and an epoch on
the demo data writes its records."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")
pytest.importorskip("skimage")

from patchwork_widget.datasets import load_demo_dataset  # noqa: E402
from patchwork_widget.feature import DetConTrainer, ResNetFCN, hcl_loss  # noqa: E402
from patchwork_widget.feature import segments  # noqa: E402
from patchwork_widget.feature.detcon import masked_hcl_loss, segment_pool  # noqa: E402
from patchwork_widget.feature.segments import (  # noqa: E402
    augment_with_masks,
    detcon_dataset,
    sample_segments,
    segment_present,
)
from ssl_helpers import events  # noqa: E402

SHAPE = (32, 32)
GEOMETRY = {"zoom_scale": 0.3, "shear": 0.3, "flip_left_right": True, "flip_up_down": True,
            "rot90": True}


def quadrants(n: int = 8, size: int = 16) -> np.ndarray:
    """``n`` images whose 4 channels are the one-hot masks of their quadrants."""
    seg = (np.arange(size)[:, None] >= size // 2) * 2 + (np.arange(size)[None, :] >= size // 2)
    one = (seg[:, :, None] == np.arange(4)).astype(np.float32)
    return np.repeat(one[None], n, axis=0)


def test_masks_follow_the_same_flips_crops_and_shears_as_the_image():
    masks = quadrants()
    image = masks[..., :3]          # the image's channels are three of the masks themselves
    tf.random.set_seed(0)
    out_img, out_masks = augment_with_masks(tf.constant(image), tf.constant(masks), GEOMETRY)
    np.testing.assert_array_equal(out_img.numpy(), out_masks.numpy()[..., :3])
    assert not np.allclose(out_masks.numpy(), masks)       # the views did move
    # colour keys touch the image only, never the masks
    out_img, out_masks = augment_with_masks(tf.constant(image), tf.constant(masks),
                                            {"flip_left_right": True, "brightness_delta": 0.5})
    flipped = np.array_equal(out_masks.numpy()[0], masks[0][:, ::-1])
    assert flipped or np.array_equal(out_masks.numpy()[0], masks[0])
    assert set(np.unique(out_masks.numpy())) <= {0.0, 1.0}


def test_grid_and_felzenszwalb_sampling():
    rng = np.random.default_rng(0)
    img = np.zeros((12, 12, 3), np.float32)
    masks, replaced = sample_segments(img, 0, 4, rng)      # 2x2 grid, each cell 36 pixels
    assert masks.shape == (12, 12, 4) and not replaced
    assert sorted(masks.sum(axis=(0, 1))) == [36] * 4 and masks.sum(axis=2).max() == 1
    two = np.zeros((24, 24, 3), np.float32)
    two[:, 12:] = 1.0                                      # two flat halves: two segments
    masks, replaced = sample_segments(two, 20, 5, rng)
    assert replaced and masks.shape == (24, 24, 5)
    halves = {tuple(m.ravel()) for m in np.moveaxis(masks, 2, 0)}
    assert halves <= {tuple((two[:, :, 0] == v).ravel().astype(np.float32)) for v in (0, 1)}


def test_sampling_favours_large_segments(monkeypatch):
    seg = np.zeros((30, 30), int)
    seg[:, 25:] = 1                                        # 750 vs 150 pixels
    monkeypatch.setattr(segments, "segment_labels", lambda image, scale, n: seg)
    rng = np.random.default_rng(0)
    img = np.zeros((30, 30, 3), np.float32)
    big = [sample_segments(img, 10, 1, rng)[0][0, 0, 0] for _ in range(2000)]
    assert 0.80 < np.mean(big) < 0.86                      # expected 750/900 = 0.833


def test_cropped_away_segments_are_not_present():
    masks = np.zeros((2, 8, 8, 3), np.float32)
    masks[0, :4, :, 0] = 1
    masks[0, 4:, :, 1] = 1                                 # segment 2 of image 0 is gone
    masks[1, ..., :] = 1
    np.testing.assert_array_equal(segment_present(tf.constant(masks)).numpy(),
                                  [[True, True, False], [True, True, True]])


def numpy_masked_hcl(z1, z2, valid, t, beta, tau_plus):
    """Direct transcription of Robinson et al.'s eq. 6 over the valid pairs only."""
    z1, z2 = z1[valid], z2[valid]
    z = np.concatenate([z1, z2])
    n = len(z1)
    sim = z @ z.T / t
    losses = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        negs = [j for j in range(2 * n) if j not in (i, pos)]
        s_n = sim[i, negs]
        w = np.exp(beta * s_n)
        r = np.sum(w * np.exp(s_n)) / np.mean(w)
        ng = (r - tau_plus * len(negs) * np.exp(sim[i, pos])) / (1 - tau_plus)
        ng = max(ng, len(negs) * np.exp(-1 / t))
        losses.append(-np.log(np.exp(sim[i, pos]) / (np.exp(sim[i, pos]) + ng)))
    return np.mean(losses)


def unit(rng, n, d):
    z = rng.normal(size=(n, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float64)


@pytest.mark.parametrize("beta,tau_plus", [(0.0, 0.0), (0.5, 0.1), (1.0, 0.05)])
def test_loss_equals_numpy_reference_on_fixed_inputs(beta, tau_plus):
    rng = np.random.default_rng(3)
    z1, z2 = unit(rng, 10, 6), unit(rng, 10, 6)
    valid = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1], bool)
    loss_sum, count, _ = masked_hcl_loss(tf.constant(z1), tf.constant(z2), tf.constant(valid),
                                         0.5, beta, tau_plus)
    assert float(count) == 16
    assert float(loss_sum / count) == pytest.approx(
        numpy_masked_hcl(z1, z2, valid, 0.5, beta, tau_plus), rel=1e-9)


def test_all_valid_is_hcl_and_invalid_pairs_have_no_gradient():
    rng = np.random.default_rng(4)
    z1, z2 = tf.constant(unit(rng, 6, 4)), tf.constant(unit(rng, 6, 4))
    ones = tf.ones([6], tf.bool)
    loss_sum, count, acc = masked_hcl_loss(z1, z2, ones, 0.2, 0.5, 0.1)
    ref, ref_acc = hcl_loss(z1, z2, 0.2, 0.5, 0.1)
    assert float(loss_sum / count) == pytest.approx(float(ref), rel=1e-9)
    assert float(acc) == pytest.approx(float(ref_acc))
    valid = tf.constant([True, True, True, False, True, True])
    with tf.GradientTape() as tape:
        tape.watch(z1)
        loss_sum, _, _ = masked_hcl_loss(z1, z2, valid, 0.2, 0.5, 0.1)
    grad = tape.gradient(loss_sum, z1).numpy()
    assert not grad[3].any() and grad[0].any()


def test_segment_pool_is_the_masked_mean():
    feats = tf.constant(np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3))
    masks = np.zeros((2, 8, 8, 2), np.float32)
    masks[:, :4, :, 0] = 1
    masks[:, 4:, :, 1] = 1
    pooled = segment_pool(feats, tf.constant(masks)).numpy()
    assert pooled.shape == (4, 3)
    np.testing.assert_allclose(pooled[0], feats.numpy()[0, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(pooled[3], feats.numpy()[1, 2:].mean(axis=(0, 1)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=12, patch_size=32)
    return df.filepath.tolist()


def test_dataset_yields_views_with_masks(demo):
    ds, steps = detcon_dataset(demo[:32], {"flip_left_right": True, "zoom_scale": 0.5}, 20, 4,
                               imshape=SHAPE, batch_size=8, with_stats=True)
    (x1, m1), (x2, m2), replaced = next(iter(ds))
    assert steps == 4 and x1.shape == x2.shape == (8, 32, 32, 3)
    assert m1.shape == m2.shape == (8, 32, 32, 4) and replaced.shape == (8,)
    assert float(tf.reduce_max(m1)) <= 1.0 and float(tf.reduce_min(m1)) >= 0.0


def test_fit_one_epoch_on_demo_data_records(demo, tmp_path):
    labels = {f: i % 3 for i, f in enumerate(demo[64:100])}
    fcn = ResNetFCN(3, filters=(8, 16))
    before = [w.copy() for w in fcn.get_weights()]
    logdir = str(tmp_path / "detcon")
    trainer = DetConTrainer(logdir, demo[:48], testdata=demo[48:64], fcn=fcn,
                            augment={"flip_left_right": True, "zoom_scale": 0.5, "jitter": 0.5},
                            mean_scale=20, num_samples=4, beta=0.5, tau_plus=0.1,
                            imshape=SHAPE, batch_size=16, seed=0, downstream_labels=labels)
    out = trainer.fit(1, progress=False)
    assert trainer.step == 3 and np.isfinite(out["epoch_loss"]) and out["epoch_loss"] > 0
    assert 0 < out["epoch_segment_pairs_kept"] <= 1
    assert any(not np.allclose(a, b) for a, b in zip(before, fcn.get_weights()))
    config = yaml.safe_load(open(os.path.join(logdir, "config.yaml")))
    assert config["trainer"] == "DetCon" and config["mean_scale"] == 20
    assert config["num_samples"] == 4 and "decoupled" not in config
    assert {"loss", "nce_batch_accuracy", "segment_pairs_kept", "test_loss", "alignment",
            "uniformity", "linear_classification_accuracy"} <= events(logdir)


@pytest.mark.parametrize("kwargs,match", [
    (dict(mean_scale=-1), "mean_scale must be"),
    (dict(num_samples=0), "num_samples must be"),
    (dict(num_samples=10**9), r"num_samples must be an int in \[1, 256\]; got 1000000000"),
    (dict(decoupled=True), "no decoupled loss"),
])
def test_rejects_bad_options(demo, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DetConTrainer(str(tmp_path), demo[:32], fcn=ResNetFCN(3, filters=(8,)),
                      imshape=SHAPE, batch_size=8, augment={"flip_left_right": True}, **kwargs)


def test_viz_input_pipeline_reports_replacement_and_discards(demo):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from patchwork_widget import viz

    # a huge scale finds few segments: every image samples with replacement
    out = viz.detcon_input_pipeline(demo[:12], {"zoom_scale": 0.1}, mean_scale=2000,
                                    num_samples=6, imshape=SHAPE, num_pairs=3)
    assert out["images"] == 12 and out["pairs"] == 72
    assert out["sampled_with_replacement"] == 12 and out["replacement_rate"] == 1.0
    assert 0 <= out["pairs_discarded"] <= 72
    assert len(out["figure"].axes) == 12
    # a 4x4 grid never needs replacement, and without crops nothing is discarded
    out = viz.detcon_input_pipeline(demo[:8], {"flip_left_right": True}, mean_scale=0,
                                    num_samples=16, imshape=SHAPE)
    assert out["sampled_with_replacement"] == 0 and out["pairs_discarded"] == 0
