"""VJP rule of Resize by constant integer scales, as UpSampling1D/2D lower it
(transpiler/layers/reshaping.py):

- nearest, asymmetric coordinates, floor rounding: each output copies input element
  floor(i / s), so the input's gradient sums each block of s outputs (a Reshape that
  splits the axis into (n, s) and a ReduceSum over s);
- linear, half_pixel coordinates (Keras's bilinear, torch's align_corners=False): along
  each scaled axis y = M x for a constant (n * s, n) interpolation matrix M, rows of the
  two neighbours' weights with the edges clamped; the gradient is M^T dY on that axis
  (separable: one axis at a time). Needs the input's size on the axis to be known.

Other modes, coordinate transformations, fractional scales or a `sizes` input raise
NotImplementedError (the training graph's error names the op and its layer)."""

from __future__ import annotations

import numpy as np

from transpiler.emit.train.grad import vjp
from transpiler.emit.train.grad.elementwise import _attr

NEAREST = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
LINEAR = {"coordinate_transformation_mode": "half_pixel"}


def _integer_scales(g, node) -> list[int]:
    if len(node.input) < 3 or not node.input[2] or (len(node.input) > 3 and node.input[3]):
        raise NotImplementedError("Resize by `sizes`: only constant `scales` have a gradient")
    array = g.b.initializers.get(node.input[2])
    if array is None:
        raise NotImplementedError("Resize with scales computed in the graph")
    scales = [float(s) for s in np.asarray(array).reshape(-1)]
    if any(s < 1 or s != int(s) for s in scales):
        raise NotImplementedError(f"Resize by scales {scales}: only integer upsampling")
    return [int(s) for s in scales]


def _check_mode(node, expected: dict) -> None:
    for name, value in expected.items():
        got = _attr(node, name, None)
        if got != value:
            mode = _attr(node, "mode", "nearest")
            raise NotImplementedError(f"Resize mode '{mode}' with {name}={got!r}")


def _sum_blocks(g, dy: str, axis: int, scale: int, rank: int) -> str:
    """(..., n * s, ...) -> (..., n, ...): the sum over each run of s along `axis`."""
    head = g.op("Shape", [dy], end=axis) if axis else None
    parts = [head] if head else []
    parts.append(g.ints([-1, scale], "shape"))
    if axis + 1 < rank:
        parts.append(g.op("Shape", [dy], start=axis + 1))
    shape = g.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]
    split = g.op("Reshape", [dy, shape])
    return g.op("ReduceSum", [split, g.ints([axis + 1])], keepdims=0)


def interpolation_matrix(n: int, scale: int) -> np.ndarray:
    """M (n * scale, n): linear interpolation with half-pixel centers, edges clamped."""
    m = np.zeros((n * scale, n))
    for i in range(n * scale):
        src = max((i + 0.5) / scale - 0.5, 0.0)
        lo = int(np.floor(src))
        frac = src - lo
        lo = min(lo, n - 1)
        hi = min(lo + 1, n - 1)
        m[i, lo] += 1.0 - frac
        m[i, hi] += frac
    return m


def _apply_transposed(g, dy: str, axis: int, matrix: np.ndarray, rank: int) -> str:
    """dY (..., n * s at `axis`, ...) -> (..., n, ...): M^T applied along `axis`."""
    perm = [a for a in range(rank) if a != axis] + [axis]
    back = [0] * rank
    for i, p in enumerate(perm):
        back[p] = i
    moved = g.op("Transpose", [dy], perm=perm)
    product = g.op("MatMul", [moved, g.const(matrix.astype(g.float_dtype), name="resize_matrix")])
    return g.op("Transpose", [product], perm=back)


@vjp("Resize")
def _resize(g, node, grads):
    (dy,) = grads
    x = node.input[0]
    scales = _integer_scales(g, node)
    rank = len(scales)
    mode = _attr(node, "mode", "nearest")
    out = dy
    if mode == "nearest":
        _check_mode(node, NEAREST)
        for axis, s in enumerate(scales):
            if s > 1:
                out = _sum_blocks(g, out, axis, s, rank)
    elif mode == "linear":
        _check_mode(node, LINEAR)
        shape = g.shape(x)
        for axis, s in enumerate(scales):
            if s > 1:
                if not isinstance(shape[axis], int):
                    raise NotImplementedError("linear Resize of an axis of dynamic size")
                out = _apply_transposed(g, out, axis, interpolation_matrix(shape[axis], s), rank)
    else:
        raise NotImplementedError(f"Resize mode '{mode}'")
    return [g.record(out, x)] + [None] * (len(node.input) - 1)
