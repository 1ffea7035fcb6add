"""F8 DeepCluster: pseudo-labels stable across refits up to permutation, empty clusters
re-seeded, uniform sampling over clusters, and an epoch on the demo data with its records."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

from patchwork_widget.feature.clustering import (
    cluster_features,
    reseed_empty_clusters,
    uniform_over_clusters,
    whiten,
)

tf = pytest.importorskip("tensorflow")

from patchwork_widget.datasets import load_demo_dataset  # noqa: E402
from patchwork_widget.feature import DeepClusterTrainer, ResNetFCN  # noqa: E402
from ssl_helpers import events  # noqa: E402

SHAPE = (32, 32)
SMALL = dict(imshape=SHAPE, batch_size=16, seed=0, eval_batch_size=64)


def blobs(n_per: int = 40, centres: int = 4, dim: int = 16, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 10, (centres, dim))
    truth = np.repeat(np.arange(centres), n_per)
    return means[truth] + rng.normal(0, 0.3, (len(truth), dim)), truth


def test_pseudo_labels_stable_across_refits_up_to_permutation():
    x, truth = blobs()
    a = cluster_features(x, 4, 8, np.random.default_rng(1))
    b = cluster_features(x, 4, 8, np.random.default_rng(2))
    assert adjusted_rand_score(a.labels, b.labels) == 1.0
    assert adjusted_rand_score(truth, a.labels) == 1.0


def test_whitening_gives_identity_covariance_and_pads_extra_components():
    x = np.random.default_rng(0).normal(size=(200, 5)) @ np.diag([5, 3, 1, 0.5, 0.1])
    mean, proj = whiten(x, 8)
    assert proj.shape == (5, 8) and not proj[:, 5:].any()
    y = (x - mean) @ proj[:, :5]
    np.testing.assert_allclose(np.cov(y.T), np.eye(5), atol=1e-4)


def test_empty_clusters_are_reseeded():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    labels = np.zeros(30, dtype=int)              # clusters 1..4 empty
    out, centroids, count = reseed_empty_clusters(x, labels, 5, np.random.default_rng(0))
    assert count == 4 and np.all(np.bincount(out, minlength=5) >= 1)
    for c in range(5):
        np.testing.assert_allclose(centroids[c], x[out == c].mean(axis=0), rtol=1e-5)
    # duplicated points: k-means leaves clusters empty, the refit still fills every one
    dup = np.repeat(np.eye(3, 4, dtype=np.float32), 5, axis=0)
    result = cluster_features(dup, 6, 4, np.random.default_rng(0))
    assert np.all(np.bincount(result.labels, minlength=6) >= 1) and result.reseeded >= 1
    with pytest.raises(ValueError, match="k=5 clusters need at least 5"):
        reseed_empty_clusters(x[:3], labels[:3], 5, np.random.default_rng(0))


def test_sampling_is_uniform_over_clusters():
    labels = np.array([0] * 90 + [1] * 10)
    idx = uniform_over_clusters(labels, 2, 20000, np.random.default_rng(0))
    share = np.mean(labels[idx] == 1)
    assert 0.47 < share < 0.53


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"), n_per_class=12, patch_size=32)
    return df.filepath.tolist()[:64]


def test_fit_one_epoch_on_demo_data_records_and_refits(demo, tmp_path):
    fcn = ResNetFCN(3, filters=(8, 16))
    logdir = str(tmp_path / "dc")
    trainer = DeepClusterTrainer(logdir, demo[:48], testdata=demo[48:], fcn=fcn,
                                 augment={"flip_left_right": True}, pca_dim=8, k=6,
                                 dense=[16], mult=2, notes="dc", **SMALL)
    before = [w.copy() for w in fcn.get_weights()]
    out = trainer.fit(2, progress=False)
    assert trainer.step == 2 * trainer.steps_per_epoch == 6
    assert np.isfinite(out["epoch_loss"]) and np.isfinite(out["test_loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, fcn.get_weights()))
    assert np.all(np.bincount(trainer._labels, minlength=6) >= 1)
    config = yaml.safe_load(open(os.path.join(logdir, "config.yaml")))
    assert config["trainer"] == "DeepCluster" and config["k"] == 6 and config["dense"] == [16]
    tags = events(logdir)
    assert {"loss", "cluster_accuracy", "clusters_reseeded", "largest_cluster_share",
            "test_loss", "alignment", "uniformity"} <= tags
    assert "pseudo_label_nmi" not in tags          # mult=2: one refit in two epochs
    trainer.fit(1, evaluate=False, save=False, progress=False)
    assert "pseudo_label_nmi" in events(logdir)
    assert os.path.isfile(os.path.join(logdir, "head.weights.h5"))

    # the clusters travel with the weights: a fresh trainer assigns test images the same way
    other = DeepClusterTrainer(str(tmp_path / "other"), demo[:48],
                               fcn=ResNetFCN(3, filters=(8, 16)), pca_dim=8, k=6, dense=[16],
                               **SMALL)
    with pytest.raises(FileNotFoundError, match="state.npz"):
        other.load_weights(tmp_path / "other")
    trainer.save()
    other.load_weights(logdir)
    x = np.random.default_rng(0).random((5, *SHAPE, 3)).astype(np.float32)
    np.testing.assert_array_equal(other.assign(x).numpy(), trainer.assign(x).numpy())


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=100), "k=100 clusters need at least 100 training images"),
    (dict(dense="1024"), "dense must be a list"),
    (dict(mult=0), "mult must be"),
    (dict(pca_dim=0), "pca_dim must be"),
])
def test_rejects_bad_options(demo, tmp_path, kwargs, match):
    opts = {**dict(pca_dim=8, k=4, dense=[8]), **kwargs}
    with pytest.raises(ValueError, match=match):
        DeepClusterTrainer(str(tmp_path), demo[:48], fcn=ResNetFCN(3, filters=(8,)),
                           **SMALL, **opts)


def test_dataset_trainingdata_is_refused(tmp_path):
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((20, *SHAPE, 3), np.float32))
    with pytest.raises(ValueError, match="image paths or an image array"):
        DeepClusterTrainer(str(tmp_path), ds, fcn=ResNetFCN(3, filters=(8,)), k=4,
                           **SMALL)

