# ruff: noqa: E501  (one table row per line)
"""Preprocessing layers against Keras 3: output shapes and dtypes, weights, parameter
counts, signatures, and the errors for bad arguments and inputs."""

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
    keras_layer,
    keras_module,
)
from transpiler.graph.types import DTYPES, TensorType
from transpiler.layers import LAYERS

# (layer, args, kwargs, input shapes without batch, data_format); a str dim is symbolic
CASES = [
    ("Rescaling", (1 / 255,), {}, [(8, 8, 3)], CL),
    ("Rescaling", (1 / 127.5,), {"offset": -1}, [(8, 8, 3)], CL),
    ("Rescaling", ([0.1, 0.2, 0.3],), {"offset": [1.0, 2.0, 3.0]}, [(4, 3)], CL),
    ("Rescaling", (2,), {"offset": [[1.0], [2.0]]}, [("t", 2, 5)], CL),
    ("Rescaling", ([[[0.5]], [[2.0]]],), {}, [(2, 4, 4)], CL),
    ("Normalization", (), {}, [(8, 8, 3)], CL),
    ("Normalization", (), {"axis": None}, [(4, 3)], CL),
    ("Normalization", (), {"axis": [1, -1]}, [(4, "t", 3)], CL),
    ("Normalization", (), {"axis": 1, "invert": True}, [(4, "t")], CL),
    ("Normalization", (), {"mean": [0.485, 0.456, 0.406], "variance": [0.052, 0.05, 0.051]}, [(8, 8, 3)], CL),
    ("Normalization", (), {"mean": 3.0, "variance": 2.0}, [(5,)], CL),
    ("Normalization", (), {"axis": [1, 2], "mean": [1.0, 2.0], "variance": [1.0, 4.0]}, [(3, 2)], CL),
]  # fmt: skip

NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, data_format=False))
def test_matches_keras(case):
    assert_matches_keras(case)


def test_normalization_count_is_a_weight():
    """Keras's adapted Normalization has mean, variance and an integer count: 2n + 1
    parameters, all non-trainable."""
    layer = LAYERS["Normalization"].create()
    layer([TensorType("float32", ("batch", 8, 8, 3))])
    assert [(w.name, w.shape, w.trainable) for w in layer.weights] == [
        ("mean", (3,), False),
        ("variance", (3,), False),
        ("count", (), False),
    ]
    assert layer.param_count == 7 and layer.trainable_count == 0
    assert LAYERS["Normalization"].create(mean=1.0, variance=2.0).describe_config() == (
        "Normalization()"
    )


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    assert_signature_matches(name)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "preprocessing")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rescaling_casts_every_dtype_to_float32(dtype):
    """Keras casts the input to the compute dtype (float32) whatever it is."""
    (out,) = LAYERS["Rescaling"].create(1 / 255)([TensorType(dtype, ("batch", 4, 3))])
    assert out == TensorType("float32", ("batch", 4, 3))
    keras = keras_module()
    ref = keras_layer("Rescaling", (1 / 255,))(keras.Input((4, 3), dtype=dtype))
    assert ref.dtype == "float32"


def test_rescaling_keeps_nested_lists_as_tuples():
    layer = LAYERS["Rescaling"].create([[1, 2], [3, 4]])
    assert layer.scale == ((1.0, 2.0), (3.0, 4.0)) and layer.offset == 0.0
    assert layer.describe_config() == "Rescaling([[1, 2], [3, 4]])"
    assert LAYERS["Rescaling"].create(1 / 255, offset=-1).describe_config() == (
        "Rescaling(0.003922, offset=-1)"
    )


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("Rescaling", (), {}, "scale", "Rescaling needs the argument 'scale'", True),
    ("Rescaling", ("big",), {}, "scale", "Rescaling: scale expected a number or a list of numbers, got 'big'", False),
    ("Rescaling", ([],), {}, "scale", "expected a number or a non-empty list of numbers, got []", False),
    ("Rescaling", ([[1, 2], [3]],), {}, "scale", "expected a number or a rectangular list of numbers", False),
    ("Rescaling", (1.0,), {"offset": None}, "offset", "Rescaling: offset expected a number or a list of numbers, got none", False),
    ("Rescaling", (1.0,), {"offset": True}, "offset", "got true", False),
    ("Normalization", (), {"mean": [1.0]}, "mean", "Normalization: mean and variance are given together or not at all; got only mean", True),
    ("Normalization", (), {"variance": 2.0}, "variance", "got only variance", True),
    ("Normalization", (), {"mean": [1.0, 2.0], "variance": [1.0]}, "variance", "mean has shape (2,) but variance has shape (1,)", True),
    ("Normalization", (), {"mean": [[1.0]], "variance": [[1.0]]}, "mean", "mean has rank 2, more than the 1 axes of axis=[-1]", True),
    ("Normalization", (), {"axis": "last"}, "axis", "expected a list of integers", False),
    ("Normalization", (), {"invert": 1}, "invert", "expected true or false", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}-{c[1]}")
def test_bad_arguments(case):
    assert_rejected(*case)


# (layer, args, kwargs, input shape without batch, dtype, argument, message fragment, hint fragment)
BAD_INPUTS = [
    ("Rescaling", ([1.0, 2.0],), {}, (4, 3), "float32", "scale", "Rescaling: scale of shape (2,) does not broadcast against input shape (None, 4, 3)", "numpy broadcasting"),
    ("Rescaling", (1.0,), {"offset": [[1.0, 2.0, 3.0]] * 2}, (3,), "uint8", "offset", "offset of shape (2, 3) does not broadcast against input shape (None, 3)", None),
    ("Rescaling", ([1.0, 2.0],), {}, (4, "c"), "float32", "scale", "scale of shape (2,) does not broadcast", None),
    ("Normalization", (), {"axis": 3}, (4, 3), "float32", "axis", "Normalization: axis 3 is out of bounds for input shape (None, 4, 3)", "axes 1 to 2"),
    ("Normalization", (), {"axis": 0}, (4, 3), "float32", "axis", "axis 0 is the batch axis", "axis=none"),
    ("Normalization", (), {}, (4, "c"), "float32", None, "Normalization needs a known size on axis -1", None),
    ("Normalization", (), {"mean": [1.0, 2.0], "variance": [1.0, 1.0]}, (4, 3), "float32", "mean", "mean and variance of shape (2,) do not broadcast to the kept axes' sizes (3,)", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}")
def test_bad_inputs(case):
    name, args, kwargs, shape, dtype, arg, fragment, hint = case
    assert_bad_input(name, args, kwargs, [shape], dtype, fragment, hint, arg=arg)


def test_diagram_labels_and_family_colour():
    from transpiler.viz.model_labels import config_text
    from transpiler.viz.model_style import FAMILY_COLOURS, family

    rescaling = LAYERS["Rescaling"].create(1 / 255, offset=-1)
    normalization = LAYERS["Normalization"].create(axis=None, invert=True)
    scale = LAYERS["LayerScale"].create(1e-6, 96)
    assert family(rescaling) == family(normalization) == "preprocessing"
    colours = list(FAMILY_COLOURS.values())
    assert len(set(colours)) == len(colours)  # its own colour
    assert config_text(rescaling) == "Rescaling 0.003922 offset=-1"
    assert config_text(normalization) == "Normalization axis=none invert"
    assert config_text(scale) == "LayerScale 1e-06 96"
    assert config_text(LAYERS["CustomScaleLayer"].create(0.17)) == "CustomScaleLayer 0.17"
