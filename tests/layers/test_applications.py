# ruff: noqa: E501  (one table row per line)
"""keras.applications' own layers (ConvNeXt's LayerScale, InceptionResNetV2's
CustomScaleLayer) against the Keras classes: output shapes, weights, parameter counts,
signatures, errors."""

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
from transpiler.layers import LAYERS

CASES = [
    ("LayerScale", (1e-6, 8), {}, [(4, 8)], CL),
    ("LayerScale", (0.5, 3), {}, [(5, 5, 3)], CL),
    ("LayerScale", (1.0, 4), {"trainable": False}, [("t", 4)], CL),
    ("CustomScaleLayer", (0.17,), {}, [(5, 5, 8), (5, 5, 8)], CL),
    ("CustomScaleLayer", (1.0,), {}, [("t", 4), ("t", 4)], CL),
]  # fmt: skip


def keras_weight_name(variable) -> str:
    """LayerScale's variable is unnamed in Keras ('variable'); ktrans calls it gamma, the
    attribute Keras keeps it in."""
    return "gamma" if variable.name.startswith("variable") else variable.name


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, data_format=False))
def test_matches_keras(case):
    assert_matches_keras(case, weight_name=keras_weight_name)


@pytest.mark.parametrize("name", ["LayerScale", "CustomScaleLayer"])
def test_signature_matches_keras(name):
    assert_signature_matches(name)


def test_registered_with_family_and_docstring():
    assert_registered("LayerScale", "core")
    assert_registered("CustomScaleLayer", "merge")


def test_layer_scale_gamma_starts_at_init_values():
    layer = LAYERS["LayerScale"].create(1e-6, 4)
    from transpiler.graph.types import TensorType

    layer([TensorType("float32", ("batch", 2, 4))])
    (w,) = layer.weights
    assert (w.name, w.shape, w.initializer.name, w.initializer.get("value")) == (
        "gamma",
        (4,),
        "constant",
        1e-6,
    )


BAD_ARGS = [
    ("LayerScale", (1e-6,), {}, "projection_dim", "LayerScale needs the argument 'projection_dim'", True),
    ("LayerScale", (1e-6, 0), {}, "projection_dim", "expected a positive integer, got 0", False),
    ("LayerScale", ("small", 4), {}, "init_values", "LayerScale: init_values expected a number", False),
    ("CustomScaleLayer", (), {}, "scale", "CustomScaleLayer needs the argument 'scale'", True),
    ("CustomScaleLayer", (None,), {}, "scale", "expected a number, got none", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}-{c[1]}")
def test_bad_arguments(case):
    assert_rejected(*case)


BAD_INPUTS = [
    ("LayerScale", (1e-6, 8), {}, [(4, 6)], "float32", "LayerScale: projection_dim is 8 but the input's last axis has size 6", "number of channels", "projection_dim"),
    ("LayerScale", (1e-6, 8), {}, [(4, 8)], "int64", "expects a float tensor", None, None),
    ("CustomScaleLayer", (0.1,), {}, [(4, 8), (4, 6)], "float32", "inputs of shapes (None, 4, 8) and (None, 4, 6) do not broadcast", None, None),
    ("CustomScaleLayer", (0.1,), {}, [(4, 8)], "float32", "CustomScaleLayer takes 2 input tensors; got 1", None, None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_bad_inputs(case):
    name, args, kwargs, shapes, dtype, fragment, hint, arg = case
    assert_bad_input(name, args, kwargs, shapes, dtype, fragment, hint, arg=arg)
