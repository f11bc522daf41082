# ruff: noqa: E501  (one table row per line)
"""Recurrent layers and wrappers against Keras 3: output shapes, weights, parameter counts,
signatures, and the errors for bad arguments and inputs."""

from __future__ import annotations

import pytest

from tests.layers.keras_ref import (
    CL,
    Sub,
    assert_bad_input,
    assert_matches_keras,
    assert_registered,
    assert_rejected,
    assert_signature_matches,
    call_with_initial_state,
    case_id,
    keras_module,
    nested_path,
)
from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS

# (layer, args, kwargs, input shapes without batch, data_format); a str dim is symbolic
CASES = [
    ("SimpleRNN", (8,), {}, [(10, 4)], CL),
    ("SimpleRNN", (8,), {"return_sequences": True, "use_bias": False}, [(10, 4)], CL),
    ("SimpleRNN", (3,), {"return_state": True, "activation": "relu"}, [("time", 4)], CL),
    ("SimpleRNN", (3,), {"return_sequences": True, "return_state": True, "go_backwards": True}, [(7, 2)], CL),
    ("SimpleRNN", (5,), {"unroll": True, "dropout": 0.2, "recurrent_dropout": 0.1}, [(6, 3)], CL),
    ("SimpleRNN", (4,), {}, [(6, 3), (4,)], CL),
    ("LSTM", (16,), {}, [(10, 8)], CL),
    ("LSTM", (16,), {"return_sequences": True}, [("time", 8)], CL),
    ("LSTM", (6,), {"return_state": True}, [(10, 8)], CL),
    ("LSTM", (6,), {"return_sequences": True, "return_state": True, "unit_forget_bias": False}, [(10, 8)], CL),
    ("LSTM", (6,), {"use_bias": False, "recurrent_activation": "hard_sigmoid", "kernel_regularizer": "l2"}, [(5, 3)], CL),
    ("LSTM", (4,), {"return_state": True}, [(5, 3), (4,), (4,)], CL),
    ("LSTM", (4,), {"trainable": False}, [(5, 3)], CL),
    ("GRU", (12,), {}, [(10, 8)], CL),
    ("GRU", (12,), {"reset_after": False}, [(10, 8)], CL),
    ("GRU", (7,), {"return_sequences": True, "return_state": True}, [("time", 5)], CL),
    ("GRU", (7,), {"use_bias": False, "go_backwards": True}, [(9, 5)], CL),
    ("GRU", (7,), {"reset_after": False, "use_bias": False}, [(9, 5)], CL),
    ("GRU", (3,), {}, [(9, 5), (3,)], CL),
    ("Bidirectional", (Sub("LSTM", (8,)),), {}, [(10, 4)], CL),
    ("Bidirectional", (Sub("LSTM", (8,), {"return_sequences": True}),), {"merge_mode": "sum"}, [(10, 4)], CL),
    ("Bidirectional", (Sub("GRU", (8,), {"return_sequences": True}),), {"merge_mode": "ave"}, [("time", 4)], CL),
    ("Bidirectional", (Sub("GRU", (8,)),), {"merge_mode": "mul"}, [(10, 4)], CL),
    ("Bidirectional", (Sub("GRU", (5,), {"return_state": True}),), {}, [(10, 4)], CL),
    ("Bidirectional", (Sub("LSTM", (5,), {"return_state": True, "return_sequences": True}),), {}, [(10, 4)], CL),
    ("Bidirectional", (Sub("LSTM", (5,), {"return_state": True}),), {"merge_mode": None}, [(10, 4)], CL),
    ("Bidirectional", (Sub("SimpleRNN", (5,)),), {"merge_mode": None}, [(10, 4)], CL),
    ("Bidirectional", (Sub("LSTM", (6,)),), {"backward_layer": Sub("GRU", (6,), {"go_backwards": True})}, [(10, 4)], CL),
    ("Bidirectional", (Sub("GRU", (2,), {"return_state": True}),), {}, [(10, 4), (2,), (2,)], CL),
    ("TimeDistributed", (Sub("Dense", (8,)),), {}, [(10, 4)], CL),
    ("TimeDistributed", (Sub("Dense", (8,), {"use_bias": False}),), {}, [("time", 5, 4)], CL),
    ("TimeDistributed", (Sub("Conv2D", (4, 3)),), {}, [(6, 12, 12, 3)], CL),
    ("TimeDistributed", (Sub("LSTM", (5,)),), {}, [(6, 7, 3)], CL),
    ("TimeDistributed", (Sub("Dense", (3,), {"trainable": False}),), {}, [(6, 2)], CL),
]  # fmt: skip


# ---------------------------------------------------------------- tests

NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=lambda c: case_id(c, data_format=False))
def test_matches_keras(case):
    assert_matches_keras(case, call=call_with_initial_state, weight_name=nested_path)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(name):
    assert_signature_matches(name)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    assert_registered(name, "recurrent")


def test_lstm_outputs_and_weight_layout():
    layer = LAYERS["LSTM"].create(8, return_sequences=True, return_state=True)
    outs = layer([TensorType("float32", ("batch", "t", 3))])
    assert [o.shape for o in outs] == [("batch", "t", 8), ("batch", 8), ("batch", 8)]
    assert [(w.name, w.shape) for w in layer.weights] == [
        ("kernel", (3, 32)),
        ("recurrent_kernel", (8, 32)),
        ("bias", (32,)),
    ]
    assert layer.weights[1].initializer.name == "orthogonal"
    assert layer.unit_forget_bias is True


def test_bidirectional_default_names_and_frozen_inner():
    inner = LAYERS["GRU"].create(4, trainable=False)
    layer = LAYERS["Bidirectional"].create(inner)
    layer([TensorType("float32", ("batch", 5, 3))])
    assert [w.name for w in layer.weights][::3] == ["forward_gru/kernel", "backward_gru/kernel"]
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    assert layer.trainable_count == 0
    assert layer.describe_config() == "Bidirectional(GRU(4))"
    assert layer.num_outputs == 1


def test_bidirectional_num_outputs():
    inner = LAYERS["LSTM"].create(4, return_state=True)
    assert LAYERS["Bidirectional"].create(inner).num_outputs == 5
    assert LAYERS["Bidirectional"].create(inner, merge_mode=None).num_outputs == 6


def test_bidirectional_concat_of_different_widths():
    """Keras's symbolic shape doubles the forward width; the real output (and ours) is
    forward + backward units."""
    import numpy as np

    keras = keras_module()

    fwd, bwd = LAYERS["LSTM"].create(6), LAYERS["GRU"].create(3, go_backwards=True)
    layer = LAYERS["Bidirectional"].create(fwd, backward_layer=bwd)
    (out,) = layer([TensorType("float32", ("batch", 10, 4))])
    ref = keras.layers.Bidirectional(
        keras.layers.LSTM(6), backward_layer=keras.layers.GRU(3, go_backwards=True)
    )
    assert out.shape == ("batch", 9)
    assert tuple(ref(np.zeros((2, 10, 4), "float32")).shape) == (2, 9)
    assert layer.param_count == ref.count_params()


def test_time_distributed_symbolic_time_axis():
    layer = LAYERS["TimeDistributed"].create(LAYERS["Dense"].create(3))
    (out,) = layer([TensorType("float32", ("batch", "frames", 7))])
    assert out.shape == ("batch", "frames", 3)


# (layer, args, kwargs, argument at fault, message fragment, Keras rejects it too)
BAD_ARGS = [
    ("LSTM", (0,), {}, "units", "LSTM: units expected a positive integer, got 0", True),
    ("GRU", (4,), {"stateful": True}, "stateful", "GRU: stateful is not supported: a ktrans", False),
    ("SimpleRNN", (4,), {"dropout": 1.5}, "dropout", "expected a number in [0, 1), got 1.5", False),
    ("LSTM", (4,), {"activation": "tanhh"}, "activation", "LSTM: activation 'tanhh' is unknown", True),
    ("LSTM", (4,), {"reset_after": True}, "reset_after", "no argument", True),
    ("GRU", (4,), {"unit_forget_bias": True}, "unit_forget_bias", "no argument", True),
    ("LSTM", (4,), {"use_cudnn": "always"}, "use_cudnn", "expected auto, true or false", False),
    ("LSTM", (4,), {"recurrent_constraint": "max_norm"}, "recurrent_constraint", "not supported", False),
    ("Bidirectional", (4,), {}, "layer", "Bidirectional: layer expected a layer, got 4", True),
    ("Bidirectional", (Sub("Dense", (4,)),), {}, "layer", "expected a recurrent layer (SimpleRNN, LSTM or GRU), got Dense", False),
    ("Bidirectional", (Sub("LSTM", (4,)),), {"merge_mode": "max"}, "merge_mode", "expected one of concat, sum, mul, ave", True),
    ("Bidirectional", (Sub("LSTM", (4,)),), {"backward_layer": Sub("LSTM", (4,))}, "backward_layer", "different go_backwards", True),
    ("Bidirectional", (Sub("LSTM", (4,)),), {"backward_layer": Sub("LSTM", (4,), {"go_backwards": True, "return_sequences": True})}, "backward_layer", "same return_sequences", True),
    ("Bidirectional", (Sub("LSTM", (4,), {"go_backwards": True}),), {}, "layer", "both run backwards", True),
    ("Bidirectional", (Sub("LSTM", (4,)),), {"weights": [1, 2]}, "weights", "not supported", False),
    ("TimeDistributed", ("dense",), {}, "layer", "expected a layer", True),
    ("TimeDistributed", (Sub("Add"),), {}, "layer", "takes one input", False),
    ("TimeDistributed", (Sub("LSTM", (4,), {"return_state": True}),), {}, "layer", "one output", False),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS, ids=lambda c: f"{c[0]}-{c[3]}-{c[4][:20]}")
def test_bad_arguments(case):
    assert_rejected(*case, keras_input=(5, 3))


# (layer, args, kwargs, input shapes without batch, dtype, message fragment, hint fragment)
BAD_INPUTS = [
    ("LSTM", (4,), {}, [(784,)], "float32", "LSTM expects a rank-3 input; got (None, 784)", "LSTM needs (batch, timesteps, features)"),
    ("GRU", (4,), {}, [(5, 6, 7)], "float32", "rank-3", None),
    ("SimpleRNN", (4,), {}, [(5, "f")], "float32", "SimpleRNN needs a known feature size (last axis)", None),
    ("LSTM", (4,), {}, [(5, 3)], "int64", "expects a float tensor; got int64", "Embedding"),
    ("LSTM", (4,), {"unroll": True}, [("t", 3)], "float32", "cannot unroll over an unknown number of timesteps", "remove unroll"),
    ("LSTM", (4,), {}, [(5, 3), (4,)], "float32", "LSTM takes 2 initial states (h, c); got 1", None),
    ("GRU", (4,), {}, [(5, 3), (5,)], "float32", "initial state h should have shape (None, 4); got (None, 5)", None),
    ("Bidirectional", (Sub("LSTM", (4,)),), {}, [(5,)], "float32", "LSTM expects a rank-3 input", None),
    ("Bidirectional", (Sub("LSTM", (4,)),), {"merge_mode": "sum", "backward_layer": Sub("LSTM", (3,), {"go_backwards": True})}, [(5, 2)], "float32", "merge_mode=sum needs equal forward and backward outputs; got (None, 4) and (None, 3)", "same units"),
    ("Bidirectional", (Sub("LSTM", (4,)),), {}, [(5, 3), (4,)], "float32", "with all 4 initial states", None),
    ("TimeDistributed", (Sub("Dense", (4,)),), {}, [(5,)], "float32", "TimeDistributed expects an input of rank 3 or more; got (None, 5)", "(batch, time, ...)"),
    ("TimeDistributed", (Sub("Conv2D", (4, 3)),), {}, [(5, 8, 3)], "float32", "TimeDistributed(Conv2D): Conv2D expects a rank-4 input; got (None, 8, 3)", "height, width, channels"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c[0]}-{c[3]}-{c[4]}")
def test_bad_inputs(case):
    name, args, kwargs, shapes, dtype, fragment, hint = case
    assert_bad_input(name, args, kwargs, shapes, dtype, fragment, hint)
