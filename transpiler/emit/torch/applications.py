"""The layers keras.applications defines for its own models: LayerScale and
CustomScaleLayer (templates/torch_layers/applications.py)."""

from __future__ import annotations

from transpiler.emit.torch.code import call, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer


@torch_layer("LayerScale")
def layer_scale(e, inputs):
    """gamma along the channels where x stores them (axis 1 after a convolution)."""
    (x,) = inputs
    layer = e.layer
    axis = x.physical_axis(x.rank - 1)
    kwargs = {} if axis == x.rank - 1 else {"axis": num(axis)}
    args = [num(float(layer.init_values)), num(layer.projection_dim)]
    module = e.module(call(e.helper("LayerScale"), *args, **kwargs), {"gamma": ("gamma", "")})
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]


@torch_layer("CustomScaleLayer")
def custom_scale_layer(e, inputs):
    """shortcut + residual * scale, on the tensors as stored where they share a layout."""
    a, b = inputs
    if a.perm != b.perm or a.rank != b.rank:
        a, b = e.logical(a), e.logical(b)
    module = e.module(call(e.helper("CustomScaleLayer"), num(float(e.layer.scale))))
    return [Out(call(module, e.ref(a), e.ref(b)), e.types[0], a.perm)]
