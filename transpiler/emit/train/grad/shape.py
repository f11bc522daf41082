"""VJP rules of ops that move, select or reduce elements."""

from __future__ import annotations

import numpy as np

from transpiler.emit.train.grad import vjp
from transpiler.emit.train.grad.elementwise import _attr

INT64 = 7  # ONNX element type


def _back_to(g, dy, x):
    """Reshape dy to x's shape (static where known)."""
    shape = g.shape(x)
    static = [d if isinstance(d, int) else -1 for d in shape]
    if static.count(-1) <= 1:
        return g.op("Reshape", [dy, g.ints(static, "shape")])
    return g.op("Reshape", [dy, g.op("Shape", [x])])


@vjp("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(g, node, grads):
    return [_back_to(g, grads[0], node.input[0])] + [None] * (len(node.input) - 1)


@vjp("Transpose")
def _transpose(g, node, grads):
    perm = list(_ints_attr(node, "perm") or reversed(range(g.rank(node.input[0]))))
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return [g.op("Transpose", [grads[0]], perm=inverse)]


def _ints_attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints)
    return None


def constant_ints(g, name: str) -> list[int]:
    """The value of a constant int tensor input (axes, pads, starts...)."""
    array = g.b.initializers.get(name)
    if array is None:
        raise NotImplementedError(f"'{name}' must be a constant for its gradient")
    return [int(v) for v in np.asarray(array).reshape(-1)]


@vjp("Concat")
def _concat(g, node, grads):
    (dy,) = grads
    axis = _attr(node, "axis", 0)
    sizes = [g.shape(x)[axis] for x in node.input]
    if not all(isinstance(s, int) for s in sizes):
        raise NotImplementedError("Concat along a dynamic axis")
    parts = g.op("Split", [dy, g.ints(sizes, "split")], outputs=len(sizes), axis=axis)
    return parts if isinstance(parts, list) else [parts]


@vjp("Split")
def _split(g, node, grads):
    axis = _attr(node, "axis", 0)
    pieces = []
    for out, dy in zip(node.output, grads):
        pieces.append(dy if dy is not None else g.op("Mul", [out, g.const(0.0)]))
    return [g.op("Concat", pieces, axis=axis), None]


@vjp("Slice")
def _slice(g, node, grads):
    (dy,) = grads
    x = node.input[0]
    shape = g.shape(x)
    starts = constant_ints(g, node.input[1])
    ends = constant_ints(g, node.input[2])
    axes = constant_ints(g, node.input[3]) if len(node.input) > 3 else list(range(len(starts)))
    steps = constant_ints(g, node.input[4]) if len(node.input) > 4 else [1] * len(starts)
    if any(s != 1 for s in steps):
        return [_scatter_strided(g, node, dy, shape, starts, ends, axes, steps)] + [None] * 4
    rank = len(shape)
    pads = [0] * (2 * rank)
    for start, end, axis, _ in zip(starts, ends, axes, steps):
        axis %= rank
        size = shape[axis]
        if not isinstance(size, int):
            raise NotImplementedError("Slice of a dynamic axis")
        begin, stop, _ = slice(start, end).indices(size)
        pads[axis] = begin
        pads[rank + axis] = size - max(stop, begin)
    return [g.op("Pad", [dy, g.ints(pads, "pads")])] + [None] * (len(node.input) - 1)


def _scatter_strided(g, node, dy, shape, starts, ends, axes, steps):
    """Strided slices: scatter through a constant index map of the sliced elements."""
    rank = len(shape)
    if not all(isinstance(d, int) for d in shape[1:]):
        raise NotImplementedError("strided Slice of a dynamic axis")
    index = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:])
    sel = [slice(None)] * (rank - 1)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= rank
        if axis == 0:
            raise NotImplementedError("strided Slice of the batch axis")
        sel[axis - 1] = slice(start, end, step)
    picked = index[tuple(sel)].reshape(-1)
    flat_dy = g.op("Reshape", [dy, g.ints([0, -1], "shape")])
    zeros = g.op("Mul", [g.op("Reshape", [node.input[0], g.ints([0, -1], "shape")]), g.const(0.0)])
    idx = g.const(np.broadcast_to(picked, (1, picked.size)), np.int64, "indices")
    idx = g.op("Expand", [idx, g.op("Shape", [flat_dy])])
    scattered = g.op("ScatterElements", [zeros, idx, flat_dy], axis=1)
    return g.op("Reshape", [scattered, g.op("Shape", [node.input[0]])])


@vjp("Pad")
def _pad(g, node, grads):
    (dy,) = grads
    mode = _attr(node, "mode", "constant")
    if mode != "constant":
        raise NotImplementedError(f"Pad mode '{mode}'")
    pads = constant_ints(g, node.input[1])
    rank = len(pads) // 2
    shape = g.shape(node.input[0])
    starts, ends, axes = [], [], []
    for axis in range(rank):
        before, after = pads[axis], pads[rank + axis]
        if before or after:
            if before < 0 or after < 0:
                raise NotImplementedError("negative pads")
            starts.append(before)
            size = shape[axis]
            ends.append(before + size if isinstance(size, int) else -after if after else 2**62)
            axes.append(axis)
    out = g.op("Slice", [dy, g.ints(starts, "starts"), g.ints(ends, "ends"), g.ints(axes)])
    return [out] + [None] * (len(node.input) - 1)


@vjp("Gather")
def _gather(g, node, grads):
    (dy,) = grads
    data, indices = node.input
    if _attr(node, "axis", 0) != 0:
        raise NotImplementedError("Gather on an axis other than 0")
    # embeddings: scatter-add rows of dy into a zero table (ScatterND takes int64 indices
    # only, Gather int32 too)
    rows = g.shape(data)
    if g.dtypes.get(indices, INT64) != INT64:
        indices = g.op("Cast", [indices], to=INT64)
    flat_idx = g.op("Reshape", [indices, g.ints([-1, 1], "shape")])
    flat_dy = g.op("Reshape", [dy, g.ints([-1, *rows[1:]], "shape")])
    zeros = g.op("Mul", [data, g.const(0.0)])
    return [g.op("ScatterND", [zeros, flat_idx, flat_dy], reduction="add"), None]


def _reduce_axes(g, node):
    x = node.input[0]
    if len(node.input) > 1 and node.input[1]:
        axes = constant_ints(g, node.input[1])
    else:
        axes = list(range(g.rank(x)))
    return [a % g.rank(x) for a in axes]


def _expand_back(g, dy, node, axes):
    """dy with the reduced axes restored (size 1), broadcast to the input's shape."""
    if not _attr(node, "keepdims", 1):
        dy = g.op("Unsqueeze", [dy, g.ints(sorted(axes))])
    return g.op("Expand", [dy, g.op("Shape", [node.input[0]])])


@vjp("ReduceSum")
def _reduce_sum(g, node, grads):
    axes = _reduce_axes(g, node)
    return [_expand_back(g, grads[0], node, axes)] + [None] * (len(node.input) - 1)


@vjp("ReduceMean")
def _reduce_mean(g, node, grads):
    axes = _reduce_axes(g, node)
    shape = g.shape(node.input[0])
    sizes = [shape[a] for a in axes]
    dy = _expand_back(g, grads[0], node, axes)
    if all(isinstance(s, int) for s in sizes):
        count = g.const(float(np.prod(sizes)))
    else:
        whole = g.op("Cast", [g.op("Size", [node.input[0]])], to=g.float_type)
        part = g.op("Cast", [g.op("Size", [node.output[0]])], to=g.float_type)
        count = g.op("Div", [whole, part])
    return [g.op("Div", [dy, count])] + [None] * (len(node.input) - 1)


@vjp("ReduceMax", "ReduceMin")
def _reduce_extreme(g, node, grads):
    axes = _reduce_axes(g, node)
    y = node.output[0]
    if not _attr(node, "keepdims", 1):
        y = g.op("Unsqueeze", [y, g.ints(sorted(axes))])
    hit = g.op("Cast", [g.op("Equal", [node.input[0], y])], to=g.float_type)
    ties = g.op("ReduceSum", [hit, g.ints(axes)], keepdims=1)
    dy = _expand_back(g, grads[0], node, axes)
    return [g.op("Div", [g.op("Mul", [dy, hit]), ties])] + [None] * (len(node.input) - 1)


@vjp("Expand")
def _expand(g, node, grads):
    return [g.unbroadcast(grads[0], node.input[0], node.output[0]), None]
