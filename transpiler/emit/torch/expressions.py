"""Expressions (the .kdl's Lambda layer) as torch expressions in forward: operators,
element-wise functions, reductions, reshape / transpose / concat / indexing.

Element-wise ones work on the tensor as it is stored (two tensors stored alike); the
others on Keras's order. Axes count the batch axis as 0, as in keras.ops; a reduction
over several axes of `prod`, which torch reduces one axis at a time, goes from the last
axis down.
"""

from __future__ import annotations

from transpiler.emit.code.keras_ops import subscript
from transpiler.emit.torch.activations import activation_expr
from transpiler.emit.torch.code import Atom, Seq, call, lit, method, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer

_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "pow": "**"}
_TORCH = {
    "exp": "torch.exp",
    "log": "torch.log",
    "sqrt": "torch.sqrt",
    "rsqrt": "torch.rsqrt",
    "abs": "torch.abs",
    "square": "torch.square",
    "negative": "torch.negative",
    "reciprocal": "torch.reciprocal",
    "sign": "torch.sign",
    "floor": "torch.floor",
    "ceil": "torch.ceil",
    "round": "torch.round",  # half to even, as Keras's
    "sin": "torch.sin",
    "cos": "torch.cos",
    "erf": "torch.erf",
}
_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin", "prod": "prod"}


def _binary(op: str, a: str, b: str) -> Atom:
    symbol = _OPERATORS[op]
    if symbol == "**":
        # ruff hugs simple operands (names, numbers); a negative base needs parentheses
        base = f"({a})" if a.startswith("-") else a
        return Atom(f"{base}**{b}")
    return Atom(f"{a} {symbol} {b}")


@torch_layer("Elementwise")
def elementwise(e, inputs):
    op = e.layer.op
    if len(inputs) == 1:
        (x,) = inputs
        scalar = lit(e.layer.scalar)
        if op in ("maximum", "minimum"):
            bound = "min" if op == "maximum" else "max"
            return [Out(method(e.ref(x), "clamp", **{bound: Atom(scalar)}), e.types[0], x.perm)]
        a, b = (scalar, x.name) if e.layer.scalar_left else (x.name, scalar)
        return [Out(_binary(op, a, b), e.types[0], x.perm)]
    a, b = inputs
    if a.perm != b.perm or a.rank != b.rank:
        a, b = e.logical(a), e.logical(b)
    if op in ("maximum", "minimum"):
        return [Out(call(f"torch.{op}", e.ref(a), e.ref(b)), e.types[0], a.perm)]
    return [Out(_binary(op, a.name, b.name), e.types[0], a.perm)]


@torch_layer("Unary")
def unary(e, inputs):
    (x,) = inputs
    fn = {"swish": "silu"}.get(e.layer.fn, e.layer.fn)
    if fn in ("softmax", "log_softmax"):
        axis = x.physical_axis(e.layer.axis)
        expr = activation_expr(fn, e.ref(x), -1 if axis == x.rank - 1 else axis)
    elif fn in _TORCH:
        expr = call(_TORCH[fn], e.ref(x))
    else:
        expr = activation_expr(fn, e.ref(x))
    return [Out(expr, e.types[0], x.perm)]


@torch_layer("Reduce")
def reduce(e, inputs):
    x = e.logical(inputs[0])
    axes = list(e.layer.axes)
    keep = {"keepdim": Atom("True")} if e.layer.keepdims else {}
    name = _REDUCE[e.layer.fn]
    if name == "prod" and len(axes) > 1:
        expr = e.ref(x)
        for axis in sorted(axes, reverse=True):
            expr = method(expr, "prod", dim=num(axis), **keep)
        return [Out(expr, e.types[0])]
    dim = num(axes[0]) if len(axes) == 1 else num(tuple(axes))
    return [Out(method(e.ref(x), name, dim=dim, **keep), e.types[0])]


@torch_layer("MatMul")
def matmul(e, inputs):
    a, b = (e.logical(t) for t in inputs)
    return [Out(Atom(f"{a.name} @ {b.name}"), e.types[0])]


@torch_layer("Clip")
def clip(e, inputs):
    (x,) = inputs
    expr = method(e.ref(x), "clamp", num(e.layer.lo), num(e.layer.hi))
    return [Out(expr, e.types[0], x.perm)]


@torch_layer("ReshapeTo")
def reshape_to(e, inputs):
    x = e.logical(inputs[0])
    resolved = e.layer.resolved
    if all(isinstance(d, int) for d in resolved):
        dims = [num(-1), *(num(d) for d in resolved)]
    else:
        dims = [Atom(f"{x.name}.shape[0]"), *(num(d) for d in e.layer.target)]
    return [Out(method(e.ref(x), "reshape", *dims), e.types[0])]


@torch_layer("Transpose")
def transpose(e, inputs):
    x = e.logical(inputs[0])
    dims = [num(d) for d in e.layer.resolved]
    return [Out(method(e.ref(x), "permute", *dims), e.types[0])]


@torch_layer("Concat")
def concat(e, inputs):
    ts = list(inputs)
    if len({t.perm for t in ts}) > 1:
        ts = [e.logical(t) for t in ts]
    axis = ts[0].physical_axis(e.layer.resolved)
    dim = -1 if axis == ts[0].rank - 1 else axis
    tensors = Seq("[", "]", [e.ref(t) for t in ts])
    return [Out(call("torch.cat", tensors, dim=num(dim)), e.types[0], ts[0].perm)]


@torch_layer("ExpandDims")
def expand_dims(e, inputs):
    x = e.logical(inputs[0])
    return [Out(method(e.ref(x), "unsqueeze", num(e.layer.resolved)), e.types[0])]


@torch_layer("Squeeze")
def squeeze(e, inputs):
    x = e.logical(inputs[0])
    return [Out(method(e.ref(x), "squeeze", num(e.layer.resolved)), e.types[0])]


@torch_layer("Index")
def index(e, inputs):
    x = e.logical(inputs[0])
    return [Out(Atom(f"{x.name}[{subscript(e.layer.resolved)}]"), e.types[0])]
