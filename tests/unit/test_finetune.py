"""M1: spec strings build the expected layers; bad tokens are named; pooling and output models."""

import keras
import numpy as np
import pytest

from patchwork_widget.models.finetune import (
    FineTuneOptions,
    LayerSpec,
    ResidualBlock,
    build_finetuning_model,
    build_models,
    build_output_model,
    parse_spec,
)


def layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def test_parse_spec_reads_every_token_kind():
    assert parse_spec("128, p,d ,R,64") == [
        LayerSpec("conv", 128), LayerSpec("pool"), LayerSpec("dropout"), LayerSpec("residual"),
        LayerSpec("conv", 64)]
    assert parse_spec("") == [] and parse_spec("  ") == []


@pytest.mark.parametrize("spec,token,position", [
    ("128,x,64", "x", 2), ("0", "0", 1), ("-3", "-3", 1), ("1.5,p", "1.5", 1),
    ("p,,d", "", 2), ("32,pool", "pool", 2),
])
def test_bad_tokens_are_named_with_their_position(spec, token, position):
    with pytest.raises(ValueError) as e:
        parse_spec(spec)
    msg = str(e.value)
    assert f"bad token {token!r} at position {position}" in msg
    assert "positive integer" in msg and "'p'" in msg and "'r'" in msg
    with pytest.raises(ValueError, match="bad token"):
        FineTuneOptions(kind="convnet", spec=spec)


def test_convnet_builds_the_expected_layers():
    opts = FineTuneOptions(kind="convnet", spec="128,p,d,r,64", kernel_size=5,
                           dropout_rate=0.25, pooling="avg")
    model = build_finetuning_model((9, 9, 16), opts)
    got = layers(model)
    assert [type(x) for x in got] == [
        keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.SpatialDropout2D,
        ResidualBlock, keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D]
    c1, pool, drop, res, c2, _ = got
    assert (c1.filters, c1.kernel_size, c1.padding) == (128, (5, 5), "same")
    assert c1.activation is keras.activations.relu and c2.filters == 64
    assert pool.pool_size == (2, 2) and pool.strides == (2, 2)
    assert drop.rate == 0.25
    assert res.kernel_size == 5 and res.conv1.filters == 128 and res.conv1.kernel_size == (5, 5)
    assert model.output_shape == (None, 64)
    assert model.get_layer("maxpool_1").output.shape == (None, 5, 5, 128)  # odd size rounds up


@pytest.mark.parametrize("pooling,cls,dim", [
    ("max", keras.layers.GlobalMaxPooling2D, 8), ("avg", keras.layers.GlobalAveragePooling2D, 8),
    ("flatten", keras.layers.Flatten, 3 * 4 * 8)])
def test_pool_models(pooling, cls, dim):
    model = build_finetuning_model((3, 4, 8), FineTuneOptions(pooling=pooling))
    assert [type(x) for x in layers(model)] == [cls]
    x = np.random.default_rng(0).random((2, 3, 4, 8)).astype(np.float32)
    ref = {"max": x.max(axis=(1, 2)), "avg": x.mean(axis=(1, 2)), "flatten": x.reshape(2, -1)}
    np.testing.assert_allclose(model(x).numpy(), ref[pooling], rtol=1e-6)
    assert model.output_shape == (None, dim)


def test_vector_features_pass_through_and_refuse_a_convnet():
    model = build_finetuning_model((12,), FineTuneOptions())
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(model(x).numpy(), x)
    with pytest.raises(ValueError, match="use kind='pool'"):
        build_finetuning_model((12,), FineTuneOptions(kind="convnet", spec="8"))
    with pytest.raises(ValueError, match="vectors"):
        build_finetuning_model((3, 3), FineTuneOptions())


def test_residual_block_computes_relu_of_x_plus_two_convs():
    keras.utils.set_random_seed(1)
    block = ResidualBlock(3)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 4)).astype(np.float32)
    out = block(x).numpy()
    inner = block.conv2(block.conv1(x)).numpy()
    np.testing.assert_allclose(out, np.maximum(x + inner, 0.0), atol=1e-6)
    assert isinstance(block.conv1.activation, type(keras.activations.relu)) and out.shape == x.shape


def test_output_model_is_a_sigmoid_dense_layer():
    model = build_output_model(6, 3)
    (dense,) = layers(model)
    assert isinstance(dense, keras.layers.Dense) and dense.units == 3
    assert dense.activation is keras.activations.sigmoid
    with pytest.raises(ValueError, match="num_classes"):
        build_output_model(6, 0)


def test_build_models_from_features_or_an_extractor():
    m = build_models(["a", "b"], feature_shape=(4, 4, 8),
                     options=FineTuneOptions(kind="convnet", spec="16,r"))
    assert m.feature_shape == (4, 4, 8) and m.output.output_shape == (None, 2)
    assert m.as_dict()["feature_extractor"] is None
    with pytest.raises(ValueError, match="no extractor"):
        m.classifier()
    inp = keras.Input((8, 8, 3))
    ext = keras.Model(inp, keras.layers.Conv2D(5, 3)(inp))
    m2 = build_models(["a"], extractor=ext)
    assert m2.feature_shape == (6, 6, 5) and not ext.trainable
    x = np.random.default_rng(2).random((3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(m2.classifier()(x).numpy(),
                               m2.output(m2.fine_tuning(ext(x))).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="feature_shape"):
        build_models(["a"])
    with pytest.raises(ValueError, match="at least one class"):
        build_models([], feature_shape=(3,))


@pytest.mark.parametrize("bad", [{"kind": "mlp"}, {"pooling": "sum"}, {"kernel_size": 0},
                                 {"dropout_rate": 1.0}])
def test_options_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FineTuneOptions(**bad)
    with pytest.raises(ValueError, match="unknown fine-tuning option"):
        FineTuneOptions.from_dict({"filters": 3})
