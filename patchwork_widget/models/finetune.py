"""Fine-tuning and output models on top of a frozen feature extractor (feature M1).

The classifier is three Keras models in a row, as in the reference:

- the **extractor** (optional; absent when features were pre-extracted) maps images to
  feature maps ``(h, w, c)`` or vectors ``(d,)``;
- the **fine-tuning model** maps features to a vector: a global pooling (max / avg /
  flatten), or a small convnet from a spec string followed by that pooling;
- the **output model** is ``Dense(C, sigmoid)``: one independent probability per class; or,
  for a one-label-per-image table, ``Dense(C, softmax)``: one distribution over the classes.

Spec strings: comma-separated tokens, e.g. ``"128,p,d,r,64"``. An integer ``k`` is a
``Conv2D(k, kernel_size, padding="same", activation="relu")``; ``p`` a 2x2 max-pool with stride
2 (``padding="same"``, so odd sizes round up); ``d`` a ``SpatialDropout2D(dropout_rate)``
(Tompson et al. 2015); ``r`` a :class:`ResidualBlock` (He et al. 2016).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras

from patchwork_widget.options.checks import check_names, check_shape
from patchwork_widget.options.model import (
    FineTuneOptions,
    HeadKind,
    LayerKind,
    LayerSpec,
    Pooling,
    parse_spec,
)

__all__ = ["FineTuneOptions", "LayerSpec", "PatchworkModels", "ResidualBlock",
           "build_classifier", "build_finetuning_model", "build_models", "build_output_model",
           "parse_spec"]


@keras.saving.register_keras_serializable(package="patchwork_widget")
class ResidualBlock(keras.layers.Layer):
    """Two same-padded ReLU convolutions with an identity shortcut (He et al. 2016,
    https://arxiv.org/abs/1512.03385): ``relu(x + conv(relu(conv(x))))``.

    The convolutions keep the input's channel count, so the shortcut needs no projection.
    """

    def __init__(self, kernel_size: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)

    def build(self, input_shape: Tuple[Optional[int], ...]) -> None:
        channels = int(input_shape[-1])
        self.conv1 = keras.layers.Conv2D(channels, self.kernel_size, padding="same",
                                         activation="relu", name="conv1")
        self.conv2 = keras.layers.Conv2D(channels, self.kernel_size, padding="same",
                                         name="conv2")
        self.conv1.build(input_shape)
        self.conv2.build(input_shape)

    def call(self, inputs):
        return keras.ops.relu(inputs + self.conv2(self.conv1(inputs)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


def _pooling_layer(pooling: Pooling) -> keras.layers.Layer:
    if pooling is Pooling.MAX:
        return keras.layers.GlobalMaxPooling2D(name="pool")
    if pooling is Pooling.AVG:
        return keras.layers.GlobalAveragePooling2D(name="pool")
    return keras.layers.Flatten(name="pool")


def build_finetuning_model(feature_shape: Sequence[int],
                           options: FineTuneOptions = FineTuneOptions()) -> keras.Model:
    """Fine-tuning model from features of shape ``feature_shape`` to a vector.

    Parameters
    ----------
    feature_shape : sequence of int
        ``(h, w, c)`` feature maps or ``(d,)`` vectors (one sample, no batch axis).
    options : FineTuneOptions
        Kind, pooling and convnet spec.

    Returns
    -------
    keras.Model
        Named ``"fine_tuning"``. For vector features and ``kind="pool"`` it is the identity.

    Raises
    ------
    ValueError
        For a convnet on vector features, or a feature shape of another rank.
    """
    feature_shape = tuple(int(s) for s in feature_shape)
    inputs = keras.Input(feature_shape, name="features")
    if len(feature_shape) == 1:
        if options.kind is HeadKind.CONVNET:
            raise ValueError(
                f"a convnet fine-tuning model needs feature maps (N x h x w x c); these features "
                f"are vectors of length {feature_shape[0]}: use kind='pool'"
            )
        x = keras.layers.Identity(name="identity")(inputs)
    elif len(feature_shape) == 3:
        x = inputs
        if options.kind is HeadKind.CONVNET:
            for i, layer in enumerate(parse_spec(options.spec)):
                if layer.kind is LayerKind.CONV:
                    x = keras.layers.Conv2D(layer.filters, options.kernel_size, padding="same",
                                            activation="relu", name=f"conv_{i}")(x)
                elif layer.kind is LayerKind.POOL:
                    x = keras.layers.MaxPooling2D(2, 2, padding="same", name=f"maxpool_{i}")(x)
                elif layer.kind is LayerKind.DROPOUT:
                    x = keras.layers.SpatialDropout2D(options.dropout_rate,
                                                      name=f"dropout_{i}")(x)
                else:
                    x = ResidualBlock(options.kernel_size, name=f"residual_{i}")(x)
        x = _pooling_layer(options.pooling)(x)
    else:
        raise ValueError(
            f"features must be vectors (d,) or feature maps (h, w, c); got shape {feature_shape}"
        )
    return keras.Model(inputs, x, name="fine_tuning")


def build_output_model(input_dim: int, num_classes: int,
                       single_label: bool = False) -> keras.Model:
    """``Dense(num_classes, sigmoid)`` (``Dense(num_classes, softmax)`` with ``single_label``)
    on a vector of ``input_dim``; named ``"output"``."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    if single_label and num_classes < 2:
        raise ValueError(f"a one-label-per-image (softmax) output needs at least 2 classes; "
                         f"got {num_classes}")
    inputs = keras.Input((int(input_dim),), name="finetuned")
    activation = "softmax" if single_label else "sigmoid"
    out = keras.layers.Dense(num_classes, activation=activation, name="probabilities")(inputs)
    return keras.Model(inputs, out, name="output")


def build_classifier(extractor: Optional[keras.Model], fine_tuning: keras.Model,
                     output: keras.Model, name: str = "classifier") -> keras.Model:
    """One model ``extractor -> fine_tuning -> output``; without an extractor, the head
    ``fine_tuning -> output`` on features. The parts are shared, not copied."""
    first = extractor if extractor is not None else fine_tuning
    inputs = keras.Input(tuple(first.input_shape[1:]), name="images" if extractor else "features")
    x = extractor(inputs, training=False) if extractor is not None else inputs
    return keras.Model(inputs, output(fine_tuning(x)), name=name)


@dataclass
class PatchworkModels:
    """The trainable parts of a classifier and what they were built for.

    Attributes
    ----------
    fine_tuning, output : keras.Model
        The fine-tuning and output models (trained by :func:`~patchwork_widget.models.train.fit`).
    classes : list of str
        Output order of the classes.
    extractor : keras.Model or None
        Feature extractor, when training or predicting from images.
    options : FineTuneOptions
        How ``fine_tuning`` was built.
    trained : bool
        Whether training (or loading) has set the weights; :func:`~patchwork_widget.models.fit`
        starts a new model's output bias at the classes' log prior odds.
    """

    fine_tuning: keras.Model
    output: keras.Model
    classes: List[str]
    extractor: Optional[keras.Model] = None
    options: FineTuneOptions = field(default_factory=FineTuneOptions)
    trained: bool = False

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        return tuple(int(s) for s in self.fine_tuning.input_shape[1:])

    @property
    def single_label(self) -> bool:
        """Whether the output is a softmax (one label per image) rather than sigmoids."""
        return self.output.layers[-1].get_config()["activation"] == "softmax"

    def set_single_label(self, single_label: bool) -> None:
        """Switch the output between sigmoid and softmax, keeping the output layer's weights
        (a new output model; the next fit retrains it)."""
        if bool(single_label) == self.single_label:
            return
        weights = self.output.get_weights()
        self.output = build_output_model(int(self.output.input_shape[-1]), len(self.classes),
                                         bool(single_label))
        self.output.set_weights(weights)

    def head(self) -> keras.Model:
        """``fine_tuning -> output`` on features."""
        return build_classifier(None, self.fine_tuning, self.output, name="head")

    def classifier(self) -> keras.Model:
        """End-to-end ``extractor -> fine_tuning -> output`` on images in [0, 1]."""
        if self.extractor is None:
            raise ValueError("no extractor: these models work on pre-extracted features only")
        return build_classifier(self.extractor, self.fine_tuning, self.output)

    def as_dict(self) -> Dict[str, Optional[keras.Model]]:
        """``{"feature_extractor", "fine_tuning", "output"}`` as the reference's GUI.models."""
        return {"feature_extractor": self.extractor, "fine_tuning": self.fine_tuning,
                "output": self.output}

    def describe(self) -> Dict[str, Any]:
        return {"classes": list(self.classes), "options": self.options.as_dict(),
                "feature_shape": list(self.feature_shape), "single_label": self.single_label}


def build_models(
    classes: Sequence[str],
    *,
    feature_shape: Optional[Sequence[int]] = None,
    extractor: Optional[keras.Model] = None,
    options: FineTuneOptions = FineTuneOptions(),
    single_label: bool = False,
) -> PatchworkModels:
    """Build fine-tuning and output models for ``classes``.

    Parameters
    ----------
    classes : sequence of str
        Class names, in output order.
    feature_shape : sequence of int, optional
        Shape of one sample's features; taken from ``extractor`` when omitted.
    extractor : keras.Model, optional
        Frozen feature extractor (``trainable`` is set to False here).
    options : FineTuneOptions
        Fine-tuning model choices.
    single_label : bool
        A softmax output (one label per image) instead of one sigmoid per class;
        :func:`~patchwork_widget.models.fit` switches it to what the labels or
        ``TrainOptions.single_label`` ask for.

    Returns
    -------
    PatchworkModels
    """
    if not isinstance(single_label, bool):
        raise ValueError(f"single_label must be True or False; got {single_label!r}")
    classes = check_names("classes", classes, what="class name")
    if feature_shape is not None:
        feature_shape = check_shape("feature_shape", feature_shape, lengths=(1, 3),
                                    what="(d,) for vectors or (h, w, c) for feature maps")
    if feature_shape is None:
        if extractor is None:
            raise ValueError("pass feature_shape (pre-extracted features) or an extractor")
        feature_shape = tuple(extractor.output_shape[1:])
        if any(s is None for s in feature_shape):
            raise ValueError(
                f"the extractor's output shape {extractor.output_shape} has unknown sizes: give "
                "it a fixed input shape or pass feature_shape"
            )
    if extractor is not None:
        extractor.trainable = False
    fine_tuning = build_finetuning_model(feature_shape, options)
    output = build_output_model(int(fine_tuning.output_shape[-1]), len(classes), single_label)
    return PatchworkModels(fine_tuning, output, classes, extractor, options)
