"""Pooling layers against Keras 3: output shapes, (no) weights, signatures, and the errors
for bad arguments and inputs."""

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
from transpiler.layers import LAYERS

# (layer, args, kwargs, input shapes without batch, data_format)
CASES = [
    ("MaxPooling1D", (), {}, [(20, 4)], CL),
    ("MaxPooling1D", (3,), {"strides": 1}, [(20, 4)], CL),
    ("MaxPooling1D", (3,), {"padding": "same"}, [(20, 4)], CL),
    ("MaxPooling1D", (2,), {"strides": 3}, [(4, 21)], CF),
    ("MaxPooling1D", (2,), {"padding": "same", "strides": 1}, [(None, 4)], CL),
    ("MaxPooling2D", (), {}, [(28, 28, 3)], CL),
    ("MaxPooling2D", ((3, 2),), {"strides": (1, 2)}, [(28, 27, 3)], CL),
    ("MaxPooling2D", (3,), {"strides": 2, "padding": "same"}, [(28, 27, 3)], CL),
    ("MaxPooling2D", (2,), {}, [(3, 28, 27)], CF),
    ("MaxPooling2D", (2,), {}, [(None, 28, 3)], CL),
    ("MaxPooling3D", (), {}, [(8, 9, 10, 2)], CL),
    ("MaxPooling3D", ((1, 2, 3),), {"padding": "same"}, [(8, 9, 10, 2)], CL),
    ("MaxPooling3D", (2,), {"strides": 1}, [(2, 8, 9, 10)], CF),
    ("AveragePooling1D", (2,), {}, [(21, 4)], CL),
    ("AveragePooling1D", (4,), {"strides": 2, "padding": "same"}, [(21, 4)], CL),
    ("AveragePooling1D", (2,), {}, [(4, 21)], CF),
    ("AveragePooling2D", (2,), {}, [(28, 28, 3)], CL),
    ("AveragePooling2D", ((2, 3),), {"strides": 1, "padding": "same"}, [(28, 27, 3)], CL),
    ("AveragePooling2D", (3,), {"strides": 2}, [(3, 28, 27)], CF),
    ("AveragePooling3D", (2,), {}, [(8, 9, 10, 2)], CL),
    ("AveragePooling3D", (3,), {"strides": 2, "padding": "same"}, [(2, 8, 9, 10)], CF),
    ("GlobalMaxPooling1D", (), {}, [(20, 4)], CL),
    ("GlobalMaxPooling1D", (), {"keepdims": True}, [(4, 20)], CF),
    ("GlobalMaxPooling1D", (), {}, [(None, 4)], CL),
    ("GlobalMaxPooling2D", (), {}, [(7, 7, 64)], CL),
    ("GlobalMaxPooling2D", (), {"keepdims": True}, [(7, 7, 64)], CL),
    ("GlobalMaxPooling2D", (), {}, [(64, 7, 7)], CF),
    ("GlobalMaxPooling3D", (), {"keepdims": True}, [(4, 5, 6, 8)], CL),
    ("GlobalMaxPooling3D", (), {}, [(8, 4, 5, 6)], CF),
    ("GlobalAveragePooling1D", (), {}, [(20, 4)], CL),
    ("GlobalAveragePooling1D", (), {"keepdims": True}, [(20, 4)], CL),
    ("GlobalAveragePooling2D", (), {}, [(None, None, 16)], CL),
    ("GlobalAveragePooling2D", (), {"keepdims": True}, [(16, 7, 7)], CF),
    ("GlobalAveragePooling3D", (), {}, [(4, 5, 6, 8)], CL),
    ("GlobalAveragePooling3D", (), {"keepdims": True}, [(8, 4, 5, 6)], CF),
]


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
    assert_registered(name, "pooling")


def test_strides_default_to_pool_size():
    layer = LAYERS["MaxPooling2D"].create((3, 2))
    assert layer.strides is None
    assert layer.window_strides == (3, 2)
    (out,) = layer([TensorType("float32", ("batch", 9, 9, 1))])
    assert out.shape == ("batch", 3, 4, 1)


def test_symbolic_axes():
    layer = LAYERS["MaxPooling1D"].create(3, strides=1, padding="same")
    (out,) = layer([TensorType("float32", ("batch", "steps", 4))])
    assert out.shape == ("batch", "steps", 4)
    layer = LAYERS["MaxPooling1D"].create(2)
    (out,) = layer([TensorType("float32", ("batch", "steps", 4))])
    assert out.shape == ("batch", None, 4)
    layer = LAYERS["GlobalAveragePooling1D"].create()
    (out,) = layer([TensorType("float32", ("batch", "steps", "features"))])
    assert out.shape == ("batch", "features")


def test_describe_config():
    layer = LAYERS["MaxPooling2D"].create(3, strides=2, padding="same")
    assert layer.describe_config() == "MaxPooling2D(3x3, strides=[2, 2], same)"


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("MaxPooling2D", (0,), {}, "pool_size", "pool_size expected positive values, got 0", True),
    ("MaxPooling2D", ((2, 2, 2),), {}, "pool_size", "a list of 2 integers", True),
    ("MaxPooling2D", (2,), {"strides": -1}, "strides", "strides expected positive values", True),
    ("MaxPooling1D", (2,), {"padding": "causal"}, "padding", "expected one of valid, same", False),
    ("AveragePooling2D", (), {}, "pool_size", "needs the argument 'pool_size'", True),
    (
        "AveragePooling3D",
        (2,),
        {"data_format": "nchw"},
        "data_format",
        "channels_last, channels_first",
        True,
    ),
    ("GlobalAveragePooling2D", (), {"keepdims": 1}, "keepdims", "expected true or false", False),
    ("GlobalMaxPooling1D", (), {"pool_size": 2}, "pool_size", "no argument", True),
]


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case)


# (layer, args, kwargs, input shape without batch, dtype, message fragment, hint fragment)
BAD_INPUTS = [
    (
        "MaxPooling2D",
        (),
        {},
        (784,),
        "float32",
        "MaxPooling2D expects a rank-4 input; got (None, 784)",
        "MaxPooling2D needs (batch, height, width, channels) with data_format=channels_last",
    ),
    ("MaxPooling1D", (), {}, (28, 28, 1), "float32", "rank-3", "(batch, steps, channels)"),
    (
        "AveragePooling2D",
        (),
        {"pool_size": 2, "data_format": CF},
        (28, 28),
        "float32",
        "rank-4",
        "(batch, channels, height, width) with data_format=channels_first",
    ),
    ("MaxPooling2D", (5,), {}, (4, 4, 1), "float32", "zero or negative size", "padding=same"),
    ("AveragePooling1D", (3,), {}, (2, 8), "float32", "zero or negative size", None),
    (
        "MaxPooling3D",
        (),
        {},
        (4, 4, 1),
        "float32",
        "rank-5",
        "(batch, depth, height, width, channels)",
    ),
    ("MaxPooling2D", (), {}, (4, 4, 1), "int64", "expects a float tensor; got int64", None),
    (
        "GlobalAveragePooling2D",
        (),
        {},
        (16,),
        "float32",
        "rank-4",
        "(batch, height, width, channels)",
    ),
    ("GlobalMaxPooling1D", (), {}, (4, 4, 4), "float32", "rank-3", None),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_bad_inputs(case):
    name, args, kwargs, shape, dtype, fragment, hint = case
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint)
