"""Default fully-convolutional networks and the projection head shared by the trainers.

Both networks take images of any size (``Input((None, None, num_channels))``) and return a
feature map; they are sized for the small patches this tool is used with (32-256 pixels) and
for training on a CPU. Batch normalisation uses momentum 0.9 so that its moving statistics
catch up within a few dozen steps of a short pre-training run.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from patchwork_widget.options.checks import check_bool, check_int, check_number, shown

__all__ = ["BNAlexNetFCN", "ResNetFCN", "projection_head"]

BN_MOMENTUM = 0.9


def _bn(synchronized: bool, name: str) -> layers.Layer:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=synchronized, name=name)


def _check_common(synchronized_bn: bool, name: str) -> None:
    check_bool("synchronized_bn", synchronized_bn)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {shown(name)}")


def ResNetFCN(
    num_channels: int = 3,
    filters: Sequence[int] = (32, 64, 128),
    blocks_per_stage: int = 1,
    synchronized_bn: bool = False,
    name: str = "resnet_fcn",
) -> keras.Model:
    """A small residual network (He et al. 2016, https://arxiv.org/abs/1512.03385).

    A 3x3 stem, then one stage per entry of ``filters`` made of ``blocks_per_stage`` basic
    blocks (two 3x3 convolutions with batch norm, identity or 1x1 projection shortcut); every
    stage after the first halves the resolution. The output has ``filters[-1]`` channels at
    ``1 / 2**(len(filters) - 1)`` of the input size.

    Parameters
    ----------
    num_channels : int
        Input channels.
    filters : sequence of int
        Width of each stage.
    blocks_per_stage : int
        Residual blocks per stage, >= 1.
    synchronized_bn : bool
        Batch statistics over the global batch under a multi-replica strategy.
    name : str
        Model name.
    """
    check_int("num_channels", num_channels, 1)
    _check_common(synchronized_bn, name)
    if (isinstance(filters, (str, bytes)) or not hasattr(filters, "__len__") or not filters
            or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters)):
        raise ValueError(f"filters must be a non-empty sequence of ints >= 1; got "
                         f"{shown(filters)}")
    check_int("blocks_per_stage", blocks_per_stage, 1)
    inp = keras.Input((None, None, num_channels))
    x = layers.Conv2D(filters[0], 3, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.ReLU(name="stem_relu")(_bn(synchronized_bn, "stem_bn")(x))
    for s, width in enumerate(filters):
        for b in range(blocks_per_stage):
            stride = 2 if (s > 0 and b == 0) else 1
            tag = f"s{s}b{b}"
            shortcut = x
            if stride != 1 or x.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False,
                                         name=f"{tag}_proj")(x)
                shortcut = _bn(synchronized_bn, f"{tag}_proj_bn")(shortcut)
            y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False,
                              name=f"{tag}_conv1")(x)
            y = layers.ReLU(name=f"{tag}_relu1")(_bn(synchronized_bn, f"{tag}_bn1")(y))
            y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{tag}_conv2")(y)
            y = _bn(synchronized_bn, f"{tag}_bn2")(y)
            x = layers.ReLU(name=f"{tag}_out")(layers.Add(name=f"{tag}_add")([shortcut, y]))
    return keras.Model(inp, x, name=name)


def BNAlexNetFCN(
    num_channels: int = 3,
    width: float = 0.5,
    synchronized_bn: bool = False,
    name: str = "bn_alexnet_fcn",
) -> keras.Model:
    """AlexNet's convolutional stack with batch norm after each convolution, for small images.

    Five convolutions (``96, 256, 384, 384, 256`` filters times ``width``; kernels 5, 5, 3, 3,
    3) with 2x2 max-pooling after the first, second and fifth, as in the BN-AlexNet used for
    self-supervised benchmarks (Krizhevsky et al. 2012; Ioffe and Szegedy 2015), with a
    stride-1 5x5 first layer instead of 11x11 stride 4 so a 32-pixel patch keeps a 4x4 map.

    Parameters
    ----------
    num_channels : int
        Input channels.
    width : float
        Multiplier of every layer's filter count, > 0.
    synchronized_bn : bool
        Batch statistics over the global batch under a multi-replica strategy.
    name : str
        Model name.
    """
    check_int("num_channels", num_channels, 1)
    _check_common(synchronized_bn, name)
    check_number("width", width, 0.0, open_low=True)
    spec = [(96, 5, True), (256, 5, True), (384, 3, False), (384, 3, False), (256, 3, True)]
    inp = keras.Input((None, None, num_channels))
    x = inp
    for i, (f, k, pool) in enumerate(spec):
        x = layers.Conv2D(max(1, int(round(f * width))), k, padding="same", use_bias=False,
                          name=f"conv{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(_bn(synchronized_bn, f"bn{i + 1}")(x))
        if pool:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    return keras.Model(inp, x, name=name)


def projection_head(
    in_channels: int,
    num_hidden: int = 128,
    output_dim: int = 64,
    batchnorm: bool = True,
    synchronized_bn: bool = False,
    name: str = "projection_head",
) -> keras.Model:
    """Global average pooling, then an MLP projection to the contrastive space.

    ``Dense(num_hidden) [-> BatchNorm] -> ReLU -> Dense(output_dim)`` (SimCLR's head, Chen et
    al. 2020; MoCo v2's, Chen et al. 2020, https://arxiv.org/abs/2003.04297). With
    ``num_hidden=0`` the head is one linear layer (MoCo v1).

    Parameters
    ----------
    in_channels : int
        Channels of the feature map the head reads.
    num_hidden : int
        Hidden units, >= 0.
    output_dim : int
        Embedding size, >= 1.
    batchnorm : bool
        Batch norm on the hidden layer (see docs/feature.md on when to switch it off).
    synchronized_bn : bool
        Batch statistics over the global batch under a multi-replica strategy.
    name : str
        Model name.
    """
    check_int("in_channels", in_channels, 1)
    check_int("num_hidden", num_hidden, 0)
    check_int("output_dim", output_dim, 1)
    check_bool("batchnorm", batchnorm)
    _check_common(synchronized_bn, name)
    inp = keras.Input((None, None, in_channels))
    x = layers.GlobalAveragePooling2D(name="pool")(inp)
    if num_hidden:
        x = layers.Dense(num_hidden, use_bias=not batchnorm, name="hidden")(x)
        if batchnorm:
            x = _bn(synchronized_bn, "hidden_bn")(x)
        x = layers.ReLU(name="hidden_relu")(x)
    out = layers.Dense(output_dim, name="embedding")(x)
    return keras.Model(inp, out, name=name)
