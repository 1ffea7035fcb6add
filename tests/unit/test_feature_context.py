"""F9 context encoder: rectangles as documented, the reconstruction loss counts only the
hole, an epoch on the demo data (with the adversarial loss) writes its records and the
inpainting image, and the test loss is measured on fixed rectangles."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

tf = pytest.importorskip("tensorflow")

from patchwork_widget.datasets import load_demo_dataset  # noqa: E402
from patchwork_widget.feature import ContextEncoderTrainer, ResNetFCN  # noqa: E402
from patchwork_widget.feature.context_encoder import (  # noqa: E402
    decoder,
    random_rectangles,
    reconstruction_loss,
)
from ssl_helpers import events  # noqa: E402


def test_one_rectangle_per_image_within_the_size_range():
    masks = random_rectangles(50, 20, 30, (0.25, 0.5)).numpy()[..., 0]
    assert masks.shape == (50, 20, 30) and set(np.unique(masks)) == {0.0, 1.0}
    for m in masks:
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        assert m.sum() == len(rows) * len(cols)               # one solid rectangle
        assert 5 <= len(rows) <= 10 and 8 <= len(cols) <= 15  # sides within 25-50%
    fixed = [random_rectangles(4, 16, 16, (0.3, 0.6), (1, 2)).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*fixed)


def test_reconstruction_loss_counts_only_the_hole():
    images = np.zeros((2, 4, 4, 3), np.float32)
    predicted = np.ones((2, 4, 4, 3), np.float32)
    masks = np.zeros((2, 4, 4, 1), np.float32)
    masks[0, :2, :2] = 1
    masks[1, :1, :] = 1
    predicted[:, 3, 3] = 5.0                                   # outside both holes: ignored
    assert float(reconstruction_loss(images, predicted, masks)) == pytest.approx(1.0)
    predicted[0, 0, 0] = 3.0            # inside image 0's hole (4 pixels x 3 channels)
    expected = 0.5 * ((3 * 9 + 9 * 1) / 12 + 1.0)
    assert float(reconstruction_loss(images, predicted, masks)) == pytest.approx(expected)


def test_decoder_returns_images_of_the_input_size():
    dec = decoder((4, 4, 32), (30, 30), 3)
    out = dec(np.zeros((2, 4, 4, 32), np.float32))
    assert out.shape == (2, 30, 30, 3)
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=12, patch_size=32)
    return df.filepath.tolist()


def test_fit_one_epoch_with_adversarial_loss_records(demo, tmp_path):
    logdir = str(tmp_path / "ce")
    fcn = ResNetFCN(3, filters=(8, 16))
    before = [w.copy() for w in fcn.get_weights()]
    trainer = ContextEncoderTrainer(logdir, demo[:48], testdata=demo[48:64], fcn=fcn,
                                    augment={"flip_left_right": True}, adv_weight=0.01,
                                    imshape=(32, 32), batch_size=16, seed=0)
    d_before = [w.copy() for w in trainer.discriminator.get_weights()]
    out = trainer.fit(1, progress=False)
    assert trainer.step == 3 and np.isfinite(out["epoch_loss"])
    assert out["epoch_discriminator_loss"] > 0 and np.isfinite(out["test_loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, fcn.get_weights()))
    assert any(not np.allclose(a, b) for a, b in
               zip(d_before, trainer.discriminator.get_weights()))
    config = yaml.safe_load(open(os.path.join(logdir, "config.yaml")))
    assert config["trainer"] == "ContextEncoder" and config["adv_weight"] == 0.01
    assert {"loss", "reconstruction_loss", "adversarial_loss", "discriminator_loss",
            "test_loss", "inpainting", "alignment"} <= events(logdir)
    for name in ("fcn.keras", "decoder.weights.h5", "discriminator.weights.h5"):
        assert os.path.isfile(os.path.join(logdir, name))


@pytest.mark.parametrize("kwargs,match", [
    (dict(mask_size=(0.5, 0.2)), "mask_size must be"),
    (dict(recon_weight=0), "recon_weight must be"),
    (dict(adv_weight=-1), "adv_weight must be"),
])
def test_rejects_bad_options(demo, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContextEncoderTrainer(str(tmp_path), demo[:32], fcn=ResNetFCN(3, filters=(8,)),
                              imshape=(32, 32), batch_size=8, **kwargs)
