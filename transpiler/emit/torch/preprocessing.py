"""Preprocessing layers: Rescaling and Normalization (templates/torch_layers/
preprocessing.py), on the tensor as it is stored: a per-channel constant after a
convolution is laid out for the channels-first tensor, with no permute."""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, call, kwargs_if, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer
from transpiler.layers.preprocessing import shape_of


def _perm(x, *values):
    """The storage order the layer's constants need (None: as Keras orders x)."""
    if x.perm is None or all(not shape_of(v) for v in values):
        return None
    return num(tuple(x.perm))


@torch_layer("Rescaling")
def rescaling(e, inputs):
    (x,) = inputs
    layer = e.layer
    offset = num(layer.offset) if layer.offset != 0.0 else None
    kwargs = kwargs_if(offset=offset, perm=_perm(x, layer.scale, layer.offset))
    module = e.module(call(e.helper("Rescaling"), num(layer.scale), **kwargs))
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]


@torch_layer("Normalization")
def normalization(e, inputs):
    """Adapted statistics are the layer's weights (buffers); given ones are constants
    of the module."""
    (x,) = inputs
    layer = e.layer
    kept = layer.kept_axes(x.type)
    if layer.mean is None:
        shape = tuple(x.type.shape[i] for i in kept)
        stats, weights = {}, {n: (n, "") for n in ("mean", "variance", "count")}
    else:
        shape = shape_of(layer.mean)
        stats, weights = {"mean": num(layer.mean), "variance": num(layer.variance)}, {}
    # Keras lines the statistics up with the kept axes from the right
    view = [1] * x.rank
    for i, size in enumerate(reversed(shape)):
        view[kept[-1 - i]] = size
    flags = kwargs_if(invert=Atom("True") if layer.invert else None)
    perm = num(tuple(x.perm)) if x.perm is not None and any(n != 1 for n in view) else None
    args = [num(shape), num(tuple(view))]
    ctor = call(e.helper("Normalization"), *args, **stats, **flags, **kwargs_if(perm=perm))
    module = e.module(ctor, weights)
    return [Out(call(module, e.ref(x)), e.types[0], x.perm)]
