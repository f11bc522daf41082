# ruff: noqa: E501  (one table row per line)
"""MultiHeadAttention against Keras 3: output shapes, weights, parameter counts, signature,
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
    call_positional,
    case_id,
    path_in_layer,
)
from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS

MHA = "MultiHeadAttention"

# (layer, args, kwargs, input shapes without batch (query, value[, key]), data_format)
CASES = [
    (MHA, (2, 8), {}, [(10, 16), (10, 16)], CL),
    (MHA, (4, 8), {"value_dim": 6}, [(10, 16), (12, 20)], CL),
    (MHA, (2, 4), {}, [(10, 16), (12, 20), (12, 24)], CL),
    (MHA, (3, 5), {"use_bias": False}, [(7, 9), (7, 9)], CL),
    (MHA, (2, 8), {"output_shape": 32}, [(10, 16), (10, 16)], CL),
    (MHA, (2, 3), {"output_shape": (4, 5)}, [(10, 16), (11, 16)], CL),
    (MHA, (2, 3), {"attention_axes": (2,)}, [(5, 6, 8), (5, 7, 8)], CL),
    (MHA, (2, 3), {"attention_axes": (1, 2)}, [(5, 6, 8), (3, 4, 8)], CL),
    (MHA, (2, 3), {}, [(5, 6, 8), (3, 4, 8)], CL),
    (MHA, (2, 3), {"use_gate": True}, [(10, 16), (10, 12)], CL),
    (MHA, (2, 8), {"dropout": 0.1, "kernel_initializer": "he_normal"}, [("t", 16), ("s", 16)], CL),
    (MHA, (1, 16), {"kernel_regularizer": "l2", "trainable": False}, [(4, 16), (4, 16)], CL),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, name=False, data_format=False))
def test_matches_keras(case):
    assert_matches_keras(case, call=call_positional, weight_name=path_in_layer)


def test_signature_matches_keras():
    assert_signature_matches(MHA)


def test_registered_with_family_and_docstring():
    assert_registered(MHA, "attention")
    assert LAYERS[MHA].has_training_mode


def test_symbolic_query_length_is_kept():
    layer = LAYERS[MHA].create(2, 4)
    (out,) = layer(
        [TensorType("float32", ("batch", "tq", 8)), TensorType("float32", ("batch", "tv", 6))]
    )
    assert out.shape == ("batch", "tq", 8)
    assert layer.head_value_dim == 4
    assert layer.describe_config() == "MultiHeadAttention(num_heads=2, key_dim=4)"


# (args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ((0, 8), {}, "num_heads", "MultiHeadAttention: num_heads expected a positive integer, got 0", True),
    ((2,), {}, "key_dim", "MultiHeadAttention needs the argument 'key_dim'", True),
    ((2, 8), {"value_dim": 0}, "value_dim", "value_dim expected a positive integer, got 0", True),
    ((2, 8), {"output_shape": "wide"}, "output_shape", "expected a positive integer or a list of them", False),
    ((2, 8), {"dropout": 1.0}, "dropout", "expected a number in [0, 1), got 1", False),
    ((2, 8), {"attention_axes": "time"}, "attention_axes", "expected a list of integers", True),
    ((2, 8), {"sliding_window": -1}, "sliding_window", "expected a positive integer", True),
    ((2, 8), {"bias_constraint": "non_neg"}, "bias_constraint", "not supported", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[2]}-{c[3][:24]}")
def test_bad_arguments(case):
    assert_rejected(MHA, *case)


# (kwargs, input shapes without batch, dtype, argument, message fragment, hint fragment)
BAD_INPUTS = [
    ({}, [(16,), (16,)], "float32", None, "MultiHeadAttention expects a query of rank 3 or more; got (None, 16)", "(batch, sequence, features)"),
    ({}, [(10, 16)], "float32", None, "MultiHeadAttention takes 2 to 3 input tensors; got 1", None),
    ({}, [(10, 16), (12, 16), (11, 16)], "float32", None, "value and key should agree on every axis but the last; got value (None, 12, 16) and key (None, 11, 16)", None),
    ({}, [(10, 16), (4, 10, 16)], "float32", None, "query, value and key of one rank", None),
    ({}, [(10, 16), (10, 16)], "int64", None, "expects a float tensor; got int64", None),
    ({}, [(10, "d"), (10, 16)], "float32", None, "needs a known query feature size", None),
    ({"attention_axes": (3,)}, [(5, 6, 8), (5, 6, 8)], "float32", "attention_axes", "attention axis 3 is not valid for inputs of rank 4", "1 to 2"),
    ({"attention_axes": (-1,)}, [(5, 8), (5, 8)], "float32", "attention_axes", "attention axis -1 is not valid", None),
    ({"attention_axes": (2,)}, [(5, 6, 8), (4, 6, 8)], "float32", None, "differ on axis 1, which is not an attention axis", None),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_bad_inputs(case):
    kwargs, shapes, dtype, arg, fragment, hint = case
    assert_bad_input(MHA, (2, 4), kwargs, shapes, dtype, fragment, hint, arg=arg)
