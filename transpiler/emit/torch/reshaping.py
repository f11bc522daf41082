"""Reshaping layers: Flatten, Reshape, Permute and RepeatVector in Keras's axis order;
ZeroPadding, Cropping and UpSampling on channels-first tensors, as torch's own modules
(nn.ZeroPad2d, nn.Upsample) work."""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, call, num, pystr
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer


@torch_layer("Flatten")
def flatten(e, inputs):
    """nn.Flatten on the tensor in Keras's order (channels_first: channels moved last,
    as Keras moves them)."""
    (x,) = inputs
    if x.rank == 1:
        ctor = call(e.helper("Reshape"), num((1,)))
        return [Out(call(e.module(ctor), e.ref(x)), e.types[0])]
    if e.data_format == "channels_first" and x.rank > 2:
        x = e.stored_as(x, (0, *range(2, x.rank), 1))
    else:
        x = e.logical(x)
    return [Out(call(e.module(call("nn.Flatten")), e.ref(x)), e.types[0])]


@torch_layer("Reshape")
def reshape(e, inputs):
    x = e.logical(inputs[0])
    ctor = call(e.helper("Reshape"), num(tuple(e.layer.target_shape)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0])]


@torch_layer("Permute")
def permute(e, inputs):
    """One permute from the stored order straight to Keras's permuted order."""
    (x,) = inputs
    order = (0, *e.layer.dims)
    stored = list(range(x.rank)) if x.perm is None else list(x.perm)
    dims = tuple(stored.index(a) for a in order)
    if dims == tuple(range(x.rank)):
        ctor = call("nn.Identity")
    else:
        ctor = call(e.helper("Permute"), num(dims))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0])]


@torch_layer("RepeatVector")
def repeat_vector(e, inputs):
    x = e.logical(inputs[0])
    ctor = call(e.helper("RepeatVector"), num(e.layer.n))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0])]


@torch_layer("ZeroPadding1D", "ZeroPadding2D")
def zero_padding(e, inputs):
    """nn.ZeroPad1d / nn.ZeroPad2d: (left, right[, top, bottom]), last axis first."""
    x = e.channels_first(inputs[0])
    pads = []
    for before, after in reversed(e.layer.pairs()):
        pads += [before, after]
    cls = f"nn.ZeroPad{e.layer.rank}d"
    ctor = call(cls, num(tuple(pads)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], e.result_perm(x.rank))]


@torch_layer("Cropping1D", "Cropping2D")
def cropping(e, inputs):
    x = e.channels_first(inputs[0])
    ctor = call(e.helper("Cropping"), num(tuple(tuple(c) for c in e.layer.crops())))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], e.result_perm(x.rank))]


@torch_layer("UpSampling1D", "UpSampling2D")
def upsampling(e, inputs):
    """nn.Upsample: 'nearest' repeats each element (Keras's ops.repeat); 'bilinear' is
    half-pixel bilinear without antialiasing, as Keras resizes."""
    x = e.channels_first(inputs[0])
    layer = e.layer
    sizes = (layer.size,) if layer.rank == 1 else tuple(layer.size)
    mode = getattr(layer, "interpolation", "nearest")
    scale = num(float(sizes[0])) if len(set(sizes)) == 1 else num(tuple(float(s) for s in sizes))
    ctor = call("nn.Upsample", scale_factor=scale, mode=Atom(pystr(mode)))
    return [Out(call(e.module(ctor), e.ref(x)), e.types[0], e.result_perm(x.rank))]
