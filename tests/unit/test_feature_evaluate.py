"""F2/F3: alignment and uniformity, the deterministic split, the linear probes, and the
record images (kernels, query figure, projector files)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from patchwork_widget.feature import ResNetFCN  # noqa: E402
from patchwork_widget.feature.evaluate import (  # noqa: E402
    alignment,
    deterministic_split,
    linear_classification_test,
    rotation_classification_test,
    uniformity,
)
from patchwork_widget.feature.records import (  # noqa: E402
    kernel_image,
    query_figure,
    save_projections,
    scalar_hparams,
)


def test_alignment_and_uniformity_match_their_definitions():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 3))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    w = np.roll(z, 1, axis=0)
    assert alignment(z, w) == pytest.approx(np.mean([np.sum((a - b) ** 2) for a, b in zip(z, w)]))
    assert alignment(z, z) == 0.0
    pairs = [np.exp(-2 * np.sum((z[i] - z[j]) ** 2)) for i in range(7) for j in range(i + 1, 7)]
    assert uniformity(z) == pytest.approx(np.log(np.mean(pairs)))
    collapsed = np.tile(z[:1], (7, 1))
    assert uniformity(collapsed) == pytest.approx(0.0)
    assert uniformity(z) < 0.0


def test_split_is_deterministic_and_order_free():
    keys = [f"/data/img_{i}.png" for i in range(300)]
    mask = deterministic_split(keys)
    assert 0.25 < mask.mean() < 0.42
    again = deterministic_split(keys[::-1])[::-1]
    np.testing.assert_array_equal(mask, again)
    np.testing.assert_array_equal(deterministic_split(keys[:50]), mask[:50])
    moved = deterministic_split([k.replace("/data/", "/elsewhere/") for k in keys])
    np.testing.assert_array_equal(moved, mask)


def test_linear_probe_separates_separable_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 30)
    feats = rng.standard_normal((90, 4)) + 5 * (labels[:, None] == np.array(["a", "b", "c", "x"]))
    mask = np.arange(90) % 3 == 0
    result = linear_classification_test(feats, labels, mask)
    assert result.accuracy == 1.0 and result.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(result.confusion, np.diag([10, 10, 10]))
    with pytest.raises(ValueError, match="same length"):
        linear_classification_test(feats, labels[:5], mask)


def test_rotation_probe_on_oriented_images():
    """Images with a bright top row: quarter turns are easy to tell apart from pooled features
    of a network that keeps position (here: the identity 'network' on a 2x2 average pool)."""
    rng = np.random.default_rng(1)
    images = rng.random((30, 8, 8, 1)).astype(np.float32) * 0.2
    images[:, 0] = 1.0

    def quadrants(x):
        return tf.reshape(tf.nn.avg_pool2d(x, 4, 4, "VALID"), [tf.shape(x)[0], -1])

    assert rotation_classification_test(quadrants, images).accuracy == 1.0
    with pytest.raises(ValueError, match="square"):
        rotation_classification_test(quadrants, images[:, :, :6])


def test_record_images_and_projector_files(tmp_path):
    fcn = ResNetFCN(3, filters=(6,))
    img = kernel_image(fcn)
    assert img.dtype == np.uint8 and img.shape[0] == 1 and img.shape[-1] == 3
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((12, 4))
    labels = np.array(["x", "y", "z"] * 4)
    images = rng.random((12, 10, 10, 1))
    fig = query_figure(feats, images, labels, n_neighbours=3)
    assert fig.shape == (1, 3 * 14, 4 * 14, 3)
    path = save_projections(str(tmp_path), feats, images, labels, sprite_size=8)
    text = open(path).read()
    assert 'tensor_path: "tensors.tsv"' in text and "single_image_dim: 8" in text
    assert np.loadtxt(tmp_path / "tensors.tsv").shape == (12, 4)
    assert (tmp_path / "metadata.tsv").read_text().splitlines() == list(labels)
    assert scalar_hparams({"a": 1, "b": {"c": (1, 2)}, "d": None}) == {"a": 1, "b.c": "[1, 2]"}
