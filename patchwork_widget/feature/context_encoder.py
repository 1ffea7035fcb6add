"""Context encoders (feature F9): learn features by inpainting random rectangles, with a
reconstruction loss and an optional adversarial one."""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from patchwork_widget.feature.base import FeatureTrainer
from patchwork_widget.feature.data import TrainingData, file_list
from patchwork_widget.images.pipeline import dataset
from patchwork_widget.models.optim import build_optimizer
from patchwork_widget.options.checks import check_number

__all__ = ["ContextEncoderTrainer", "decoder", "discriminator", "random_rectangles",
           "reconstruction_loss"]

TEST_MASK_SEED = (14, 9)   # the test images get the same rectangles at every evaluation
INPAINT_IMAGES = 6          # test images shown in TensorBoard's "inpainting"


def random_rectangles(n: Any, height: int, width: int, size: Tuple[float, float],
                      seed: Optional[Tuple[int, int]] = None) -> tf.Tensor:
    """``(n, height, width, 1)`` float masks, 1 inside one rectangle per image whose sides are
    uniform in ``size`` (fractions of the image's sides), placed uniformly; stateless (the same
    every call) when ``seed`` is given."""
    def draw(i: int) -> tf.Tensor:
        if seed is None:
            return tf.random.uniform([n])
        return tf.random.stateless_uniform([n], seed=(seed[0], seed[1] + i))

    lo, hi = size
    rh = tf.round((lo + (hi - lo) * draw(0)) * height)
    rw = tf.round((lo + (hi - lo) * draw(1)) * width)
    top = tf.floor(draw(2) * (height - rh + 1))
    left = tf.floor(draw(3) * (width - rw + 1))
    rows = tf.range(height, dtype=tf.float32)[None, :]
    cols = tf.range(width, dtype=tf.float32)[None, :]
    in_rows = tf.logical_and(rows >= top[:, None], rows < (top + rh)[:, None])
    in_cols = tf.logical_and(cols >= left[:, None], cols < (left + rw)[:, None])
    inside = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return tf.cast(inside, tf.float32)[..., None]


def reconstruction_loss(images: tf.Tensor, predicted: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """Mean squared error inside each image's rectangle (per image, then over the batch)."""
    err = tf.reduce_sum(masks * tf.square(predicted - images), axis=[1, 2, 3])
    area = tf.reduce_sum(masks, axis=[1, 2, 3]) * tf.cast(tf.shape(images)[-1], tf.float32)
    return tf.reduce_mean(err / tf.maximum(area, 1.0))


def decoder(feature_shape: Sequence[int], imshape: Tuple[int, int], num_channels: int,
            name: str = "decoder") -> keras.Model:
    """From the fcn's feature map ``(h, w, C)`` back to ``(H, W, num_channels)`` images in
    [0, 1]: stride-2 transposed convolutions (halving the width each time, at least 16) until
    the map is at least the image's size, a resize to exactly ``imshape``, and a sigmoid 3x3
    convolution."""
    h, w, c = (int(s) for s in feature_shape)
    stages = max(0, math.ceil(math.log2(max(imshape[0] / h, imshape[1] / w))))
    inp = keras.Input((h, w, c))
    x = inp
    for i in range(stages):
        x = layers.Conv2DTranspose(max(c // 2 ** (i + 1), 16), 4, strides=2, padding="same",
                                   activation="relu", name=f"up{i + 1}")(x)
    x = layers.Resizing(*imshape, name="resize")(x)
    out = layers.Conv2D(num_channels, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(inp, out, name=name)


def discriminator(imshape: Tuple[int, int], num_channels: int, filters: int = 32,
                  name: str = "discriminator") -> keras.Model:
    """A small convolutional critic: three stride-2 LeakyReLU convolutions, pooling, one
    logit (real image vs inpainted)."""
    inp = keras.Input((*imshape, num_channels))
    x = inp
    for i in range(3):
        x = layers.Conv2D(filters * 2 ** i, 4, strides=2, padding="same", name=f"conv{i + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(1, name="logit")(x), name=name)


class ContextEncoderTrainer(FeatureTrainer):
    """Train ``fcn`` as the encoder of a context encoder (Pathak et al. 2016,
    https://arxiv.org/abs/1604.07379).

    Every training image loses a random rectangle (set to 0); ``fcn`` and a decoder fill it
    in. The loss is ``recon_weight`` times the squared error inside the rectangle, plus, with
    ``adv_weight > 0``, ``adv_weight`` times the adversarial loss of a discriminator that tells
    real images from inpainted ones (trained in the same step with its own optimizer of the
    same kind and schedule). Unlike the paper the border of the rectangle has no extra weight.

    With ``testdata``: ``test_loss`` is the reconstruction loss on (augmented) test images,
    with the same rectangles at every evaluation (a train loss far below it means
    memorising), and the
    ``inpainting`` image shows test images, their masked inputs and the inpainted results.
    Alignment and uniformity are measured on the pooled features of two views.

    Parameters
    ----------
    logdir, trainingdata, testdata, fcn, augment
        See :class:`~patchwork_widget.feature.base.FeatureTrainer`.
    recon_weight : float
        Weight of the reconstruction loss, > 0.
    adv_weight : float
        Weight of the adversarial loss, >= 0 (0: no discriminator; the paper used 0.001).
    mask_size : (float, float)
        Range of the rectangle's sides as fractions of the image's, within (0, 1].
    **kwargs
        ``options``, ``downstream_labels``, ``strategy`` or the option fields as keywords.
    """

    modelname = "ContextEncoder"
    needs_augment = False
    min_local_batch = 1

    def __init__(
        self,
        logdir: str,
        trainingdata: TrainingData,
        testdata: Optional[TrainingData] = None,
        fcn: Optional[keras.Model] = None,
        augment: Union[bool, Mapping[str, Any], None] = None,
        recon_weight: float = 1.0,
        adv_weight: float = 0.0,
        mask_size: Tuple[float, float] = (0.25, 0.5),
        **kwargs: Any,
    ) -> None:
        self.recon_weight = check_number("recon_weight", recon_weight, 0.0, open_low=True)
        self.adv_weight = check_number("adv_weight", adv_weight, 0.0)
        if not (isinstance(mask_size, (tuple, list)) and len(mask_size) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in mask_size)
                and 0 < mask_size[0] <= mask_size[1] <= 1):
            raise ValueError(f"mask_size must be (low, high) with 0 < low <= high <= 1 "
                             f"(fractions of the image's sides); got {mask_size!r}")
        self.mask_size = (float(mask_size[0]), float(mask_size[1]))
        super().__init__(logdir, trainingdata, testdata, fcn, augment, **kwargs)

    def _method_config(self) -> Dict[str, Any]:
        return {"recon_weight": self.recon_weight, "adv_weight": self.adv_weight,
                "mask_size": list(self.mask_size)}

    def _training_dataset(self, trainingdata: TrainingData) -> Tuple[tf.data.Dataset, int]:
        """Batches ``(images, masks)``: augmented images and their random rectangles."""
        if file_list(trainingdata, "trainingdata") is None and not (
                isinstance(trainingdata, np.ndarray) and trainingdata.ndim in (3, 4)):
            raise ValueError("ContextEncoderTrainer needs trainingdata as image paths or an "
                             f"image array (N, H, W[, C]); got {type(trainingdata).__name__}")
        o = self.options
        ds, steps = dataset(trainingdata, batch_size=self.batch_size, shuffle=True,
                            augment=self.augment_params, drop_remainder=True, cache=o.cache,
                            num_parallel_calls=o.num_parallel_calls, **self._input)
        if steps == 0:
            raise ValueError(f"batch_size={self.batch_size} is larger than the training set "
                             f"({len(trainingdata)} images); lower batch_size or give more "
                             "images")
        h, w = self.imshape

        @tf.autograph.experimental.do_not_convert
        def with_masks(x: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
            return x, random_rectangles(tf.shape(x)[0], h, w, self.mask_size)

        return ds.map(with_masks, num_parallel_calls=o.num_parallel_calls), steps

    def _build_models(self) -> Dict[str, keras.Model]:
        shape = self.fcn.compute_output_shape((None, *self.imshape, self.num_channels))[1:]
        self.decoder = decoder(shape, self.imshape, self.num_channels)
        models = {"decoder": self.decoder}
        if self.adv_weight > 0:
            self.discriminator = discriminator(self.imshape, self.num_channels)
            self.disc_optimizer = build_optimizer(
                self.options.optimizer, self._schedule, self.discriminator.trainable_variables,
                self.options.weight_decay)
            models["discriminator"] = self.discriminator
        return models

    def _trainable_variables(self) -> list:
        return self.fcn.trainable_variables + self.decoder.trainable_variables

    def inpaint(self, images: tf.Tensor, masks: tf.Tensor, training: bool = False
                ) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(predicted, composite)``: the decoder's whole image from the masked input, and the
        input with only the rectangle replaced by it."""
        masked = images * (1.0 - masks)
        predicted = self.decoder(self.fcn(masked, training=training), training=training)
        return predicted, masked + predicted * masks

    def _replica_step(self, images: tf.Tensor, masks: tf.Tensor) -> Dict[str, tf.Tensor]:
        variables = self._trainable_variables()
        bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")
        with tf.GradientTape() as tape:
            predicted, composite = self.inpaint(images, masks, training=True)
            recon = reconstruction_loss(images, predicted, masks)
            loss = self.recon_weight * recon
            if self.adv_weight > 0:
                fake = self.discriminator(composite, training=True)
                adv = tf.reduce_mean(bce(tf.ones_like(fake), fake))
                loss += self.adv_weight * adv
            scaled = loss / self.num_replicas
        self._minimize(tape, scaled, variables)
        out = {"loss": loss, "reconstruction_loss": recon}
        if self.adv_weight > 0:
            disc_vars = self.discriminator.trainable_variables
            with tf.GradientTape() as tape:
                real = self.discriminator(images, training=True)
                fake = self.discriminator(tf.stop_gradient(composite), training=True)
                d_loss = 0.5 * (tf.reduce_mean(bce(tf.ones_like(real), real))
                                + tf.reduce_mean(bce(tf.zeros_like(fake), fake)))
                d_scaled = d_loss / self.num_replicas
            grads = tape.gradient(d_scaled, disc_vars)
            self.disc_optimizer.apply_gradients(zip(grads, disc_vars))
            out.update(adversarial_loss=adv, discriminator_loss=d_loss)
        return out

    def _test_masks(self, images: tf.Tensor) -> tf.Tensor:
        h, w = self.imshape
        return random_rectangles(tf.shape(images)[0], h, w, self.mask_size, TEST_MASK_SEED)

    def _test_step(self, x1: tf.Tensor, x2: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        masks = self._test_masks(x1)
        predicted, _ = self.inpaint(x1, masks)

        def pooled(x: tf.Tensor) -> tf.Tensor:
            return tf.math.l2_normalize(tf.reduce_mean(self.fcn(x, training=False), [1, 2]), 1)

        return reconstruction_loss(x1, predicted, masks), pooled(x1), pooled(x2)

    def _test_metrics(self) -> Dict[str, float]:
        """The base's test metrics, and the ``inpainting`` image of a few test images."""
        metrics = super()._test_metrics()
        images = next(iter(self._test_ds))[0][:INPAINT_IMAGES]
        masks = self._test_masks(images)
        _, composite = self.inpaint(images, masks)
        rows = tf.concat([images, images * (1.0 - masks), composite], axis=2)  # side by side
        grid = tf.reshape(rows, [1, -1, rows.shape[2], rows.shape[3]])
        with self.reporting.writer.as_default(step=self.step):
            tf.summary.image("inpainting", grid[..., :3] if grid.shape[-1] >= 3 else grid[..., :1])
        return metrics
