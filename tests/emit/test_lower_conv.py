"""Convolution layers: ONNX (onnxruntime, and onnx's reference evaluator for some) equals
Keras 3 on the same weights, for both data formats, 'same' padding with asymmetric pads,
strides, dilations, groups, depth multipliers and transposed-convolution output padding."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def run_layer(tmp_path, kdl_layer, keras_layer, shape, fmt="channels_last", runtime="ort"):
    """One layer on a (4, *shape) input in both, compared; returns the ONNX model."""
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {kdl_layer}\n}}\n"
    inp = keras.Input(shape)
    km = keras.Model(inp, keras_layer(inp))
    x = np.random.default_rng(1).normal(size=(4, *shape)).astype(np.float32)
    compare(kdl, km, {"x": x}, tmp_path, runtime=runtime)


def op_count(tmp_path, kdl: str, op_type: str) -> int:
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    src = tmp_path / "count.kdl"
    src.write_text(kdl)
    _, graphs = load(str(src))
    proto = build_model(next(iter(graphs.values())))
    return sum(node.op_type == op_type for node in proto.graph.node)


CF = "channels_first"

# (kdl call, Keras layer factory, input shape without batch, data_format)
CASES = [
    # Conv1D
    ("Conv1D(4, 3)", lambda f: layers.Conv1D(4, 3, data_format=f), (10, 3), None),
    (
        "Conv1D(4, 3, strides=2, padding=same)",
        lambda f: layers.Conv1D(4, 3, strides=2, padding="same", data_format=f),
        (11, 3),
        None,
    ),
    (
        "Conv1D(4, 4, padding=same, activation=tanh)",  # even kernel: pads (1, 2)
        lambda f: layers.Conv1D(4, 4, padding="same", activation="tanh", data_format=f),
        (9, 2),
        None,
    ),
    (
        "Conv1D(4, 3, padding=causal, dilation_rate=2)",
        lambda f: layers.Conv1D(4, 3, padding="causal", dilation_rate=2, data_format=f),
        (12, 3),
        None,
    ),
    (
        "Conv1D(6, 3, groups=3, use_bias=false)",
        lambda f: layers.Conv1D(6, 3, groups=3, use_bias=False, data_format=f),
        (8, 6),
        None,
    ),
    (
        "Conv1D(5, 2, strides=3, padding=same)",
        lambda f: layers.Conv1D(5, 2, strides=3, padding="same", data_format=f),
        (3, 10),
        CF,
    ),
    # Conv2D
    ("Conv2D(5, 3)", lambda f: layers.Conv2D(5, 3, data_format=f), (9, 8, 3), None),
    (
        "Conv2D(5, [3, 2], strides=[2, 1], padding=same, activation=relu)",
        lambda f: layers.Conv2D(
            5, (3, 2), strides=(2, 1), padding="same", activation="relu", data_format=f
        ),
        (9, 8, 3),
        None,
    ),
    (
        "Conv2D(5, 3, strides=2, padding=same)",  # even input: pads (0, 1)
        lambda f: layers.Conv2D(5, 3, strides=2, padding="same", data_format=f),
        (8, 8, 3),
        None,
    ),
    (
        "Conv2D(4, 3, dilation_rate=2, padding=same, activation=softmax)",
        lambda f: layers.Conv2D(
            4, 3, dilation_rate=2, padding="same", activation="softmax", data_format=f
        ),
        (7, 9, 2),
        None,
    ),
    (
        "Conv2D(6, 3, groups=2, padding=same, use_bias=false)",
        lambda f: layers.Conv2D(6, 3, groups=2, padding="same", use_bias=False, data_format=f),
        (7, 7, 4),
        None,
    ),
    (
        "Conv2D(5, [2, 3], strides=2, padding=same, activation=relu)",
        lambda f: layers.Conv2D(
            5, (2, 3), strides=2, padding="same", activation="relu", data_format=f
        ),
        (3, 9, 8),
        CF,
    ),
    (
        "Conv2D(12, 3, dilation_rate=[1, 2], groups=3)",
        lambda f: layers.Conv2D(12, 3, dilation_rate=(1, 2), groups=3, data_format=f),
        (6, 8, 9),
        CF,
    ),
    # Conv3D
    (
        "Conv3D(4, 3, strides=2, padding=same)",
        lambda f: layers.Conv3D(4, 3, strides=2, padding="same", data_format=f),
        (5, 6, 7, 2),
        None,
    ),
    (
        "Conv3D(3, [2, 3, 1], activation=sigmoid)",
        lambda f: layers.Conv3D(3, (2, 3, 1), activation="sigmoid", data_format=f),
        (2, 5, 4, 6),
        CF,
    ),
    # Conv1DTranspose
    (
        "Conv1DTranspose(4, 3, strides=2)",
        lambda f: layers.Conv1DTranspose(4, 3, strides=2, data_format=f),
        (6, 3),
        None,
    ),
    (
        "Conv1DTranspose(4, 3, strides=2, padding=same)",
        lambda f: layers.Conv1DTranspose(4, 3, strides=2, padding="same", data_format=f),
        (6, 3),
        None,
    ),
    (
        "Conv1DTranspose(4, 1, strides=3)",  # valid, stride > kernel: output_padding 2
        lambda f: layers.Conv1DTranspose(4, 1, strides=3, data_format=f),
        (5, 2),
        None,
    ),
    (
        "Conv1DTranspose(4, 4, strides=2, padding=same, output_padding=1)",
        lambda f: layers.Conv1DTranspose(
            4, 4, strides=2, padding="same", output_padding=1, data_format=f
        ),
        (3, 6),
        CF,
    ),
    # Conv2DTranspose
    (
        "Conv2DTranspose(4, 3, strides=2, padding=same, activation=relu)",
        lambda f: layers.Conv2DTranspose(
            4, 3, strides=2, padding="same", activation="relu", data_format=f
        ),
        (5, 4, 3),
        None,
    ),
    (
        "Conv2DTranspose(4, 4, strides=2, padding=same, use_bias=false)",
        lambda f: layers.Conv2DTranspose(
            4, 4, strides=2, padding="same", use_bias=False, data_format=f
        ),
        (5, 4, 3),
        None,
    ),
    (
        "Conv2DTranspose(4, 3, strides=[2, 3], output_padding=[1, 2])",
        lambda f: layers.Conv2DTranspose(
            4, 3, strides=(2, 3), output_padding=(1, 2), data_format=f
        ),
        (4, 5, 3),
        None,
    ),
    (
        "Conv2DTranspose(3, [3, 2], strides=3, padding=same, output_padding=[2, 0])",
        lambda f: layers.Conv2DTranspose(
            3, (3, 2), strides=3, padding="same", output_padding=(2, 0), data_format=f
        ),
        (4, 5, 2),
        None,
    ),
    (
        "Conv2DTranspose(4, 3, dilation_rate=2, padding=same)",
        lambda f: layers.Conv2DTranspose(4, 3, dilation_rate=2, padding="same", data_format=f),
        (6, 5, 3),
        None,
    ),
    (
        "Conv2DTranspose(5, 2, strides=2)",
        lambda f: layers.Conv2DTranspose(5, 2, strides=2, data_format=f),
        (3, 4, 5),
        CF,
    ),
    # DepthwiseConv2D
    (
        "DepthwiseConv2D(3, depth_multiplier=2, padding=same, strides=2)",
        lambda f: layers.DepthwiseConv2D(
            3, depth_multiplier=2, padding="same", strides=2, data_format=f
        ),
        (8, 7, 3),
        None,
    ),
    (
        "DepthwiseConv2D([3, 2], dilation_rate=2, use_bias=false, activation=relu6)",
        lambda f: layers.DepthwiseConv2D(
            (3, 2), dilation_rate=2, use_bias=False, activation="relu6", data_format=f
        ),
        (9, 8, 4),
        None,
    ),
    (
        "DepthwiseConv2D(3, depth_multiplier=3, padding=same)",
        lambda f: layers.DepthwiseConv2D(3, depth_multiplier=3, padding="same", data_format=f),
        (2, 6, 5),
        CF,
    ),
    # SeparableConv2D
    (
        "SeparableConv2D(5, 3, depth_multiplier=2, padding=same, activation=relu)",
        lambda f: layers.SeparableConv2D(
            5, 3, depth_multiplier=2, padding="same", activation="relu", data_format=f
        ),
        (7, 8, 3),
        None,
    ),
    (
        "SeparableConv2D(4, 3, strides=2, use_bias=false)",
        lambda f: layers.SeparableConv2D(4, 3, strides=2, use_bias=False, data_format=f),
        (9, 8, 3),
        None,
    ),
    (
        "SeparableConv2D(4, [2, 3], strides=2, padding=same)",
        lambda f: layers.SeparableConv2D(4, (2, 3), strides=2, padding="same", data_format=f),
        (3, 8, 9),
        CF,
    ),
]


@pytest.mark.parametrize(("kdl_layer", "make", "shape", "fmt"), CASES, ids=[c[0] for c in CASES])
def test_conv_layers_match_keras(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt)


REFERENCE = [
    c
    for c in CASES
    if c[0]
    in (
        "Conv1D(4, 3, padding=causal, dilation_rate=2)",
        "Conv2D(5, 3, strides=2, padding=same)",
        "Conv2D(12, 3, dilation_rate=[1, 2], groups=3)",
        "Conv3D(4, 3, strides=2, padding=same)",
        "Conv2DTranspose(4, 3, strides=[2, 3], output_padding=[1, 2])",
        "Conv2DTranspose(3, [3, 2], strides=3, padding=same, output_padding=[2, 0])",
        "DepthwiseConv2D(3, depth_multiplier=3, padding=same)",
        "SeparableConv2D(5, 3, depth_multiplier=2, padding=same, activation=relu)",
    )
]


@pytest.mark.parametrize(
    ("kdl_layer", "make", "shape", "fmt"), REFERENCE, ids=[c[0] for c in REFERENCE]
)
def test_conv_layers_on_the_reference_evaluator(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt, runtime="reference")


def test_conv_stack_runs_channels_first_between_two_transposes(tmp_path):
    """A channels_last CNN: one Transpose after the input and one before Flatten."""
    kdl = (
        "model M {\n input x: float32[12, 12, 3]\n"
        " Conv2D(8, 3, padding=same, activation=relu)\n"
        " DepthwiseConv2D(3, strides=2, padding=same)\n"
        " SeparableConv2D(6, 3, activation=relu)\n"
        " Conv2DTranspose(4, 3, strides=2, padding=same)\n"
        " Flatten()\n Dense(5)\n}\n"
    )
    inp = keras.Input((12, 12, 3))
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    y = layers.DepthwiseConv2D(3, strides=2, padding="same")(y)
    y = layers.SeparableConv2D(6, 3, activation="relu")(y)
    y = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(y)
    y = layers.Dense(5)(layers.Flatten()(y))
    x = np.random.default_rng(2).normal(size=(3, 12, 12, 3)).astype(np.float32)
    compare(kdl, keras.Model(inp, y), {"x": x}, tmp_path)
    assert op_count(tmp_path, kdl, "Transpose") == 2


def test_channels_first_conv_stack_needs_no_transpose(tmp_path):
    kdl = (
        "model M(data_format=channels_first) {\n input x: float32[3, 10, 10]\n"
        " Conv2D(4, 3, strides=2, padding=same)\n Conv2D(2, 1)\n}\n"
    )
    assert op_count(tmp_path, kdl, "Transpose") == 0


def test_dynamic_length_conv_with_stride_pads_at_run_time(tmp_path):
    """A dynamic length with stride > 1 uses SAME_UPPER (the extra pixel at the end)."""
    kdl = "model M {\n input x: float32[?, 3]\n Conv1D(4, 3, strides=2, padding=same)\n}\n"
    inp = keras.Input((None, 3))
    km = keras.Model(inp, layers.Conv1D(4, 3, strides=2, padding="same")(inp))
    for steps in (8, 9):
        x = np.random.default_rng(steps).normal(size=(2, steps, 3)).astype(np.float32)
        compare(kdl, km, {"x": x}, tmp_path)
