"""Keras 3 as the reference for the layer tests in tests/layers.

Every layer test module checks its layers the same ways, with the helpers here:

- `assert_matches_keras(case)` builds a layer here and in Keras on the same input shapes
  and compares output shapes, weight names, shapes, order and trainable flags, and
  parameter counts;
- `assert_signature_matches(name)` compares a layer's arguments (names, order, defaults)
  with the Keras constructor's;
- `assert_rejected(...)` checks one row of a bad-argument table: the `LayerError` (message
  and `.arg`), and that Keras refuses the same arguments;
- `assert_bad_input(...)` checks one row of a bad-input table: the `LayerError` (message,
  hint and, where given, `.arg`) raised when the layer is called.

A case is a tuple `(layer, args, kwargs, input shapes without batch, data_format)`. A
dimension written as a string is symbolic here and unknown (None) to Keras. An argument
may be a `Sub`: a layer given to another layer (Bidirectional, TimeDistributed), built on
each side.

Keras is imported on first use, on its torch backend.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS, LayerError
from transpiler.layers.base import REQUIRED

os.environ["KERAS_BACKEND"] = "torch"

CL, CF = "channels_last", "channels_first"

#: `arg=UNCHECKED`: the test does not look at `LayerError.arg`
UNCHECKED = object()


@functools.cache
def keras_module():
    """The `keras` package (imported on first use, after the backend is chosen)."""
    import keras

    return keras


@dataclass(frozen=True)
class Sub:
    """A layer given as an argument (to Bidirectional / TimeDistributed), built on each side."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        kw = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}{self.args}{kw}"


def case_id(case, *, name: bool = True, data_format: bool = True) -> str:
    """A readable test id for a case: 'Conv2D(32, 3)activation=relu-[(28, 28, 1)]-channels_last'.

    `name=False` leaves out the layer name, `data_format=False` the data format (for a
    module where every case shares it)."""
    layer, args, kwargs, shapes, fmt = case
    kw = ",".join(f"{k}={v}" for k, v in kwargs.items())
    text = f"{layer if name else ''}{args}{kw}-{shapes}"
    return f"{text}-{fmt}" if data_format else text


# ---------------------------------------------------------------- building the two layers


def keras_dim(d):
    """A dimension as Keras writes it: a symbolic (str) or unknown size is None."""
    return d if isinstance(d, int) else None


def batch_inputs(shapes: Sequence[tuple], dtype: str = "float32") -> list[TensorType]:
    """Our input types for shapes given without the batch axis."""
    return [TensorType(dtype, ("batch", *s)) for s in shapes]


def _convert_args(args, kwargs, convert):
    return tuple(map(convert, args)), {k: convert(v) for k, v in kwargs.items()}


def _ours_value(value):
    if isinstance(value, Sub):
        return our_layer(value.name, value.args, value.kwargs)
    return value


def _keras_value(value):
    if isinstance(value, Sub):
        return keras_layer(value.name, value.args, value.kwargs)
    return value


def our_args(args, kwargs) -> tuple[tuple, dict]:
    """args and kwargs with every `Sub` built as one of our layers."""
    return _convert_args(args, kwargs, _ours_value)


def our_layer(name: str, args=(), kwargs=None, data_format: str | None = None):
    """Our layer `name` created from Keras-style arguments (with `data_format` if given)."""
    args, kwargs = our_args(args, kwargs or {})
    if data_format is not None:
        kwargs = {"data_format": data_format, **kwargs}
    return LAYERS[name].create(*args, **kwargs)


#: layers keras.applications defines for its models (not in keras.layers)
APPLICATION_LAYERS = {
    "LayerScale": "keras.src.applications.convnext",
    "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
}


def keras_class(name: str) -> type:
    """The Keras class of layer `name`: keras.layers, or keras.applications' own."""
    if name in APPLICATION_LAYERS:
        import importlib

        keras_module()
        return getattr(importlib.import_module(APPLICATION_LAYERS[name]), name)
    return getattr(keras_module().layers, name)


def keras_layer(name: str, args=(), kwargs=None, data_format: str | None = None):
    """The Keras layer `name` built from the same arguments.

    `data_format`, if given, is passed where the Keras constructor takes one and the
    kwargs do not set it already."""
    cls = keras_class(name)
    args, kwargs = _convert_args(args, kwargs or {}, _keras_value)
    if data_format is not None and "data_format" in inspect.signature(cls.__init__).parameters:
        kwargs.setdefault("data_format", data_format)
    return cls(*args, **kwargs)


# How a Keras layer is called on its keras.Input tensors (the `call` of assert_matches_keras)


def call_on_inputs(layer, inputs):
    """One input alone, several as a list (most layers, merge layers)."""
    return layer(inputs[0] if len(inputs) == 1 else inputs)


def call_positional(layer, inputs):
    """Each input as its own argument (MultiHeadAttention: query, value[, key])."""
    return layer(*inputs)


def call_with_initial_state(layer, inputs):
    """The sequence, then any further inputs as `initial_state` (recurrent layers)."""
    if len(inputs) > 1:
        return layer(inputs[0], initial_state=inputs[1:])
    return layer(inputs[0])


# How a Keras weight is named as ours are (the `weight_name` of assert_matches_keras)


def variable_name(variable) -> str:
    """The variable's own name: 'kernel'."""
    return variable.name


def path_in_layer(variable) -> str:
    """'multi_head_attention/query/kernel' -> 'query/kernel'."""
    return variable.path.split("/", 1)[1]


def nested_path(variable) -> str:
    """'bidirectional/forward_lstm_3/lstm_cell/kernel' -> 'forward_lstm/kernel'."""
    parts = variable.path.split("/")[1:]
    parts = [re.sub(r"_\d+$", "", p) for p in parts if not p.endswith("_cell")]
    return "/".join(parts)


# ---------------------------------------------------------------- the comparisons


def assert_matches_keras(
    case,
    *,
    call: Callable = call_on_inputs,
    weight_name: Callable[[object], str] = variable_name,
):
    """Builds the case here and in Keras on float32 inputs and asserts that they agree on

    - the output shapes (symbolic sizes count as unknown),
    - the weights: names (`weight_name` of each Keras variable), shapes and order,
    - the weights' trainable flags (not for a frozen layer: Keras then marks every variable
      untrainable, where ktrans keeps each weight's own flag and freezes the layer),
    - the parameter count and the trainable parameter count.

    Returns (our layer, the Keras layer) for further checks."""
    name, args, kwargs, shapes, data_format = case
    ours = our_layer(name, args, kwargs, data_format)
    outs = ours(batch_inputs(shapes))

    keras = keras_module()
    ref = keras_layer(name, args, kwargs, data_format)
    out = call(ref, [keras.Input(shape=tuple(keras_dim(d) for d in s)) for s in shapes])
    ref_outs = out if isinstance(out, (list, tuple)) else [out]

    assert [tuple(keras_dim(d) for d in t.shape) for t in outs] == [
        tuple(t.shape) for t in ref_outs
    ]
    assert [(w.name, w.shape) for w in ours.weights] == [
        (weight_name(v), tuple(v.shape)) for v in ref.weights
    ]
    if ours.trainable:
        assert [w.trainable for w in ours.weights] == [v.trainable for v in ref.weights]
    keras_trainable = sum(math.prod(v.shape) for v in ref.trainable_weights)
    assert ours.param_count == ref.count_params()
    assert ours.trainable_count == keras_trainable
    return ours, ref


def keras_signature(name: str) -> list[inspect.Parameter]:
    """The Keras constructor's arguments, without self, name and **kwargs."""
    cls = keras_class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    return [
        p
        for p in params
        if p.name not in ("self", "name", "kwargs") and p.kind is not p.VAR_KEYWORD
    ]


def assert_signature_matches(
    name: str, *, kwargs_only: Sequence[str] = (), convert_defaults: bool = False
) -> None:
    """Our signature for layer `name` has the Keras constructor's arguments, in its order,
    with its defaults (REQUIRED where Keras has none).

    `kwargs_only`: our arguments that Keras takes through **kwargs (left out here).
    `convert_defaults`: compare the defaults once our converter has read them (Keras
    writes 'Zeros' where we write 'zeros'); otherwise they must be equal as written."""
    ours = [a for a in LAYERS[name].signature if a.name not in kwargs_only]
    theirs = keras_signature(name)
    if not convert_defaults:
        assert [(a.name, a.default) for a in ours] == [
            (p.name, REQUIRED if p.default is inspect.Parameter.empty else p.default)
            for p in theirs
        ]
        return
    assert [a.name for a in ours] == [p.name for p in theirs]
    for a, p in zip(ours, theirs):
        if a.required:
            assert p.default is inspect.Parameter.empty, a.name
        else:
            assert a.convert(a.default) == a.convert(p.default), a.name


def assert_registered(name: str, family: str) -> None:
    """Layer `name` is in the catalogue under `family`, and documents its output shape."""
    cls = LAYERS[name]
    assert cls.family == family
    assert "Output shape" in (cls.__doc__ or "")


# ---------------------------------------------------------------- errors


@contextlib.contextmanager
def raises_layer_error(fragment: str, *, hint: str | None = None, arg=UNCHECKED) -> Iterator:
    """The block raises a LayerError whose message contains `fragment`, whose hint contains
    `hint` (if given) and whose `.arg` is `arg` (None included; UNCHECKED: not looked at)."""
    with pytest.raises(LayerError) as err:
        yield err
    assert fragment in err.value.message
    if arg is not UNCHECKED:
        assert err.value.arg == arg
    if hint is not None:
        assert hint in (err.value.hint or "")


def assert_keras_rejects(
    name: str, args=(), kwargs=None, input_shape: tuple | None = None, dtype: str = "float32"
) -> None:
    """Keras refuses to build layer `name` from these arguments (ValueError or TypeError) or,
    with `input_shape` (without batch), to call it on a keras.Input of that shape."""
    with pytest.raises((ValueError, TypeError)):
        layer = keras_layer(name, args, kwargs)
        if input_shape is not None:
            layer(keras_module().Input(shape=input_shape, dtype=dtype))


def assert_rejected(
    name: str,
    args,
    kwargs,
    arg: str,
    fragment: str,
    keras_rejects: bool,
    *,
    keras_input: tuple | None = None,
) -> None:
    """One row of a bad-argument table: binding the arguments raises a LayerError naming
    `arg` with `fragment` in its message; if `keras_rejects`, Keras refuses them too (on
    construction, or when called on `keras_input` if given)."""
    with raises_layer_error(fragment, arg=arg):
        LAYERS[name].bind(*our_args(args, kwargs))
    if keras_rejects:
        assert_keras_rejects(name, args, kwargs, keras_input)


def assert_bad_input(
    name: str,
    args,
    kwargs,
    shapes: Sequence[tuple],
    dtype: str,
    fragment: str,
    hint: str | None = None,
    *,
    arg=UNCHECKED,
) -> None:
    """One row of a bad-input table: layer `name`, created from the arguments, raises a
    LayerError (see raises_layer_error) when called on inputs of `shapes` and `dtype`."""
    layer = our_layer(name, args, kwargs)
    with raises_layer_error(fragment, hint=hint, arg=arg):
        layer(batch_inputs(shapes, dtype))
