"""Normalization: BatchNormalization, LayerNormalization, GroupNormalization, on the
tensor as it is stored (the channel axis of a channels-first CNN is axis 1; no permute).
The modules keep Keras's weight names and shapes, so no weight changes layout."""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, call, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer


def _flags(layer, **defaults) -> dict:
    """Keyword arguments for the flags that differ from Keras's defaults."""
    out = {}
    for name, default in defaults.items():
        value = getattr(layer, name)
        if value != default:
            out[name] = num(float(value) if isinstance(default, float) else value)
    return out


def _axis(x, logical_axis: int) -> int:
    axis = x.physical_axis(logical_axis)
    return -1 if axis == x.rank - 1 else axis


@torch_layer("BatchNormalization")
def batch_normalization(e, inputs):
    (x,) = inputs
    layer = e.layer
    if x.mask is not None:
        x = e.logical(x)  # Keras weighs its training statistics with the mask
    n = x.type.shape[layer.axis % x.rank]
    kwargs = {}
    axis = _axis(x, layer.axis)
    if axis != -1:
        kwargs["axis"] = num(axis)
    kwargs |= _flags(layer, momentum=0.99, epsilon=1e-3, center=True, scale=True)
    if not layer.trainable:
        kwargs["trainable"] = Atom("False")
    weights = {}
    if layer.scale:
        weights["gamma"] = ("gamma", "")
    if layer.center:
        weights["beta"] = ("beta", "")
    weights |= {"moving_mean": ("moving_mean", ""), "moving_variance": ("moving_variance", "")}
    ctor = call(e.helper("BatchNormalization"), num(n), **kwargs)
    module = e.module(ctor, weights)
    args = [e.ref(x)] + ([Atom(x.mask)] if x.mask else [])
    return [Out(call(module, *args), e.types[0], x.perm)]


@torch_layer("LayerNormalization")
def layer_normalization(e, inputs):
    (x,) = inputs
    layer = e.layer
    axes = sorted(layer.axis) if isinstance(layer.axis, tuple) else [layer.axis]
    logical = [a % x.rank for a in axes]
    shape = tuple(x.type.shape[i] for i in logical)
    broadcast = tuple(x.type.shape[i] if i in logical else 1 for i in range(x.rank))
    dims = tuple(sorted(x.physical_axis(i) for i in logical))
    args = [num(shape), num(dims), num(broadcast)]
    if x.perm is not None:
        args.append(num(tuple(x.perm)))
    kwargs = _flags(layer, epsilon=1e-3, center=True, scale=True, rms_scaling=False)
    weights = {}
    if layer.scale or layer.rms_scaling:
        weights["gamma"] = ("gamma", "")
    if layer.center and not layer.rms_scaling:
        weights["beta"] = ("beta", "")
    module = e.module(call(e.helper("LayerNormalization"), *args, **kwargs), weights)
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]


@torch_layer("GroupNormalization")
def group_normalization(e, inputs):
    (x,) = inputs
    layer = e.layer
    index = layer.axis % x.rank
    channels = x.type.shape[index]
    groups = channels if layer.groups == -1 else layer.groups
    kwargs = {}
    axis = _axis(x, layer.axis)
    if axis != -1:
        kwargs["axis"] = num(axis)
    kwargs |= _flags(layer, epsilon=1e-3, center=True, scale=True)
    weights = {}
    if layer.scale:
        weights["gamma"] = ("gamma", "")
    if layer.center:
        weights["beta"] = ("beta", "")
    ctor = call(e.helper("GroupNormalization"), num(groups), num(channels), **kwargs)
    module = e.module(ctor, weights)
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]
