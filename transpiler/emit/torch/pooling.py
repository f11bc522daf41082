"""Pooling: MaxPooling*D and AveragePooling*D as torch.nn pools on channels-first
tensors ('same' windows as symmetric `padding` where that is exact, else padded in
forward as TensorFlow pads them), and the global poolings as means / maxima over the
stored spatial axes (no permute)."""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, call, kwargs_if, num, size
from transpiler.emit.torch.conv import window_padding
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer
from transpiler.layers.shapes import spatial_axes

POOLS = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
)


@torch_layer(*POOLS)
def pooling(e, inputs):
    layer = e.layer
    rank = layer.rank
    average = layer.keras_class().startswith("Average")
    x = e.channels_first(inputs[0])
    lengths = [inputs[0].type.shape[a] for a in spatial_axes(x.rank, e.data_format)]
    k, s = layer.pool_size, layer.window_strides
    stride = size(s) if tuple(s) != tuple(k) else None
    if layer.padding == "valid":
        cls = f"nn.AvgPool{rank}d" if average else f"nn.MaxPool{rank}d"
        ctor = call(cls, size(k), **kwargs_if(stride=stride))
    else:
        shared = e.shared and max(s) > 1  # a shared layer serves inputs of any size
        pads = None if shared else window_padding(lengths, k, s, (1,) * rank)
        if pads is None:
            helper = e.helper("AveragePoolingSame" if average else "MaxPoolingSame")
            ctor = call(helper, num(tuple(k)), num(tuple(s)))
        elif average:
            ctor = call(
                f"nn.AvgPool{rank}d",
                size(k),
                **kwargs_if(stride=stride, padding=size(pads) if any(pads) else None),
                count_include_pad=Atom("False"),
            )
        else:
            padding = size(pads) if any(pads) else None
            ctor = call(f"nn.MaxPool{rank}d", size(k), **kwargs_if(stride=stride, padding=padding))
    y = call(e.module(ctor), e.ref(x))
    return [Out(y, e.types[0], e.result_perm(rank + 2))]


GLOBAL = (
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
)


@torch_layer(*GLOBAL, sets_masks=True)
def global_pooling(e, inputs):
    """The mean (maximum) over the spatial axes where they are stored; with a Keras
    mask, GlobalAveragePooling1D averages the unmasked steps."""
    (x,) = inputs
    layer = e.layer
    average = "Average" in layer.keras_class()
    masked = average and x.mask is not None
    if masked:
        if e.data_format == "channels_first":
            e.fail(
                "a Keras mask (from Embedding(mask_zero=true)) with data_format="
                "channels_first: Keras lines the mask up with the wrong axis"
            )
        x = e.logical(x)
    dims = tuple(sorted(x.physical_axis(a) for a in spatial_axes(x.rank, e.data_format)))
    helper = e.helper("GlobalAveragePooling" if average else "GlobalMaxPooling")
    keep = {"keepdims": Atom("True")} if layer.keepdims else {}
    module = e.module(call(helper, num(dims), **keep))
    args = [e.ref(x)] + ([Atom(x.mask)] if masked else [])
    perm = x.perm if layer.keepdims else None
    return [Out(call(module, *args), e.types[0], perm)]
