"""VJP rules of the pooling ops: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

- MaxPool routes each output's gradient to the element it picked: a second MaxPool with
  the same attributes gives the argmax Indices (flat over the whole tensor, as onnxruntime
  and the reference both count), and ScatterElements adds dY there (overlapping windows
  can pick an element twice). Ties go to the first maximum, as in torch.
- AveragePool spreads dY / count over each window: dY is divided by the (static)
  number of elements each output averaged (count_include_pad=0 leaves the padding out, so
  border outputs average fewer), then a ConvTranspose with a kernel of ones, one channel
  at a time (channels folded into the batch), puts the shares back in place.
- GlobalAveragePool/GlobalMaxPool are ReduceMean/ReduceMax over the spatial axes (ties of
  the maximum share the gradient, as ReduceMax's rule and torch.amax do).
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from transpiler.emit.train.grad import vjp
from transpiler.emit.train.grad.conv import check_attrs, static_spatial, transpose_crop, window
from transpiler.emit.train.grad.elementwise import _attr
from transpiler.emit.train.grad.shape import _ints_attr

_POOL_ATTRS = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"}


@vjp("MaxPool")
def _max_pool(g, node, grads):
    check_attrs(node, _POOL_ATTRS | {"storage_order"})
    if _attr(node, "storage_order", 0) != 0:
        raise NotImplementedError("attribute storage_order=1")
    dy = grads[0]
    if dy is None:  # only the Indices output was used
        return [None]
    x = node.input[0]
    if len(node.output) > 1 and node.output[1]:
        indices = node.output[1]
    else:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        _, indices = g.op("MaxPool", [x], outputs=2, **attrs)
    flat = g.ints([-1], "shape")
    zero = helper.make_tensor("value", g.float_type, [1], [0.0])
    zeros = g.op("ConstantOfShape", [g.op("Shape", [x])], value=zero)
    zeros = g.op("Reshape", [zeros, flat])
    scattered = g.op(
        "ScatterElements",
        [zeros, g.op("Reshape", [indices, flat]), g.op("Reshape", [dy, flat])],
        axis=0,
        reduction="add",
    )
    return [g.op("Reshape", [scattered, g.op("Shape", [x])])]


def window_counts(n, m, k, s, d, begin, end, include_pad):
    """How many elements each of the m windows on one axis averages."""
    lo, hi = (-begin, n + end) if include_pad else (0, n)
    taps = np.arange(m)[:, None] * s + np.arange(k)[None, :] * d - begin
    return np.maximum(((taps >= lo) & (taps < hi)).sum(axis=1), 1)


@vjp("AveragePool")
def _average_pool(g, node, grads):
    check_attrs(node, _POOL_ATTRS | {"count_include_pad"})
    (dy,) = grads
    x, y = node.input[0], node.output[0]
    kernel = _ints_attr(node, "kernel_shape")
    strides, dilations, begins, ends = window(g, node, x, kernel)
    include_pad = bool(_attr(node, "count_include_pad", 0))
    n_in = static_spatial(g, x, "AveragePool gradient")
    n_out = static_spatial(g, y, "AveragePool gradient")
    count = np.ones((), np.float64)
    crop_end, extra = [], []
    for n, m, k, s, d, b0, e0 in zip(n_in, n_out, kernel, strides, dilations, begins, ends):
        count = np.multiply.outer(count, window_counts(n, m, k, s, d, b0, e0, include_pad))
        e, p = transpose_crop(n, m, k, s, d, b0)
        crop_end.append(e)
        extra.append(p)
    if np.all(count == count.flat[0]):
        share = g.op("Div", [dy, g.const(float(count.flat[0]))])
    else:
        share = g.op("Div", [dy, g.const(count.reshape(1, 1, *n_out))])
    # channels folded into the batch: one single-channel ConvTranspose with ones
    folded = g.op("Reshape", [share, g.ints([-1, 1, *n_out], "shape")])
    spread = g.op(
        "ConvTranspose",
        [folded, g.const(np.ones((1, 1, *kernel)))],
        kernel_shape=list(kernel),
        strides=list(strides),
        dilations=list(dilations),
        pads=[*begins, *crop_end],
        output_padding=extra if any(extra) else None,
    )
    return [g.op("Reshape", [spread, g.op("Shape", [x])])]


def _spatial_count(g, x: str) -> str:
    dims = g.shape(x)[2:]
    if all(isinstance(d, int) for d in dims):
        return g.const(float(np.prod(dims)))
    size = g.op("Cast", [g.op("Size", [x])], to=g.float_type)
    batch_channels = g.op("ReduceProd", [g.op("Shape", [x], end=2)], keepdims=0)
    nc = g.op("Cast", [batch_channels], to=g.float_type)
    return g.op("Div", [size, nc])


@vjp("GlobalAveragePool")
def _global_average_pool(g, node, grads):
    check_attrs(node, set())
    (dy,) = grads
    x = node.input[0]
    spread = g.op("Expand", [dy, g.op("Shape", [x])])
    return [g.op("Div", [spread, _spatial_count(g, x)])]


@vjp("GlobalMaxPool")
def _global_max_pool(g, node, grads):
    check_attrs(node, set())
    (dy,) = grads
    x, y = node.input[0], node.output[0]
    hit = g.op("Cast", [g.op("Equal", [x, y])], to=g.float_type)
    ties = g.op("ReduceSum", [hit, g.ints(range(2, g.rank(x)))], keepdims=1)
    return [g.op("Div", [g.op("Mul", [dy, hit]), ties])]
