"""Expression nodes as keras.ops code, and the automatic names Keras gives those
operations.
"""

from __future__ import annotations

import re

from transpiler.emit.code.keras_names import CodegenError, checked, lit, pystr
from transpiler.emit.code.keras_render import Atom, Expr, Seq, call
from transpiler.graph.model import Node
from transpiler.layers.base import Layer

_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "pow": "**"}
_RENAMED = {"exponential": "exp"}
# the names Keras gives the operations of the keras.ops calls written here (and of the
# calls those make): "add", "add_1", ... (keras.src.utils.naming.auto_name)
OP_NAMES = frozenset(
    {
        "absolute",
        "add",
        "ceil",
        "clip",
        "concatenate",
        "cos",
        "elu",
        "erf",
        "exp",
        "expand_dims",
        "floor",
        "gelu",
        "get_item",
        "hard_sigmoid",
        "leaky_relu",
        "log",
        "log_softmax",
        "matmul",
        "max",
        "maximum",
        "mean",
        "min",
        "minimum",
        "multiply",
        "negative",
        "power",
        "prod",
        "reciprocal",
        "relu",
        "relu6",
        "reshape",
        "round",
        "rsqrt",
        "selu",
        "sigmoid",
        "sign",
        "silu",
        "sin",
        "softmax",
        "softplus",
        "softsign",
        "sqrt",
        "square",
        "squeeze",
        "subtract",
        "sum",
        "tanh",
        "transpose",
        "true_divide",
    }
)


def _axis_value(axis: int, rank: int) -> str:
    return "-1" if axis == rank - 1 else str(axis)


def expression_expr(node: Node, names: list[str]) -> Expr:
    """The keras.ops code of an expression node; `names` are its inputs' variables."""
    from transpiler.layers import expression_shapes as shapes
    from transpiler.layers import expressions as ex

    op = node.layer
    x = names[0]
    rank = node.inputs[0].type.rank
    if isinstance(op, ex.Elementwise):
        if len(names) == 2:
            a, b = names
        elif op.scalar_left:
            a, b = lit(op.scalar), x
        else:
            a, b = x, lit(op.scalar)
        symbol = _OPERATORS.get(op.op)
        if symbol is None:
            return call(f"ops.{checked(op.op)}", Atom(a), Atom(b))
        if symbol == "**":
            # ruff hugs simple operands (names, numbers); a negative base needs parentheses
            if a.startswith("-"):
                return Atom(f"({a}) ** {b}")
            return Atom(f"{a}**{b}")
        return Atom(f"{a} {symbol} {b}")
    if isinstance(op, ex.Unary):
        fn = op.fn
        if fn in ("softmax", "log_softmax"):
            kwargs = {} if op.axis == rank - 1 else {"axis": Atom(str(op.axis))}
            return call(f"ops.{fn}", Atom(x), **kwargs)
        if fn == "linear":
            return call("keras.activations.linear", Atom(x))
        if fn == "mish":  # keras.activations.mish takes no symbolic tensors
            return call("ops.multiply", Atom(x), call("ops.tanh", call("ops.softplus", Atom(x))))
        if fn == "gelu":  # keras.ops.gelu approximates by default; the activation does not
            return call("ops.gelu", Atom(x), approximate=Atom("False"))
        return call(f"ops.{checked(_RENAMED.get(fn, fn))}", Atom(x))
    if isinstance(op, ex.Reduce):
        axes = op.axes
        axis = _axis_value(axes[0], rank) if len(axes) == 1 else lit(tuple(axes))
        kwargs = {"axis": Atom(axis)}
        if op.keepdims:
            kwargs["keepdims"] = Atom("True")
        return call(f"ops.{checked(op.fn)}", Atom(x), **kwargs)
    if isinstance(op, ex.MatMul):
        return call("ops.matmul", Atom(names[0]), Atom(names[1]))
    if isinstance(op, ex.Clip):
        return call("ops.clip", Atom(x), Atom(lit(op.lo)), Atom(lit(op.hi)))
    if isinstance(op, shapes.ReshapeTo):
        if all(isinstance(d, int) for d in op.resolved):
            return call("ops.reshape", Atom(x), Atom(lit((-1, *op.resolved))))
        # a dynamic size: keras.ops cannot see the batch size in a functional graph,
        # the Reshape layer can (one layer more than the .kdl model lists)
        target = Atom(lit(tuple(op.target)))
        return call(call("layers.Reshape", target, name=Atom(pystr(op.name))), Atom(x))
    if isinstance(op, shapes.Transpose):
        return call("ops.transpose", Atom(x), axes=Atom(lit(tuple(op.resolved))))
    if isinstance(op, shapes.Concat):
        tensors = Seq("[", "]", [Atom(n) for n in names])
        return call("ops.concatenate", tensors, axis=Atom(_axis_value(op.resolved, rank)))
    if isinstance(op, shapes.ExpandDims):
        return call("ops.expand_dims", Atom(x), axis=Atom(str(op.resolved)))
    if isinstance(op, shapes.Squeeze):
        return call("ops.squeeze", Atom(x), axis=Atom(str(op.resolved)))
    if isinstance(op, shapes.Index):
        return Atom(f"{x}[{subscript(op.resolved)}]")
    raise CodegenError(f"no Keras code for the expression '{op.describe_config()}'")


_OP_CLASS = {"abs": "absolute", "swish": "silu"}
_OPERATOR_OPS = {
    "add": "add",
    "subtract": "subtract",
    "multiply": "multiply",
    "divide": "true_divide",
    "pow": "power",
}


def op_names(op: Layer, expr: Expr) -> set[str]:
    """The automatic names (without counters) Keras gives the operations of `expr`."""
    from transpiler.layers.expression_shapes import Index
    from transpiler.layers.expressions import Elementwise

    text = expr.flat()
    names = {_OP_CLASS.get(f, f) for f in re.findall(r"\bops\.(\w+)\(", text)}
    if isinstance(op, Elementwise) and "ops." not in text:
        names.add(_OPERATOR_OPS[op.op])
    if isinstance(op, Index):
        names.add("get_item")
    return names & OP_NAMES


def keeps_name(op: Layer) -> bool:
    """An expression written as a named layer (a dynamic reshape)."""
    from transpiler.layers.expression_shapes import ReshapeTo

    return isinstance(op, ReshapeTo) and not all(isinstance(d, int) for d in op.resolved)


def subscript(items) -> str:
    """`:, 0, 1:5, ::2`: a numpy-style subscript of the batch axis whole, then the
    `Index` expression's items."""
    parts = [":"]
    for item in items:
        if item[0] == "index":
            parts.append(str(int(item[1])))
            continue
        _, start, stop, step = item
        text = f"{'' if start is None else int(start)}:{'' if stop is None else int(stop)}"
        if step not in (None, 1):
            text += f":{int(step)}"
        parts.append(text)
    return ", ".join(parts)
