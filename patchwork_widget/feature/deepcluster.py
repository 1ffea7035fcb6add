"""DeepCluster (feature F8): k-means pseudo-labels on the network's own features, refit every
``mult`` epochs, learned by a dense classification head."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from sklearn.metrics import normalized_mutual_info_score

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.clustering import cluster_features, uniform_over_clusters
from patchwork_widget.feature.data import TrainingData, file_list
from patchwork_widget.images.augment import is_active
from patchwork_widget.images.pipeline import dataset
from patchwork_widget.options.checks import check_int

__all__ = ["DeepClusterTrainer", "cluster_head"]


def cluster_head(in_channels: int, dense: Sequence[int], k: int,
                 name: str = "cluster_head") -> keras.Model:
    """Global average pooling, ``Dense(n) -> ReLU`` for each ``n`` in ``dense``, then
    ``Dense(k)`` logits over the clusters (the layer named ``clusters``)."""
    inp = keras.Input((None, None, in_channels))
    x = layers.GlobalAveragePooling2D(name="pool")(inp)
    for i, units in enumerate(dense):
        x = layers.Dense(units, activation="relu", name=f"dense{i + 1}")(x)
    return keras.Model(inp, layers.Dense(k, name="clusters")(x), name=name)


class DeepClusterTrainer(FeatureTrainer):
    """Train ``fcn`` with DeepCluster (Caron et al. 2018, https://arxiv.org/abs/1807.05520).

    Every ``mult`` epochs (and before the first) the pooled features of every training image
    (un-augmented, inference mode) are PCA-reduced to ``pca_dim``, whitened, L2-normalised and
    clustered by k-means into ``k`` clusters; empty clusters are re-seeded by splitting the
    largest. The cluster of each image is its pseudo-label; the epoch's images are drawn with
    replacement, uniformly over clusters, and ``fcn`` with a dense head learns to predict
    them. The head's last layer is re-initialised at each refit (cluster numbers are
    arbitrary between refits). Recorded at each refit: ``clusters_reseeded``,
    ``largest_cluster_share`` and ``pseudo_label_nmi`` (normalised mutual information with
    the previous refit's labels, which the paper watches to see the clusters settle).

    With ``testdata``, ``test_loss`` is the head's cross-entropy on one view against the
    cluster of the other view (nearest centroid); alignment and uniformity are measured on
    the whitened, normalised features k-means sees.

    Parameters
    ----------
    logdir, trainingdata, testdata, fcn, augment
        See :class:`~patchwork_widget.feature.base.FeatureTrainer`; ``trainingdata`` must
        be image paths or an image array (the refits need to find each image again).
    pca_dim : int
        Components kept by the PCA (more than the fcn's channels adds nothing).
    k : int
        Number of clusters, >= 2 and at most the number of training images.
    dense : sequence of int
        Hidden layer widths of the head (empty: a linear classifier on pooled features).
    mult : int
        Refit the clusters every ``mult`` epochs (>= 1).
    kmeans_iter : int
        Most Lloyd iterations per k-means fit.
    **kwargs
        ``options``, ``downstream_labels``, ``strategy`` or the option fields as keywords.
    """

    modelname = "DeepCluster"
    needs_augment = False   # pseudo-labels are learnable without it (augmentation helps)
    min_local_batch = 1

    def __init__(
        self,
        logdir: str,
        trainingdata: TrainingData,
        testdata: Optional[TrainingData] = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any], None] = None,
        pca_dim: int = 256,
        k: int = 250,
        dense: Sequence[int] = (1024, 1024),
        mult: int = 1,
        kmeans_iter: int = 20,
        **kwargs: Any,
    ) -> None:
        self.pca_dim = check_int("pca_dim", pca_dim, 1)
        self.k = check_int("k", k, 2)
        if isinstance(dense, (str, bytes)) or not isinstance(dense, Sequence) or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                for d in dense):
            raise ValueError(f"dense must be a list of layer widths (ints >= 1); got {dense!r}")
        self.dense = [int(d) for d in dense]
        self.mult = check_int("mult", mult, 1)
        self.kmeans_iter = check_int("kmeans_iter", kmeans_iter, 1)
        self._labels: Optional[np.ndarray] = None
        super().__init__(logdir, trainingdata, testdata, fcn, augment, **kwargs)
        self._rng = np.random.default_rng(self.options.seed)

    def _method_config(self) -> Dict[str, Any]:
        return {"pca_dim": self.pca_dim, "k": self.k, "dense": list(self.dense),
                "mult": self.mult, "kmeans_iter": self.kmeans_iter}

    def _training_dataset(self, trainingdata: TrainingData) -> Tuple[None, int]:
        files = file_list(trainingdata, "trainingdata")
        if files is None and not (isinstance(trainingdata, np.ndarray)
                                  and trainingdata.ndim in (3, 4)):
            raise ValueError("DeepClusterTrainer needs trainingdata as image paths or an "
                             "image array (N, H, W[, C]): each refit finds every image again; "
                             f"got {type(trainingdata).__name__}")
        self._images: Union[list, np.ndarray] = files if files is not None else trainingdata
        n = len(self._images)
        if n < self.k:
            raise ValueError(f"k={self.k} clusters need at least {self.k} training images; "
                             f"got {n}")
        if n < self.batch_size:
            raise ValueError(f"batch_size={self.batch_size} is larger than the training set "
                             f"({n} images); lower batch_size or give more images")
        return None, n // self.batch_size

    def _build_models(self) -> Dict[str, keras.Model]:
        channels = self.fcn.outputs[0].shape[-1]
        self.head = cluster_head(channels, self.dense, self.k)
        self._pca_mean = tf.Variable(tf.zeros([channels]), trainable=False, name="pca_mean")
        self._pca_projection = tf.Variable(tf.zeros([channels, self.pca_dim]),
                                           trainable=False, name="pca_projection")
        self._centroids = tf.Variable(tf.zeros([self.k, self.pca_dim]), trainable=False,
                                      name="centroids")
        return {"head": self.head}

    def _state_variables(self) -> Dict[str, tf.Variable]:
        return {"pca_mean": self._pca_mean, "pca_projection": self._pca_projection,
                "centroids": self._centroids}

    def _trainable_variables(self) -> list:
        return self.fcn.trainable_variables + self.head.trainable_variables

    # -- clusters ------------------------------------------------------------------------------

    def _training_features(self) -> np.ndarray:
        """Pooled features of every training image, in order (inference mode)."""
        ds, _ = dataset(self._images, batch_size=self.eval_batch_size, shuffle=False,
                        skip_errors=False, num_parallel_calls=self.options.num_parallel_calls,
                        **self._input)
        return np.concatenate([self._features(x).numpy() for x in ds], axis=0)

    def refit(self) -> np.ndarray:
        """Recluster the training images now and build the next epochs' batches; returns the
        pseudo-labels (one per training image)."""
        result = cluster_features(self._training_features(), self.k, self.pca_dim, self._rng,
                                  self.kmeans_iter)
        self._pca_mean.assign(result.mean)
        self._pca_projection.assign(result.projection)
        self._centroids.assign(result.centroids)
        last = self.head.get_layer("clusters")
        last.kernel.assign(keras.initializers.GlorotUniform(
            seed=int(self._rng.integers(2**31 - 1)))(last.kernel.shape))
        last.bias.assign(tf.zeros_like(last.bias))
        sizes = np.bincount(result.labels, minlength=self.k)
        scalars = {"clusters_reseeded": float(result.reseeded),
                   "largest_cluster_share": float(sizes.max() / sizes.sum())}
        if self._labels is not None:
            scalars["pseudo_label_nmi"] = float(
                normalized_mutual_info_score(self._labels, result.labels))
        self.reporting.record(**scalars)
        self._labels = result.labels

        order = uniform_over_clusters(result.labels, self.k, None, self._rng)
        images = ([self._images[i] for i in order] if isinstance(self._images, list)
                  else self._images[order])
        ds, _ = dataset(images, ys=result.labels[order], batch_size=self.batch_size,
                        augment=self.augment_params if is_active(self.augment_params) else False,
                        shuffle=False, drop_remainder=True,
                        num_parallel_calls=self.options.num_parallel_calls, **self._input)
        self._ds = self.strategy.experimental_distribute_dataset(ds)
        return result.labels

    def _before_epoch(self, epoch: int) -> None:
        if epoch % self.mult == 0:
            self.refit()

    # -- steps ---------------------------------------------------------------------------------

    def _replica_step(self, x: tf.Tensor, y: tf.Tensor) -> Dict[str, tf.Tensor]:
        labels = tf.cast(y, tf.int32)
        variables = self._trainable_variables()
        with tf.GradientTape() as tape:
            logits = self.head(self.fcn(x, training=True), training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            scaled = loss / self.num_replicas
        self._minimize(tape, scaled, variables)
        hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)
        return {"loss": loss, "cluster_accuracy": tf.reduce_mean(tf.cast(hits, tf.float32))}

    def whitened(self, x: tf.Tensor) -> tf.Tensor:
        """The normalised, whitened pooled features of images ``x`` that k-means clusters."""
        pooled = tf.reduce_mean(self.fcn(x, training=False), axis=[1, 2])
        return tf.math.l2_normalize(
            tf.matmul(pooled - self._pca_mean, self._pca_projection), axis=1)

    def assign(self, x: tf.Tensor) -> tf.Tensor:
        """The nearest centroid of each image of ``x`` (its pseudo-label by the last refit)."""
        z = self.whitened(x)
        dist = (tf.reduce_sum(self._centroids ** 2, axis=1)[None, :]
                - 2.0 * tf.matmul(z, self._centroids, transpose_b=True))
        return tf.argmin(dist, axis=1, output_type=tf.int32)

    def _test_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        logits = self.head(self.fcn(x1, training=False), training=False)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(self.assign(x2), logits))
        return loss, self.whitened(x1), self.whitened(x2)
