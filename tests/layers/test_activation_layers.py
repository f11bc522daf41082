# ruff: noqa: E501  (one table row per line)
"""Activation layers against Keras 3: output shapes, weights, parameter counts, signatures,
and the errors for bad arguments and inputs."""

from __future__ import annotations

import inspect
import math
import os

import pytest

from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS, LayerError

os.environ["KERAS_BACKEND"] = "torch"

CL = "channels_last"

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
    keras_trainable = sum(math.prod(v.shape) for v in ref.trainable_weights)
    assert ours.param_count == ref.count_params()
    assert ours.trainable_count == keras_trainable


def case_id(case) -> str:
    name, args, kwargs, shapes, _ = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}{args}{kw}-{shapes}"


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
        assert a.convert(a.default) == a.convert(p.default), a.name


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_family_and_docstring(name):
    cls = LAYERS[name]
    assert cls.family == "activation"
    assert "Output shape" in (cls.__doc__ or "")


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
def test_bad_arguments(keras, case):
    name, args, kwargs, arg, fragment, keras_rejects = case
    with pytest.raises(LayerError) as err:
        LAYERS[name].bind(args, kwargs)
    assert err.value.arg == arg
    assert fragment in err.value.message
    if keras_rejects:
        with pytest.raises((ValueError, TypeError)):
            getattr(keras.layers, name)(*args, **kwargs)(keras.Input((3,)))


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
    layer = LAYERS[name].create(*args, **kwargs)
    with pytest.raises(LayerError) as err:
        layer([TensorType(dtype, ("batch", *shape))])
    assert fragment in err.value.message
    assert err.value.arg == arg
    if hint is not None:
        assert hint in (err.value.hint or "")
