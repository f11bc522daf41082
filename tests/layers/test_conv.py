# ruff: noqa: E501  (one table row per line)
"""Convolution layers against Keras 3: output shapes, weights, parameter counts, signatures,
and the errors for bad arguments and inputs."""

from __future__ import annotations

import pytest

from tests.layers.keras_ref import (
    CF,
    CL,
    assert_bad_input,
    assert_matches_keras,
    assert_registered,
    assert_rejected,
    assert_signature_matches,
    case_id,
)
from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS, LayerError
from transpiler.layers.shapes import conv_length, conv_transpose_length, pool_length

# (layer, args, kwargs, input shapes without batch, data_format)
CASES = [
    ("Conv1D", (8, 3), {}, [(20, 4)], CL),
    ("Conv1D", (8, 3), {"padding": "same", "strides": 2}, [(21, 4)], CL),
    ("Conv1D", (8, 5), {"padding": "causal", "dilation_rate": 2}, [(20, 4)], CL),
    ("Conv1D", (6, 3), {"groups": 2, "use_bias": False}, [(20, 4)], CL),
    ("Conv1D", (8, 3), {"strides": 3}, [(4, 20)], CF),
    ("Conv1D", (8, 3), {"padding": "same"}, [(None, 4)], CL),
    ("Conv1D", (8, 3), {"padding": "valid", "strides": 2}, [(None, 4)], CL),
    ("Conv2D", (32, 3), {"activation": "relu"}, [(28, 28, 1)], CL),
    ("Conv2D", (16, (3, 5)), {"strides": (2, 1), "padding": "same"}, [(28, 27, 3)], CL),
    ("Conv2D", (16, 3), {"dilation_rate": 2}, [(28, 28, 3)], CL),
    ("Conv2D", (16, 3), {"dilation_rate": (2, 3), "padding": "same"}, [(17, 19, 3)], CL),
    ("Conv2D", (16, 3), {"strides": 2, "padding": "valid"}, [(3, 28, 29)], CF),
    ("Conv2D", (8, 1), {"use_bias": False}, [(7, 7, 64)], CL),
    ("Conv2D", (8, 3), {"groups": 4, "kernel_initializer": "he_normal"}, [(9, 9, 8)], CL),
    ("Conv2D", (8, 3), {"kernel_regularizer": "l2", "bias_initializer": "ones"}, [(5, 5, 2)], CL),
    ("Conv2D", (4, 2), {"strides": 2}, [(None, None, 3)], CL),
    ("Conv3D", (4, 3), {}, [(8, 9, 10, 2)], CL),
    ("Conv3D", (4, (1, 2, 3)), {"strides": (1, 2, 3), "padding": "same"}, [(8, 9, 10, 2)], CL),
    ("Conv3D", (4, 3), {"use_bias": False, "dilation_rate": 2}, [(2, 8, 9, 10)], CF),
    ("Conv1DTranspose", (8, 3), {}, [(10, 4)], CL),
    ("Conv1DTranspose", (8, 3), {"strides": 2, "padding": "same"}, [(10, 4)], CL),
    ("Conv1DTranspose", (8, 2), {"strides": 3}, [(10, 4)], CL),
    ("Conv1DTranspose", (8, 3), {"strides": 2, "output_padding": 1}, [(10, 4)], CL),
    ("Conv1DTranspose", (8, 4), {"strides": 2, "padding": "same", "output_padding": 1}, [(4, 10)], CF),
    ("Conv1DTranspose", (8, 3), {"dilation_rate": 2, "use_bias": False}, [(10, 4)], CL),
    ("Conv2DTranspose", (16, 3), {}, [(7, 7, 32)], CL),
    ("Conv2DTranspose", (16, 4), {"strides": 2, "padding": "same"}, [(7, 8, 32)], CL),
    ("Conv2DTranspose", (16, 5), {"strides": (2, 3), "output_padding": (1, 2)}, [(7, 8, 3)], CL),
    ("Conv2DTranspose", (16, 3), {"strides": 2, "padding": "same"}, [(32, 7, 8)], CF),
    ("Conv2DTranspose", (16, 3), {"strides": 2, "padding": "same", "output_padding": 0}, [(7, 7, 2)], CL),
    ("Conv2DTranspose", (16, 3), {"strides": 2}, [(None, 7, 2)], CL),
    ("DepthwiseConv2D", (3,), {}, [(28, 28, 8)], CL),
    ("DepthwiseConv2D", (3,), {"depth_multiplier": 3, "padding": "same", "strides": 2}, [(28, 27, 8)], CL),
    ("DepthwiseConv2D", ((3, 5),), {"dilation_rate": 2, "use_bias": False}, [(28, 28, 4)], CL),
    ("DepthwiseConv2D", (3,), {"depth_multiplier": 2}, [(4, 28, 28)], CF),
    ("SeparableConv2D", (16, 3), {}, [(28, 28, 8)], CL),
    ("SeparableConv2D", (16, 3), {"depth_multiplier": 2, "strides": 2, "padding": "same"}, [(28, 27, 8)], CL),
    ("SeparableConv2D", (16, (1, 3)), {"use_bias": False, "dilation_rate": (1, 2)}, [(8, 28, 28)], CF),
    ("SeparableConv2D", (16, 3), {"pointwise_initializer": "zeros", "activation": "relu"}, [(9, 9, 3)], CL),
]  # fmt: skip


# ---------------------------------------------------------------- tests

NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(case):
    assert_matches_keras(case)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    assert_signature_matches(name)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "conv")


def test_symbolic_axis_kept_when_length_is_unchanged():
    layer = LAYERS["Conv1D"].create(8, 3, padding="same")
    (out,) = layer([TensorType("float32", ("batch", "steps", 4))])
    assert out.shape == ("batch", "steps", 8)
    layer = LAYERS["Conv1D"].create(8, 3)
    (out,) = layer([TensorType("float32", ("batch", "steps", 4))])
    assert out.shape == ("batch", None, 8)


def test_shape_formulas():
    assert conv_length(28, 3, 1, "valid") == 26
    assert conv_length(28, 3, 2, "same") == 14
    assert conv_length(20, 3, 1, "valid", dilation=4) == 12
    assert conv_length("t", 3, 2, "same") is None
    assert conv_transpose_length(7, 3, 2, "same") == 14
    assert conv_transpose_length(7, 2, 3, "valid") == 21
    assert conv_transpose_length(7, 3, 2, "valid", output_padding=1) == 16
    assert pool_length(7, 2, 2, "valid") == 3
    assert pool_length(7, 2, 2, "same") == 4


def test_describe_config():
    layer = LAYERS["Conv2D"].create(32, 3, strides=2, padding="same", activation="relu")
    assert layer.describe_config() == "Conv2D(32, 3x3, strides=[2, 2], same, relu)"


def test_shared_layer_needs_same_channels():
    layer = LAYERS["Conv2D"].create(4, 3)
    layer([TensorType("float32", ("batch", 8, 8, 3))])
    layer([TensorType("float32", ("batch", 16, 16, 3))])
    with pytest.raises(LayerError, match="shared layer"):
        layer([TensorType("float32", ("batch", 8, 8, 5))])


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("Conv2D", (0, 3), {}, "filters", "Conv2D: filters expected a positive integer, got 0", True),
    ("Conv2D", (8, (0, 3)), {}, "kernel_size", "kernel_size expected positive values, got [0, 3]", True),
    ("Conv2D", (8, (3, 3, 3)), {}, "kernel_size", "a list of 2 integers", True),
    ("Conv2D", (8, 3), {"strides": 0}, "strides", "strides expected positive values", True),
    ("Conv2D", (8, 3), {"padding": "full"}, "padding", "expected one of valid, same", True),
    ("Conv2D", (8, 3), {"padding": "causal"}, "padding", "expected one of valid, same", True),
    ("Conv2D", (8, 3), {"data_format": "nchw"}, "data_format", "channels_last, channels_first", True),
    ("Conv2D", (8, 3), {"groups": 3}, "groups", "filters (8) must be divisible by groups (3)", True),
    ("Conv2D", (8, 3), {"strides": 2, "dilation_rate": 2}, "dilation_rate", "strides > 1 cannot", True),
    ("Conv2D", (8, 3), {"activation": "relux"}, "activation", "Conv2D: activation 'relux' is unknown", True),
    ("Conv2D", (8, 3), {"kernel_initializer": "glorot"}, "kernel_initializer", "unknown initializer", True),
    ("Conv2D", (8, 3), {"kernel_constraint": "max_norm"}, "kernel_constraint", "not supported", False),
    ("Conv2D", (8, 3), {"use_bias": "yes"}, "use_bias", "expected true or false", False),
    ("Conv2D", (8, 3), {"depth_multiplier": 2}, "depth_multiplier", "no argument", True),
    ("Conv1DTranspose", (8, 3), {"strides": 2, "output_padding": 2}, "output_padding", "smaller than strides", True),
    ("Conv2DTranspose", (8, 3), {"output_padding": -1}, "output_padding", "expected >= 0 values", True),
    ("Conv2DTranspose", (8, 3), {"groups": 2}, "groups", "no argument", True),
    ("DepthwiseConv2D", (3,), {"depth_multiplier": 0}, "depth_multiplier", "positive integer", True),
    ("SeparableConv2D", (8, 3), {"pointwise_regularizer": "l3"}, "pointwise_regularizer", "unknown regularizer", True),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case)


# (layer, args, kwargs, input shape without batch, dtype, message fragment, hint fragment)
BAD_INPUTS = [
    ("Conv2D", (8, 3), {}, (784,), "float32", "Conv2D expects a rank-4 input; got (None, 784)",
     "Conv2D needs (batch, height, width, channels) with data_format=channels_last"),
    ("Conv2D", (8, 3), {"data_format": CF}, (28, 28), "float32", "rank-4",
     "(batch, channels, height, width) with data_format=channels_first"),
    ("Conv1D", (8, 3), {}, (28, 28, 1), "float32", "rank-3", "(batch, steps, channels)"),
    ("Conv2D", (8, 5), {}, (4, 4, 1), "float32", "zero or negative size", "padding=same"),
    ("Conv1D", (8, 3), {"dilation_rate": 4}, (8, 1), "float32", "zero or negative size", None),
    ("Conv2D", (8, 3), {}, (28, 28, None), "float32", "needs a known channel axis", None),
    ("Conv2D", (8, 3), {"groups": 2}, (28, 28, 3), "float32", "3 channels must be divisible by groups (2)", None),
    ("Conv2D", (8, 3), {}, (28, 28, 1), "int64", "expects a float tensor; got int64", None),
    ("Conv3D", (8, 3), {}, (28, 28, 1), "float32", "rank-5", "(batch, depth, height, width, channels)"),
    ("DepthwiseConv2D", (3,), {}, (10, 3), "float32", "rank-4", None),
    ("SeparableConv2D", (4, 3), {}, (2, 2, 3), "float32", "zero or negative size", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_bad_inputs(case):
    name, args, kwargs, shape, dtype, fragment, hint = case
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint)
