"""Convolutions: Conv1D/2D/3D, Conv1DTranspose/2DTranspose, DepthwiseConv2D,
SeparableConv2D, as torch.nn convolutions on channels-first tensors.

Keras's padding: 'valid' is torch's default; 'same' becomes symmetric `padding=` where
the pads are known and even on both sides, and a Conv*dSame (padded in forward, as
TensorFlow pads: the extra pixel after) where they are uneven or depend on a dynamic
length; 'causal' pads on the left only. A transposed convolution trims Keras's extra
pixels with a CroppedConvTranspose*d where torch's symmetric `padding` cannot.
"""

from __future__ import annotations

from transpiler.emit.torch.activations import activation_expr
from transpiler.emit.torch.code import Atom, call, kwargs_if, num, size
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer
from transpiler.layers.lowering_utils import conv_transpose_pads, same_pad
from transpiler.layers.shapes import spatial_axes


def window_padding(lengths, kernels, strides, dilations) -> tuple[int, ...] | None:
    """Keras 'same' padding as torch's symmetric `padding`, or None where it is uneven
    or unknown (then the window is padded in forward)."""
    pads = []
    for n, k, s, d in zip(lengths, kernels, strides, dilations):
        pair = same_pad(n, k, s, d)
        if pair is None or pair[0] != pair[1]:
            return None
        pads.append(pair[0])
    return tuple(pads)


def conv_ctor(e, x, rank: int, n_in: int, n_out: int, groups: int, bias: bool):
    """The constructor of a Keras convolution's torch module on channels-first `x`."""
    layer = e.layer
    lengths = [x.type.shape[a] for a in spatial_axes(x.rank, e.data_format)]
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    cls, padding = f"nn.Conv{rank}d", None
    if layer.padding == "causal":
        cls = e.helper("CausalConv1d")
    elif layer.padding == "same":
        # a shared layer's module serves inputs of any size: pads computed in forward
        pads = None if e.shared and max(s) > 1 else window_padding(lengths, k, s, d)
        if pads is None:
            cls = e.helper(f"Conv{rank}dSame")
        elif any(pads):
            padding = size(pads)
    kwargs = kwargs_if(
        stride=size(s) if max(s) > 1 else None,
        padding=padding,
        dilation=size(d) if max(d) > 1 else None,
        groups=num(groups) if groups > 1 else None,
        bias=None if bias else Atom("False"),
    )
    return call(cls, num(n_in), num(n_out), size(k), **kwargs)


def finish(e, x, y, rank: int) -> list[Out]:
    """The activation on the channels-first output, and how it is stored."""
    perm = e.result_perm(rank + 2)
    dim = 1 if perm is not None else -1
    return [Out(activation_expr(e.layer.activation, y, dim), e.types[0], perm)]


@torch_layer("Conv1D", "Conv2D", "Conv3D")
def conv(e, inputs):
    layer = e.layer
    x = e.channels_first(inputs[0])
    n_in = layer.channels(inputs[0].type)
    weights = {"kernel": ("weight", "conv")}
    if layer.use_bias:
        weights["bias"] = ("bias", "")
    ctor = conv_ctor(e, x, layer.rank, n_in, layer.filters, layer.groups, layer.use_bias)
    y = call(e.module(ctor, weights), e.ref(x))
    return finish(e, x, y, layer.rank)


@torch_layer("DepthwiseConv2D")
def depthwise_conv(e, inputs):
    """A grouped nn.Conv2d, one group per input channel: output channel c * M + m is
    input channel c's m-th filter, as in Keras."""
    layer = e.layer
    x = e.channels_first(inputs[0])
    n_in = layer.channels(inputs[0].type)
    m = layer.depth_multiplier
    weights = {"kernel": ("weight", f"depthwise:{m}")}
    if layer.use_bias:
        weights["bias"] = ("bias", "")
    ctor = conv_ctor(e, x, 2, n_in, n_in * m, n_in, layer.use_bias)
    y = call(e.module(ctor, weights), e.ref(x))
    return finish(e, x, y, 2)


@torch_layer("SeparableConv2D")
def separable_conv(e, inputs):
    """nn.Sequential(the depthwise convolution, a 1x1 nn.Conv2d)."""
    layer = e.layer
    x = e.channels_first(inputs[0])
    n_in = layer.channels(inputs[0].type)
    m = layer.depth_multiplier
    depthwise = conv_ctor(e, x, 2, n_in, n_in * m, n_in, False)
    bias = None if layer.use_bias else Atom("False")
    pointwise = call("nn.Conv2d", num(n_in * m), num(layer.filters), num(1), **kwargs_if(bias=bias))
    weights = {
        "depthwise_kernel": ("0.weight", f"depthwise:{m}"),
        "pointwise_kernel": ("1.weight", "conv"),
    }
    if layer.use_bias:
        weights["bias"] = ("1.bias", "")
    module = e.module(call("nn.Sequential", depthwise, pointwise), weights)
    return finish(e, x, call(module, e.ref(x)), 2)


@torch_layer("Conv1DTranspose", "Conv2DTranspose")
def conv_transpose(e, inputs):
    """nn.ConvTranspose*d: Keras's output trimmed by (begin, end) per axis is torch's
    symmetric `padding` plus a crop of the rest; extra cells at the end are torch's
    output_padding."""
    layer = e.layer
    rank = layer.rank
    x = e.channels_first(inputs[0])
    n_in = layer.channels(inputs[0].type)
    out_pad = layer.output_padding or (None,) * rank
    pads, crops, extras = [], [], []
    axes = zip(layer.kernel_size, layer.strides, out_pad, layer.dilation_rate)
    for k, s, p, d in axes:
        begin, end, extra = conv_transpose_pads(k, s, layer.padding, p, d)
        pad = min(begin, end)
        pads.append(pad)
        crops.append((begin - pad, end - pad))
        extras.append(extra)
    cropped = any(b or c for b, c in crops)
    cls = e.helper(f"CroppedConvTranspose{rank}d") if cropped else f"nn.ConvTranspose{rank}d"
    kwargs = kwargs_if(
        stride=size(layer.strides) if max(layer.strides) > 1 else None,
        padding=size(pads) if any(pads) else None,
        output_padding=size(extras) if any(extras) else None,
        dilation=size(layer.dilation_rate) if max(layer.dilation_rate) > 1 else None,
        bias=None if layer.use_bias else Atom("False"),
        crop=num(tuple(crops)) if cropped else None,
    )
    ctor = call(cls, num(n_in), num(layer.filters), size(layer.kernel_size), **kwargs)
    weights = {"kernel": ("weight", "conv")}
    if layer.use_bias:
        weights["bias"] = ("bias", "")
    y = call(e.module(ctor, weights), e.ref(x))
    return finish(e, x, y, rank)
