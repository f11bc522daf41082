"""BatchNormalization/LayerNormalization in training mode (transpiler/emit/train/norm_training)
and convolution training: ktrans's training steps against Keras 3's train_on_batch, weights
and moving statistics included.

The normalization layers' lowering is wired in here by monkeypatching `lower` (training:
norm_training's functions; inference: the layer's own lowering where it exists, else the
same arithmetic), until transpiler/layers/normalization.py calls them itself."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_step import (
    keras_weights_now,
    ktrans_graph,
    onnx_layout,
    run_step,
    set_keras_weights,
)
from transpiler.emit.onnx import initial_weights
from transpiler.emit.train.names import LOSS_OUTPUT
from transpiler.emit.train.norm_training import (
    batch_norm_inference,
    batch_norm_training,
    layer_norm_training,
)
from transpiler.layers import normalization
from transpiler.layers.base import Layer

keras = pytest.importorskip("keras")
L = keras.layers


@pytest.fixture(autouse=True)
def wired(monkeypatch):
    bn_lower = normalization.BatchNormalization.lower

    def bn(self, ctx, inputs):
        if ctx.training:
            return [batch_norm_training(ctx, self, inputs[0])]
        try:
            return bn_lower(self, ctx, inputs)
        except NotImplementedError:  # no inference lowering written yet
            return [batch_norm_inference(ctx, self, inputs[0])]

    ln_lower = normalization.LayerNormalization.lower

    def ln(self, ctx, inputs):
        if ctx.training or ln_lower is Layer.lower:
            return [layer_norm_training(ctx, self, inputs[0])]
        return ln_lower(self, ctx, inputs)

    monkeypatch.setattr(normalization.BatchNormalization, "lower", bn)
    monkeypatch.setattr(normalization.LayerNormalization, "lower", ln)


def perturbed_weights(graph, seed=3):
    """Initial weights with non-trivial gamma, beta and moving statistics."""
    weights = initial_weights(graph, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in graph.layers:
        for name, value in weights[layer.name].items():
            if name in ("gamma", "moving_variance"):
                weights[layer.name][name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
            elif name in ("beta", "moving_mean"):
                weights[layer.name][name] = rng.normal(0, 0.3, value.shape).astype(np.float32)
    return weights


def compare(tmp_path, kdl, keras_model, x, y, steps=2, rtol=1e-5, atol=1e-6):
    graph = ktrans_graph(kdl, tmp_path)
    config = graph.trains["default"]
    weights = perturbed_weights(graph)
    km = keras_model()
    set_keras_weights(km, graph, weights)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    keras_logs = [km.train_on_batch(x, y, return_dict=True) for _ in range(steps)]

    history, state = run_step(graph, config, weights, {"x": x}, {"output": y}, steps=steps)
    expected = onnx_layout(graph, keras_weights_now(km, graph))
    # training updates the inference model's own initializers (params and buffers; SGD
    # has no slots); the inference model may hold constants besides
    assert set(state) <= set(expected), sorted(set(state) - set(expected))
    for name, value in state.items():
        np.testing.assert_allclose(value, expected[name], rtol=rtol, atol=atol, err_msg=name)
    for ours, theirs in zip(history, keras_logs):
        np.testing.assert_allclose(ours[LOSS_OUTPUT], theirs["loss"], rtol=1e-5)
    return graph, state, weights


TRAIN = """
train M {
    loss = categorical_crossentropy
    optimizer = SGD(learning_rate=0.1)
}
"""


def batch(shape, classes, seed=0, n=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=(n, *shape)).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


BN_VARIANTS = [
    ("", {}),
    ("momentum=0.9", {"momentum": 0.9}),
    ("momentum=0.8, epsilon=0.01, center=false", dict(momentum=0.8, epsilon=0.01, center=False)),
    ("scale=false", {"scale": False}),
    ("trainable=false", {"trainable": False}),
]


@pytest.mark.parametrize(
    ("args", "kwargs"), BN_VARIANTS, ids=[a or "defaults" for a, _ in BN_VARIANTS]
)
def test_dense_batchnorm_dense_matches_keras(tmp_path, args, kwargs):
    kdl = f"""
model M {{
    input x: float32[5]
    Dense(6)
    BatchNormalization({args})
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((5,))
        h = L.BatchNormalization(**kwargs)(L.Dense(6)(inp))
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    x, y = batch((5,), 3)
    graph, state, weights = compare(tmp_path, kdl, keras_model, x, y)
    bn = next(layer.name for layer in graph.layers if layer.keras_class() == "BatchNormalization")
    moved = not np.allclose(state[f"{bn}/moving_mean"], weights[bn]["moving_mean"])
    assert moved == kwargs.get("trainable", True)


def test_conv_batchnorm_channels_last_matches_keras(tmp_path):
    """BN on a conv output stored channels-first (the channel axis is physical axis 1)."""
    kdl = f"""
model M {{
    input x: float32[6, 6, 2]
    Conv2D(3, 3, padding=same)
    BatchNormalization(momentum=0.9)
    Activation(relu)
    MaxPooling2D(2)
    Flatten()
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((6, 6, 2))
        h = L.BatchNormalization(momentum=0.9)(L.Conv2D(3, 3, padding="same")(inp))
        h = L.Flatten()(L.MaxPooling2D(2)(L.Activation("relu")(h)))
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    x, y = batch((6, 6, 2), 3)
    compare(tmp_path, kdl, keras_model, x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", ["-1", "[1, 2, 3]"])
def test_conv_layernorm_matches_keras(tmp_path, axis):
    """LayerNormalization over the channels, or over (height, width, channels) of a tensor
    stored channels-first (gamma is (h, w, c) in Keras's order)."""
    kdl = f"""
model M {{
    input x: float32[4, 5, 2]
    Conv2D(3, 3, padding=same)
    LayerNormalization(axis={axis})
    Flatten()
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((4, 5, 2))
        h = L.LayerNormalization(axis=eval(axis))(L.Conv2D(3, 3, padding="same")(inp))
        return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(h)))

    x, y = batch((4, 5, 2), 3)
    compare(tmp_path, kdl, keras_model, x, y, rtol=1e-4, atol=1e-5)


def test_dense_layernorm_rms_scaling_matches_keras(tmp_path):
    kdl = f"""
model M {{
    input x: float32[5]
    Dense(6)
    LayerNormalization(rms_scaling=true)
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((5,))
        h = L.LayerNormalization(rms_scaling=True)(L.Dense(6)(inp))
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    x, y = batch((5,), 3)
    with pytest.warns(UserWarning, match="rms_scaling"):
        compare(tmp_path, kdl, keras_model, x, y)


def test_mnist_style_cnn_matches_keras(tmp_path):
    """examples/mnist_cnn.kdl without Dropout, shrunk: Conv2D, Conv2D, MaxPooling2D,
    Flatten, Dense, Dense; strided and padded convolutions exercise the Conv rules'
    output_padding and kernel-gradient slicing."""
    kdl = f"""
model M {{
    input x: float32[9, 9, 1]
    Conv2D(4, 3, activation=relu)
    Conv2D(5, 3, strides=2, padding=same, activation=relu)
    MaxPooling2D(2, padding=same)
    Flatten()
    Dense(8, activation=relu)
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((9, 9, 1))
        h = L.Conv2D(4, 3, activation="relu")(inp)
        h = L.Conv2D(5, 3, strides=2, padding="same", activation="relu")(h)
        h = L.Flatten()(L.MaxPooling2D(2, padding="same")(h))
        h = L.Dense(8, activation="relu")(h)
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    x, y = batch((9, 9, 1), 3, n=6)
    compare(tmp_path, kdl, keras_model, x, y, steps=3, rtol=1e-4, atol=1e-5)


def test_grouped_depthwise_average_pool_cnn_matches_keras(tmp_path):
    """Grouped and depthwise convolutions (grouped kernel gradients with a dynamic batch),
    'same' average pooling (count_include_pad=0 at the borders), global max pooling."""
    kdl = f"""
model M {{
    input x: float32[11, 11, 2]
    Conv2D(4, 3, groups=2, activation=tanh)
    DepthwiseConv2D(3, strides=2, padding=same, depth_multiplier=2)
    AveragePooling2D(3, strides=2, padding=same)
    GlobalMaxPooling2D()
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((11, 11, 2))
        h = L.Conv2D(4, 3, groups=2, activation="tanh")(inp)
        h = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(h)
        h = L.GlobalMaxPooling2D()(L.AveragePooling2D(3, strides=2, padding="same")(h))
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    x, y = batch((11, 11, 2), 3, n=5)
    compare(tmp_path, kdl, keras_model, x, y, steps=2, rtol=1e-4, atol=1e-5)


def test_conv_groupnorm_trains_through_its_own_lowering(tmp_path):
    """GroupNormalization's lowering is already plain arithmetic: no training variant
    needed, the existing rules differentiate it."""
    kdl = f"""
model M {{
    input x: float32[4, 4, 2]
    Conv2D(4, 3, padding=same)
    GroupNormalization(groups=2)
    Flatten()
    Dense(3, activation=softmax)
}}
{TRAIN}"""

    def keras_model():
        inp = keras.Input((4, 4, 2))
        h = L.GroupNormalization(groups=2)(L.Conv2D(4, 3, padding="same")(inp))
        return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(h)))

    x, y = batch((4, 4, 2), 3)
    compare(tmp_path, kdl, keras_model, x, y, rtol=1e-4, atol=1e-5)
