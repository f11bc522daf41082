"""Core layers: Dense, Activation, Dropout and the noise layers, Embedding."""

from __future__ import annotations

from transpiler.emit.torch.activations import activation_expr, activation_module, last_axis
from transpiler.emit.torch.code import Atom, call, kwargs_if, method, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer
from transpiler.layers.shapes import spatial_axes


@torch_layer("Dense")
def dense(e, inputs):
    """nn.Linear on the last axis, then the activation."""
    x = e.logical(inputs[0])
    layer = e.layer
    weights = {"kernel": ("weight", "linear")}
    if layer.use_bias:
        weights["bias"] = ("bias", "")
    bias = None if layer.use_bias else Atom("False")
    ctor = call("nn.Linear", num(x.type.shape[-1]), num(layer.units), **kwargs_if(bias=bias))
    y = call(e.module(ctor, weights), e.ref(x))
    return [Out(activation_expr(layer.activation, y), e.types[0])]


@torch_layer("Activation")
def activation(e, inputs):
    (x,) = inputs
    module = e.module(activation_module(e.layer.activation, last_axis(x), e))
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]


@torch_layer("Dropout")
def dropout(e, inputs):
    """nn.Dropout (inverted dropout, as Keras); Keras's noise_shape shares the mask
    along the axes where it is 1."""
    (x,) = inputs
    layer = e.layer
    shape = getattr(layer, "noise_shape", None)
    if shape is None:
        ctor = call("nn.Dropout", num(float(layer.rate)))
    else:
        x = e.logical(x)
        shared = tuple(i for i, n in enumerate(shape) if n == 1 and x.type.shape[i] != 1)
        ctor = call(e.helper("SpatialDropout"), num(float(layer.rate)), num(shared))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("SpatialDropout1D", "SpatialDropout2D")
def spatial_dropout(e, inputs):
    """Dropout of whole channels: the mask is shared along the spatial axes."""
    (x,) = inputs
    if e.layer.keras_class() == "SpatialDropout1D":
        axes = [1]
    else:
        axes = spatial_axes(x.rank, e.data_format)
    shared = tuple(sorted(x.physical_axis(a) for a in axes))
    ctor = call(e.helper("SpatialDropout"), num(float(e.layer.rate)), num(shared))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("GaussianNoise")
def gaussian_noise(e, inputs):
    (x,) = inputs
    ctor = call(e.helper("GaussianNoise"), num(float(e.layer.stddev)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], x.perm)]


@torch_layer("Embedding", sets_masks=True)
def embedding(e, inputs):
    """nn.Embedding (the same (input_dim, output_dim) table as Keras's); with
    mask_zero the output carries the Keras mask `ids != 0`."""
    x = e.logical(inputs[0])
    layer = e.layer
    ctor = call("nn.Embedding", num(layer.input_dim), num(layer.output_dim))
    module = e.module(ctor, {"embeddings": ("weight", "")})
    ids = e.ref(x)
    if x.type.dtype not in ("int64", "int32"):
        ids = method(ids, "long")
    mask = Atom(f"{x.name} != 0") if layer.mask_zero else None
    return [Out(call(module, ids), e.types[0], None, mask)]
