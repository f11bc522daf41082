# ruff: noqa: E501  (one table row per line)
"""Recurrent layers and wrappers against Keras 3: output shapes, weights, parameter counts,
signatures, and the errors for bad arguments and inputs."""

from __future__ import annotations

import inspect
import math
import os
import re
from dataclasses import dataclass, field

import pytest

from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS, LayerError

os.environ["KERAS_BACKEND"] = "torch"

CL = "channels_last"


@dataclass(frozen=True)
class Sub:
    """A layer given as an argument (to Bidirectional / TimeDistributed), built on each side."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        kw = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}{self.args}{kw}"


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


# ---------------------------------------------------------------- Keras comparison helpers


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def keras_dim(d):
    return d if isinstance(d, int) else None


def _ours(value):
    if isinstance(value, Sub):
        return LAYERS[value.name].create(*map(_ours, value.args), **_kw(value.kwargs, _ours))
    return value


def _kw(kwargs, convert):
    return {k: convert(v) for k, v in kwargs.items()}


def build_ours(name, args, kwargs, shapes, data_format):
    layer = LAYERS[name].create(*map(_ours, args), data_format=data_format, **_kw(kwargs, _ours))
    outs = layer([TensorType("float32", ("batch", *s)) for s in shapes])
    return layer, outs


def build_keras(keras, name, args, kwargs, shapes, data_format):
    def convert(value):
        if isinstance(value, Sub):
            cls = getattr(keras.layers, value.name)
            return cls(*map(convert, value.args), **_kw(value.kwargs, convert))
        return value

    layer = getattr(keras.layers, name)(*map(convert, args), **_kw(kwargs, convert))
    inputs = [keras.Input(shape=tuple(keras_dim(d) for d in s)) for s in shapes]
    if len(inputs) > 1:
        out = layer(inputs[0], initial_state=inputs[1:])
    else:
        out = layer(inputs[0])
    outs = out if isinstance(out, (list, tuple)) else [out]
    return layer, outs


def keras_weight_name(path: str) -> str:
    """'bidirectional/forward_lstm_3/lstm_cell/kernel' -> 'forward_lstm/kernel'."""
    parts = path.split("/")[1:]
    parts = [re.sub(r"_\d+$", "", p) for p in parts if not p.endswith("_cell")]
    return "/".join(parts)


def compare_with_keras(keras, case) -> None:
    ours, outs = build_ours(*case)
    ref, ref_outs = build_keras(keras, *case)
    assert [tuple(keras_dim(d) for d in t.shape) for t in outs] == [
        tuple(t.shape) for t in ref_outs
    ]
    assert [(w.name, w.shape) for w in ours.weights] == [
        (keras_weight_name(v.path), tuple(v.shape)) for v in ref.weights
    ]
    keras_trainable = sum(math.prod(v.shape) for v in ref.trainable_weights)
    assert ours.param_count == ref.count_params()
    assert ours.trainable_count == keras_trainable


def case_id(case) -> str:
    name, args, kwargs, shapes, _ = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}{args}{kw}-{shapes}"


# ---------------------------------------------------------------- tests

NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(keras, case):
    compare_with_keras(keras, case)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(keras, name):
    cls = LAYERS[name]
    params = inspect.signature(getattr(keras.layers, name).__init__).parameters.values()
    theirs = [p for p in params if p.name not in ("self", "kwargs") and p.kind is not p.VAR_KEYWORD]
    assert [a.name for a in cls.signature] == [p.name for p in theirs]
    for a, p in zip(cls.signature, theirs):
        if a.required:
            assert p.default is inspect.Parameter.empty
        else:
            assert a.convert(a.default) == a.convert(p.default), a.name


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    cls = LAYERS[name]
    assert cls.family == "recurrent"
    assert "Output shape" in (cls.__doc__ or "")


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


def test_bidirectional_concat_of_different_widths(keras):
    """Keras's symbolic shape doubles the forward width; the real output (and ours) is
    forward + backward units."""
    import numpy as np

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
    ("GRU", (4,), {"stateful": True}, "stateful", "stateful=true is not supported", False),
    ("SimpleRNN", (4,), {"dropout": 1.5}, "dropout", "expected a number in [0, 1), got 1.5", False),
    ("LSTM", (4,), {"activation": "tanhh"}, "activation", "unknown activation 'tanhh'", True),
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
def test_bad_arguments(keras, case):
    name, args, kwargs, arg, fragment, keras_rejects = case
    with pytest.raises(LayerError) as err:
        LAYERS[name].bind(tuple(map(_ours, args)), _kw(kwargs, _ours))
    assert err.value.arg == arg
    assert fragment in err.value.message
    if keras_rejects:
        with pytest.raises((ValueError, TypeError)):
            build_keras(keras, name, args, kwargs, [(5, 3)], CL)


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
    layer = LAYERS[name].create(*map(_ours, args), **_kw(kwargs, _ours))
    with pytest.raises(LayerError) as err:
        layer([TensorType(dtype, ("batch", *s)) for s in shapes])
    assert fragment in err.value.message
    if hint is not None:
        assert hint in (err.value.hint or "")
