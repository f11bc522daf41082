# ruff: noqa: E501  (one table row per line)
"""Merge layers against Keras 3: output shapes, signatures, broadcasting, and the errors for
bad arguments and inputs."""

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
from transpiler.layers import LAYERS, LayerError

# (layer, args, kwargs, input shapes without batch, data_format); a str dim is symbolic
CASES = [
    ("Add", (), {}, [(32,), (32,)], CL),
    ("Add", (), {}, [(4, 5), (4, 5), (4, 5)], CL),
    ("Add", (), {}, [(4, 5), (1, 5)], CL),
    ("Add", (), {}, [(4, 5), (5,)], CL),
    ("Add", (), {}, [("t", 8), ("t", 8)], CL),
    ("Subtract", (), {}, [(8,), (8,)], CL),
    ("Subtract", (), {}, [(3, 1), (3, 6)], CL),
    ("Multiply", (), {}, [(3, 1), (1, 4)], CL),
    ("Multiply", (), {}, [(2, 3, 4), (3, 4), (4,)], CL),
    ("Average", (), {}, [(6,), (6,), (6,), (6,)], CL),
    ("Maximum", (), {}, [(5, 5, 3), (5, 5, 3)], CL),
    ("Minimum", (), {}, [(7,), (1,)], CL),
    ("Concatenate", (), {}, [(4,), (6,)], CL),
    ("Concatenate", (), {"axis": 1}, [(3, 4), (5, 4)], CL),
    ("Concatenate", (), {"axis": -2}, [(3, 4), (5, 4), (1, 4)], CL),
    ("Concatenate", (), {}, [(8, 8, 3), (8, 8, 5)], CL),
    ("Concatenate", (), {"axis": 1}, [("t", 4), (5, 4)], CL),
    ("Concatenate", (), {}, [("t", 4), ("t", 2)], CL),
    ("Dot", (1,), {}, [(5,), (5,)], CL),
    ("Dot", ((2, 2),), {}, [(3, 4), (5, 4)], CL),
    ("Dot", ((1, 2),), {}, [(4, 3), (5, 4)], CL),
    ("Dot", (-1,), {"normalize": True}, [(3, 4), (5, 4)], CL),
    ("Dot", ((2, 1),), {}, [(3, 4), (4, 6)], CL),
    ("Dot", ((1, 1),), {}, [(4, 3), (4, 2, 5)], CL),
]  # fmt: skip


NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, data_format=False))
def test_matches_keras(case):
    ours, ref = assert_matches_keras(case)
    assert ours.weights == [] and ref.weights == []


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    assert_signature_matches(name)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "merge")


def _out(name, shapes, *args, dtype="float32", **kwargs):
    layer = LAYERS[name].create(*args, **kwargs)
    (out,) = layer([TensorType(dtype, ("batch", *s)) for s in shapes])
    return out


def test_symbolic_dims():
    # a known size wins over a symbolic one; two different symbols are unknown
    assert _out("Add", [("t", 8), (5, 8)]).shape == ("batch", 5, 8)
    assert _out("Add", [("t", 8), ("u", 8)]).shape == ("batch", None, 8)
    assert _out("Multiply", [("t", 8), (1, 8)]).shape == ("batch", "t", 8)
    assert _out("Concatenate", [("t", 4), ("t", 2)]).shape == ("batch", "t", 6)
    assert _out("Concatenate", [(3, "f"), (3, 2)], axis=-1).shape == ("batch", 3, None)
    assert _out("Dot", [("t", 4), ("t", 4)], -1).shape == ("batch", "t", "t")


def test_integer_inputs_keep_dtype():
    assert _out("Add", [(3,), (3,)], dtype="int64").dtype == "int64"
    assert _out("Concatenate", [(3,), (2,)], dtype="int32") == TensorType("int32", ("batch", 5))


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("Concatenate", (), {"axis": 1.5}, "axis", "Concatenate: axis expected an integer, got 1.5", False),
    ("Dot", (), {}, "axes", "Dot needs the argument 'axes'", True),
    ("Dot", ((1, 2, 3),), {}, "axes", "expected an axis or a list of 2 axes, got [1, 2, 3]", False),
    ("Dot", (1,), {"normalize": "yes"}, "normalize", "expected true or false", False),
    ("Add", (), {"axis": 1}, "axis", "Add has no argument 'axis'", True),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case)


# (layer, args, kwargs, input shapes without batch, argument, message fragment, hint fragment)
BAD_INPUTS = [
    ("Add", (), {}, [(32,), (16,)], None, "Add: shapes (None, 32) and (None, 16) are incompatible", "or 1, which broadcasts"),
    ("Maximum", (), {}, [(4, 3), (4, 3), (5, 3)], None, "Maximum: shapes (None, 4, 3) and (None, 5, 3) are incompatible", None),
    ("Multiply", (), {}, [(2, 3), (3, 2)], None, "Multiply: shapes (None, 2, 3) and (None, 3, 2) are incompatible", None),
    ("Add", (), {}, [(3,)], None, "Add takes at least 2 input tensors; got 1", None),
    ("Subtract", (), {}, [(3,), (3,), (3,)], None, "Subtract takes 2 input tensors; got 3", None),
    ("Concatenate", (), {}, [(3, 4), (5, 6)], None, "Concatenate: shapes (None, 3, 4) and (None, 5, 6) do not match except on the concatenation axis (axis=-1)", "same sizes"),
    ("Concatenate", (), {}, [(3, 4), (4,)], None, "Concatenate expects inputs of one rank; got (None, 3, 4), (None, 4)", None),
    ("Concatenate", (), {"axis": 3}, [(3, 4), (3, 4)], "axis", "axis 3 is out of bounds", None),
    ("Concatenate", (), {"axis": 0}, [(3, 4), (3, 4)], "axis", "axis 0 is the batch axis", None),
    ("Dot", (-1,), {}, [(3, 4), (3, 5)], None, "Dot: shapes (None, 3, 4) and (None, 3, 5) are incompatible: sizes 4 (axis 2) and 5 (axis 2) differ", None),
    ("Dot", (0,), {}, [(3,), (3,)], "axes", "Dot: axis 0 is the batch axis", None),
    ("Dot", ((1, 3),), {}, [(3,), (3, 4)], "axes", "Dot: axis 3 is out of bounds for input shape (None, 3, 4)", None),
    ("Dot", (1,), {}, [(), (3,)], None, "Dot expects inputs of rank 2 or more", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_inputs(case):
    name, args, kwargs, shapes, arg, fragment, hint = case
    assert_bad_input(name, args, kwargs, shapes, "float32", fragment, hint, arg=arg)


def test_mixed_dtypes_are_refused():
    layer = LAYERS["Add"].create()
    with pytest.raises(LayerError, match="one dtype; got float32, int64"):
        layer([TensorType("float32", ("batch", 3)), TensorType("int64", ("batch", 3))])
