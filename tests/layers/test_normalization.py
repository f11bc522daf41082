# ruff: noqa: E501  (one table row per line)
"""Normalization layers against Keras 3: output shapes, weights, parameter counts,
signatures, and the errors for bad arguments and inputs."""

from __future__ import annotations

import inspect
import math
import os

import pytest

from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS, LayerError

os.environ["KERAS_BACKEND"] = "torch"

CL, CF = "channels_last", "channels_first"

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


# ---------------------------------------------------------------- Keras comparison helpers


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def keras_dim(d):
    return d if isinstance(d, int) else None


def compare_with_keras(keras, case) -> None:
    name, args, kwargs, shapes, data_format = case
    ours = LAYERS[name].create(*args, data_format=data_format, **kwargs)
    outs = ours([TensorType("float32", ("batch", *s)) for s in shapes])
    ref = getattr(keras.layers, name)(*args, **kwargs)
    ref_out = ref(keras.Input(shape=tuple(keras_dim(d) for d in shapes[0])))
    assert [tuple(keras_dim(d) for d in t.shape) for t in outs] == [tuple(ref_out.shape)]
    assert [(w.name, w.shape) for w in ours.weights] == [
        (v.name, tuple(v.shape)) for v in ref.weights
    ]
    if ours.trainable:
        assert [w.trainable for w in ours.weights] == [v.trainable for v in ref.weights]
    keras_trainable = sum(math.prod(v.shape) for v in ref.trainable_weights)
    assert ours.param_count == ref.count_params()
    assert ours.trainable_count == keras_trainable


def case_id(case) -> str:
    name, args, kwargs, shapes, fmt = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}{args}{kw}-{shapes}-{fmt}"


# ---------------------------------------------------------------- tests

NAMES = sorted({c[0] for c in CASES})
#: arguments Keras takes through **kwargs (not in its __init__ signature)
KWARGS_ONLY = {"LayerNormalization": ["rms_scaling"]}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(keras, case):
    compare_with_keras(keras, case)


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(keras, name):
    cls = LAYERS[name]
    params = inspect.signature(getattr(keras.layers, name).__init__).parameters.values()
    theirs = [p for p in params if p.name not in ("self", "kwargs") and p.kind is not p.VAR_KEYWORD]
    ours = [a for a in cls.signature if a.name not in KWARGS_ONLY.get(name, [])]
    assert [a.name for a in ours] == [p.name for p in theirs]
    for a, p in zip(ours, theirs):
        assert a.convert(a.default) == a.convert(p.default), a.name


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    cls = LAYERS[name]
    assert cls.family == "normalization"
    assert "Output shape" in (cls.__doc__ or "")


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
def test_bad_arguments(keras, case):
    name, args, kwargs, arg, fragment, keras_rejects = case
    with pytest.raises(LayerError) as err:
        LAYERS[name].bind(args, kwargs)
    assert err.value.arg == arg
    assert fragment in err.value.message
    if keras_rejects:
        with pytest.raises((ValueError, TypeError)):
            getattr(keras.layers, name)(*args, **kwargs)(keras.Input((4, 4)))


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
    layer = LAYERS[name].create(*args, **kwargs)
    with pytest.raises(LayerError) as err:
        layer([TensorType(dtype, ("batch", *shape))])
    assert fragment in err.value.message
    assert err.value.arg == arg
    if hint is not None:
        assert hint in (err.value.hint or "")
