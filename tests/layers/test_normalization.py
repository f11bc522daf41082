# ruff: noqa: E501  (one table row per line)
"""Normalization layers against Keras 3: output shapes, weights, parameter counts,
signatures, and the errors for bad arguments and inputs."""

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

# Keras warns that rms_scaling is deprecated; ktrans accepts it as Keras does
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")

# (layer, args, kwargs, input shapes without batch, data_format); a str dim is symbolic
CASES = [
    ("BatchNormalization", (), {}, [(32,)], CL),
    ("BatchNormalization", (), {}, [(28, 28, 16)], CL),
    ("BatchNormalization", (), {"axis": 1}, [(16, 28, 28)], CF),
    ("BatchNormalization", (), {}, [(16, 28, 28)], CF),  # default axis stays -1, as Keras
    ("BatchNormalization", (), {"center": False}, [(10, 8)], CL),
    ("BatchNormalization", (), {"scale": False, "momentum": 0.9, "epsilon": 1e-5}, [(10, 8)], CL),
    ("BatchNormalization", (), {"center": False, "scale": False}, [("time", 8)], CL),
    ("BatchNormalization", (), {"axis": -2, "gamma_regularizer": "l2"}, [(5, 6, 7)], CL),
    ("BatchNormalization", (), {"trainable": False}, [(12,)], CL),
    ("LayerNormalization", (), {}, [(10, 64)], CL),
    ("LayerNormalization", (), {"axis": [1, 2]}, [(10, 6, 4)], CL),
    ("LayerNormalization", (), {"axis": [-1, 1]}, [(10, 6, 4)], CL),
    ("LayerNormalization", (), {"axis": 1, "center": False}, [(10, 6)], CL),
    ("LayerNormalization", (), {"scale": False, "epsilon": 1e-6}, [("time", 6)], CL),
    ("LayerNormalization", (), {"rms_scaling": True}, [(10, 6)], CL),
    ("LayerNormalization", (), {"rms_scaling": True, "scale": False, "center": False}, [(10, 6)], CL),
    ("GroupNormalization", (), {}, [(8, 8, 64)], CL),
    ("GroupNormalization", (4,), {}, [(10, 8)], CL),
    ("GroupNormalization", (2,), {"axis": 1}, [(6, 5, 5)], CF),
    ("GroupNormalization", (-1,), {"center": False}, [(5, 5, 6)], CL),
    ("GroupNormalization", (1,), {"scale": False, "epsilon": 1e-5}, [("time", 6)], CL),
]  # fmt: skip


# ---------------------------------------------------------------- tests

NAMES = sorted({c[0] for c in CASES})
#: arguments Keras takes through **kwargs (not in its __init__ signature)
KWARGS_ONLY = {"LayerNormalization": ["rms_scaling"]}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(case):
    assert_matches_keras(case)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    assert_signature_matches(name, kwargs_only=KWARGS_ONLY.get(name, []))


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "normalization")


def test_batch_norm_weights_and_training_mode():
    layer = LAYERS["BatchNormalization"].create(data_format=CF)
    assert layer.axis == -1
    layer([TensorType("float32", ("batch", 4, 5, 3))])
    assert [(w.name, w.trainable) for w in layer.weights] == [
        ("gamma", True),
        ("beta", True),
        ("moving_mean", False),
        ("moving_variance", False),
    ]
    assert layer.param_count == 12 and layer.trainable_count == 6
    assert layer.has_training_mode


def test_symbolic_axes_pass_through():
    layer = LAYERS["LayerNormalization"].create()
    (out,) = layer([TensorType("float32", ("batch", "words", 16))])
    assert out.shape == ("batch", "words", 16)


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("BatchNormalization", (), {"axis": [1, 2]}, "axis", "BatchNormalization: axis expected an integer, got [1, 2]", True),
    ("BatchNormalization", (), {"momentum": 1.5}, "momentum", "expected a number in [0, 1], got 1.5", False),
    ("BatchNormalization", (), {"epsilon": -1}, "epsilon", "expected a non-negative number", False),
    ("BatchNormalization", (), {"renorm": True}, "renorm", "not supported", False),
    ("BatchNormalization", (), {"center": 1}, "center", "expected true or false", False),
    ("BatchNormalization", (), {"gamma_initializer": "onez"}, "gamma_initializer", "unknown initializer 'onez'", True),
    ("BatchNormalization", (), {"data_format": "channels_first"}, "data_format", "no argument", True),
    ("LayerNormalization", (), {"axis": "last"}, "axis", "expected a list of integers", True),
    ("LayerNormalization", (), {"beta_regularizer": "l3"}, "beta_regularizer", "unknown regularizer", True),
    ("GroupNormalization", (0,), {}, "groups", "GroupNormalization: groups expected a positive integer (or -1", False),
    ("GroupNormalization", (), {"gamma_constraint": "non_neg"}, "gamma_constraint", "not supported", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case, keras_input=(4, 4))


# (layer, args, kwargs, input shape without batch, dtype, argument, message fragment, hint fragment)
BAD_INPUTS = [
    ("BatchNormalization", (), {"axis": 3}, (4, 5), "float32", "axis", "BatchNormalization: axis 3 is out of bounds for input shape (None, 4, 5)", "axes 1 to 2"),
    ("BatchNormalization", (), {"axis": 0}, (4, 5), "float32", "axis", "axis 0 is the batch axis", "channels_first"),
    ("BatchNormalization", (), {}, (4, "c"), "float32", None, "BatchNormalization needs a known size on axis -1", "declare that axis"),
    ("BatchNormalization", (), {}, (4, 5), "int64", None, "expects a float tensor; got int64", None),
    ("LayerNormalization", (), {"axis": [1, -2]}, (4, 5), "float32", "axis", "names an axis twice", None),
    ("LayerNormalization", (), {"axis": -4}, (4, 5), "float32", "axis", "axis -4 is out of bounds", None),
    ("GroupNormalization", (), {}, (8, 8, 16), "float32", "groups", "groups (32) cannot be more than the number of channels (16)", None),
    ("GroupNormalization", (5,), {}, (8, 8, 16), "float32", "groups", "16 channels cannot be split into 5 groups; input is (None, 8, 8, 16)", "divisor of 16"),
    ("GroupNormalization", (4,), {}, (8, None), "float32", None, "needs a known number of channels", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}")
def test_bad_inputs(case):
    name, args, kwargs, shape, dtype, arg, fragment, hint = case
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint, arg=arg)
