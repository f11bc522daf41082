# ruff: noqa: E501  (one table row per line)
"""Activation layers against Keras 3: output shapes, weights, parameter counts, signatures,
and the errors for bad arguments and inputs."""

from __future__ import annotations

import pytest

from tests.layers.keras_ref import (
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

# (layer, args, kwargs, input shapes without batch, data_format); a str dim is symbolic
CASES = [
    ("ReLU", (), {}, [(10,)], CL),
    ("ReLU", (6.0,), {}, [(4, 5)], CL),
    ("ReLU", (), {"negative_slope": 0.1, "threshold": 0.5}, [("t", 5)], CL),
    ("LeakyReLU", (), {}, [(4, 5)], CL),
    ("LeakyReLU", (0.2,), {}, [(8, 8, 3)], CL),
    ("ELU", (), {}, [(10,)], CL),
    ("ELU", (0.5,), {}, [("t", 3)], CL),
    ("Softmax", (), {}, [(10,)], CL),
    ("Softmax", (1,), {}, [(4, 5)], CL),
    ("Softmax", ([1, 2],), {}, [(4, 5, 6)], CL),
    ("PReLU", (), {}, [(10,)], CL),
    ("PReLU", (), {"shared_axes": [1, 2]}, [(8, 8, 3)], CL),
    ("PReLU", (), {"shared_axes": 1}, [("t", 4)], CL),
    ("PReLU", ("ones",), {"alpha_regularizer": "l2"}, [(3, 4)], CL),
    ("PReLU", (), {"trainable": False}, [(3, 4)], CL),
]  # fmt: skip


NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, data_format=False))
def test_matches_keras(case):
    assert_matches_keras(case)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    # Keras writes PReLU's alpha_initializer 'Zeros' where ktrans writes 'zeros'
    assert_signature_matches(name, convert_defaults=True)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "activation")


def test_prelu_alpha_per_channel():
    layer = LAYERS["PReLU"].create(shared_axes=[1, 2])
    (out,) = layer([TensorType("float32", ("batch", "h", "w", 16))])
    assert out.shape == ("batch", "h", "w", 16)
    assert [(w.name, w.shape) for w in layer.weights] == [("alpha", (1, 1, 16))]
    assert layer.weights[0].initializer.name == "zeros"


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("ReLU", (-1.0,), {}, "max_value", "ReLU: max_value expected a non-negative number, got -1", True),
    ("ReLU", (), {"negative_slope": -0.1}, "negative_slope", "expected a non-negative number", True),
    ("ReLU", (), {"threshold": -1}, "threshold", "expected a non-negative number", True),
    ("LeakyReLU", (-0.2,), {}, "negative_slope", "LeakyReLU: negative_slope expected a non-negative number", True),
    ("LeakyReLU", (), {"negative_slope": None}, "negative_slope", "expected a number, got none", True),
    ("ELU", ("big",), {}, "alpha", "ELU: alpha expected a number, got 'big'", False),
    ("PReLU", (), {"shared_axes": "channels"}, "shared_axes", "expected a list of integers", False),
    ("PReLU", ("zeroes",), {}, "alpha_initializer", "unknown initializer 'zeroes'", True),
    ("Softmax", (1.5,), {}, "axis", "expected a list of integers, got 1.5", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case, keras_input=(3,))


# (layer, args, kwargs, input shape without batch, dtype, argument, message fragment, hint fragment)
BAD_INPUTS = [
    ("PReLU", (), {}, ("t", 4), "float32", None, "PReLU needs a known size on axis 1 to create its weights", "declare that axis"),
    ("PReLU", (), {"shared_axes": [0]}, (3, 4), "float32", "shared_axes", "PReLU: shared axis 0 is not an axis of input shape (None, 3, 4)", "use 1 to 2"),
    ("PReLU", (), {"shared_axes": [3]}, (3, 4), "float32", "shared_axes", "shared axis 3", None),
    ("Softmax", (3,), {}, (4, 5), "float32", "axis", "Softmax: axis 3 is out of bounds for input shape (None, 4, 5)", None),
    ("Softmax", ([1, -4],), {}, (4, 5), "float32", "axis", "axis -4 is out of bounds", None),
    ("ReLU", (), {}, (4,), "int64", None, "ReLU expects a float tensor; got int64", None),
    ("PReLU", (), {}, (4,), "int32", None, "PReLU expects a float tensor; got int32", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}-{c[4]}")
def test_bad_inputs(case):
    name, args, kwargs, shape, dtype, arg, fragment, hint = case
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint, arg=arg)
