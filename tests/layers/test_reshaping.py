"""Reshaping layers against Keras 3: output shapes, (no) weights, signatures, and the
errors for bad arguments and inputs."""

from __future__ import annotations

import pytest

from tests.layers.keras_ref import (
    CF,
    CL,
    assert_bad_input,
    assert_keras_rejects,
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
    ("Flatten", (), {}, [(28, 28, 1)], CL),
    ("Flatten", (), {}, [(3, 4, 5)], CF),
    ("Flatten", (), {}, [(10,)], CL),
    ("Flatten", (), {}, [()], CL),
    ("Flatten", (), {}, [(None, 4)], CL),
    ("Reshape", ([28, 28, 1],), {}, [(784,)], CL),
    ("Reshape", ([-1, 32],), {}, [(4, 8, 8)], CL),
    ("Reshape", ((2, -1, 4),), {}, [(16,)], CL),
    ("Reshape", ([-1],), {}, [(None, 3)], CL),
    ("Reshape", ([-1, 32],), {}, [(None, 4, 8)], CL),
    ("Reshape", ([6, 2],), {}, [(None, 4)], CL),
    ("Permute", ([2, 1],), {}, [(10, 4)], CL),
    ("Permute", ([3, 1, 2],), {}, [(2, 3, 4)], CL),
    ("Permute", ([1],), {}, [(None,)], CL),
    ("RepeatVector", (3,), {}, [(5,)], CL),
    ("RepeatVector", (1,), {}, [(None,)], CL),
    ("ZeroPadding1D", (), {}, [(10, 4)], CL),
    ("ZeroPadding1D", (3,), {}, [(10, 4)], CL),
    ("ZeroPadding1D", ((1, 2),), {}, [(4, 10)], CF),
    ("ZeroPadding1D", ((0, 2),), {}, [(None, 4)], CL),
    ("ZeroPadding2D", (), {}, [(28, 28, 3)], CL),
    ("ZeroPadding2D", (2,), {}, [(28, 27, 3)], CL),
    ("ZeroPadding2D", ((1, 2),), {}, [(28, 27, 3)], CL),
    ("ZeroPadding2D", (((1, 2), (3, 4)),), {}, [(3, 28, 27)], CF),
    ("ZeroPadding2D", (((0, 0), (3, 4)),), {}, [(None, 5, 3)], CL),
    ("Cropping1D", (), {}, [(10, 4)], CL),
    ("Cropping1D", ((2, 3),), {}, [(10, 4)], CL),
    ("Cropping1D", (0,), {}, [(None, 4)], CL),
    ("Cropping2D", (), {}, [(28, 28, 3)], CL),
    ("Cropping2D", (2,), {}, [(28, 27, 3)], CL),
    ("Cropping2D", ((1, 2),), {}, [(28, 27, 3)], CL),
    ("Cropping2D", (((1, 2), (3, 4)),), {}, [(3, 28, 27)], CF),
    ("Cropping2D", (((1, 2), (0, 0)),), {}, [(None, 5, 3)], CL),
    ("UpSampling1D", (), {}, [(10, 4)], CL),
    ("UpSampling1D", (3,), {}, [(None, 4)], CL),
    ("UpSampling2D", (), {}, [(7, 7, 3)], CL),
    ("UpSampling2D", ((2, 3),), {"interpolation": "bilinear"}, [(7, 8, 3)], CL),
    ("UpSampling2D", (3,), {}, [(3, 7, 8)], CF),
    ("UpSampling2D", ((1, 2),), {"interpolation": "nearest"}, [(None, 8, 3)], CL),
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
    assert_registered(name, "reshape")


def test_flatten_documents_channels_last_order():
    doc = " ".join(LAYERS["Flatten"].__doc__.split())
    assert "ordered as in channels_last" in doc
    assert "transposes" in doc


def test_any_dtype_is_kept():
    x = TensorType("int64", ("batch", 4, 6))
    for name, args in [
        ("Flatten", ()),
        ("Reshape", ([24],)),
        ("Permute", ([2, 1],)),
        ("ZeroPadding1D", ()),
        ("Cropping1D", ()),
        ("UpSampling1D", ()),
    ]:
        (out,) = LAYERS[name].create(*args)([x])
        assert out.dtype == "int64", name


def test_symbolic_axes():
    x = TensorType("float32", ("batch", "steps", 4, 8))
    (out,) = LAYERS["Reshape"].create([-1, 32])([x])
    assert out.shape == ("batch", "steps", 32)
    (out,) = LAYERS["Reshape"].create([-1, 16])([x])
    assert out.shape == ("batch", None, 16)
    (out,) = LAYERS["Permute"].create([3, 1, 2])([x])
    assert out.shape == ("batch", 8, "steps", 4)
    (out,) = LAYERS["Flatten"].create()([x])
    assert out.shape == ("batch", None)
    (out,) = LAYERS["Flatten"].create()([TensorType("float32", ("batch", "steps"))])
    assert out.shape == ("batch", "steps")
    y = TensorType("float32", ("batch", "steps", 4))
    (out,) = LAYERS["ZeroPadding1D"].create(0)([y])
    assert out.shape == ("batch", "steps", 4)
    (out,) = LAYERS["UpSampling1D"].create(2)([y])
    assert out.shape == ("batch", None, 4)


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("Reshape", ([0, 4],), {}, "target_shape", "positive integers with at most one -1", False),
    ("Reshape", ([-1, -1],), {}, "target_shape", "at most one -1, got [-1, -1]", True),
    ("Reshape", ([-2, 4],), {}, "target_shape", "at most one -1", True),
    ("Reshape", (5,), {}, "target_shape", "got 5", True),
    ("Permute", ([1, 3],), {}, "dims", "permutation of 1..2, got [1, 3]", True),
    ("Permute", ([0, 1],), {}, "dims", "permutation", True),
    ("RepeatVector", (0,), {}, "n", "RepeatVector: n expected a positive integer, got 0", True),
    ("ZeroPadding1D", (-1,), {}, "padding", "expected >= 0 values", True),
    ("ZeroPadding2D", (((1, 2, 3), (1, 1)),), {}, "padding", "2 pairs of integers", True),
    ("Cropping1D", ((1, 2, 3),), {}, "cropping", "a list of 2 integers", True),
    ("Cropping2D", ([1, 2, 3],), {}, "cropping", "2 pairs of integers", True),
    ("UpSampling1D", (0,), {}, "size", "positive integer", True),
    ("UpSampling2D", ((2, 0),), {}, "size", "positive values", True),
    ("UpSampling2D", (), {"interpolation": "cubic"}, "interpolation", "nearest, bilinear", False),
    ("Flatten", (), {"data_format": "x"}, "data_format", "channels_last, channels_first", True),
    ("Cropping1D", (), {"data_format": "channels_last"}, "data_format", "no argument", True),
]


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}")
def test_bad_arguments(case):
    assert_rejected(*case)


# (layer, args, input shape without batch, dtype, message fragment, hint fragment,
#  Keras rejects it too)
BAD_INPUTS = [
    (
        "Reshape",
        ([28, 27],),
        (784,),
        "float32",
        "784 elements cannot become 756",
        "must stay the same",
        True,
    ),
    ("Reshape", ([-1, 5],), (12,), "float32", "12 elements do not divide by 5", None, True),
    (
        "Permute",
        ([2, 1],),
        (2, 3, 4),
        "float32",
        "Permute with dims=[2, 1] expects a rank-3 input; got (None, 2, 3, 4)",
        None,
        True,
    ),
    (
        "RepeatVector",
        (3,),
        (2, 3),
        "float32",
        "RepeatVector expects a rank-2 input",
        "(batch, features)",
        True,
    ),
    ("ZeroPadding2D", (), (10, 3), "float32", "rank-4", "(batch, height, width, channels)", True),
    ("ZeroPadding1D", (), (10, 3, 3), "float32", "rank-3", "(batch, steps, channels)", True),
    (
        "Cropping1D",
        ((5, 5),),
        (10, 3),
        "float32",
        "removes 10 of the 10 elements of axis 1",
        "at least one",
        True,
    ),
    ("Cropping2D", (((2, 2), (0, 0)),), (4, 8, 3), "float32", "removes 4 of the 4", None, True),
    ("UpSampling1D", (), (10,), "float32", "UpSampling1D expects a rank-3 input", None, True),
    ("UpSampling2D", (2,), (4, 4, 1), "int64", "expects a float tensor", None, False),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}")
def test_bad_inputs(case):
    name, args, shape, dtype, fragment, hint, keras_rejects = case
    kwargs = {"interpolation": "bilinear"} if dtype != "float32" else {}
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint)
    if keras_rejects:
        assert_keras_rejects(name, args, kwargs, input_shape=shape, dtype=dtype)
