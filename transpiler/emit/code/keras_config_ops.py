"""Expression nodes as the keras.ops operations of the generated code, for a Keras config
(keras_config.py): each call `ops.f(x, ...)` is an operation of class `F` (in
keras.src.ops.numpy, .nn or .math) whose constructor takes f's settings (axis, shape, ...)
and whose call takes the tensors, as `Functional.get_config` records it. This follows
keras_ops.expression_expr case by case.
"""

from __future__ import annotations

from transpiler.emit.code.keras_names import CodegenError
from transpiler.graph.model import Node

NUMPY = "keras.src.ops.numpy"
NN = "keras.src.ops.nn"
MATH = "keras.src.ops.math"

# binary operators and functions: the operation classes of keras.ops.<function>
BINARY = {
    "add": "Add",
    "subtract": "Subtract",
    "multiply": "Multiply",
    "divide": "TrueDivide",
    "pow": "Power",
    "maximum": "Maximum",
    "minimum": "Minimum",
}
# unary functions: (module, class, constructor settings) of the keras.ops call written
UNARY = {
    "relu": (NN, "Relu", {}),
    "relu6": (NN, "Relu6", {}),
    "sigmoid": (NN, "Sigmoid", {}),
    "hard_sigmoid": (NN, "HardSigmoid", {}),
    "softplus": (NN, "Softplus", {}),
    "softsign": (NN, "Softsign", {}),
    "elu": (NN, "Elu", {}),
    "selu": (NN, "Selu", {}),
    "gelu": (NN, "Gelu", {"approximate": False}),
    "silu": (NN, "Silu", {}),
    "swish": (NN, "Silu", {}),
    "leaky_relu": (NN, "LeakyRelu", {}),
    "tanh": (NUMPY, "Tanh", {}),
    "exp": (NUMPY, "Exp", {}),
    "exponential": (NUMPY, "Exp", {}),
    "log": (NUMPY, "Log", {}),
    "sqrt": (NUMPY, "Sqrt", {}),
    "rsqrt": (MATH, "Rsqrt", {}),
    "abs": (NUMPY, "Absolute", {}),
    "square": (NUMPY, "Square", {}),
    "negative": (NUMPY, "Negative", {}),
    "reciprocal": (NUMPY, "Reciprocal", {}),
    "sign": (NUMPY, "Sign", {}),
    "floor": (NUMPY, "Floor", {}),
    "ceil": (NUMPY, "Ceil", {}),
    "round": (NUMPY, "Round", {}),
    "sin": (NUMPY, "Sin", {}),
    "cos": (NUMPY, "Cos", {}),
    "erf": (MATH, "Erf", {}),
}
REDUCE = {"sum": "Sum", "mean": "Mean", "max": "Max", "min": "Min", "prod": "Prod"}


def _axis(axis: int, rank: int) -> int:
    return -1 if axis == rank - 1 else axis


def _slice(start, stop, step) -> dict:
    config = {"start": start, "stop": stop, "step": step}
    return {"class_name": "__slice__", "config": config}


def _key(items) -> list:
    """x[...]'s key as Keras records it: the batch axis whole, then the items."""
    key = [_slice(None, None, None)]
    for item in items:
        if item[0] == "index":
            key.append(int(item[1]))
            continue
        _, start, stop, step = item
        as_int = [None if v is None else int(v) for v in (start, stop, step)]
        if as_int[2] == 1:
            as_int[2] = None
        key.append(_slice(*as_int))
    return key


def expression_ops(builder, node: Node, inputs: list):
    """Appends the operations of expression `node` to `builder`; its output's TensorRef."""
    from transpiler.emit.code.keras_config import TensorRef, _shape
    from transpiler.layers import expression_shapes as shapes
    from transpiler.layers import expressions as ex

    op = node.layer
    x = inputs[0]
    out_type = node.outputs[0].type
    result = TensorRef(None, _shape(out_type), out_type.dtype)
    rank = node.inputs[0].type.rank

    def emit(class_name: str, module: str, config: dict, args: list):
        return builder.op(class_name, module, config, args, result)

    if isinstance(op, ex.Elementwise):
        if len(inputs) == 2:
            args = inputs
        elif op.scalar_left:
            args = [op.scalar, x]
        else:
            args = [x, op.scalar]
        return emit(BINARY[op.op], NUMPY, {}, args)
    if isinstance(op, ex.Unary):
        fn = op.fn
        if fn in ("softmax", "log_softmax"):
            name = "Softmax" if fn == "softmax" else "LogSoftmax"
            return emit(name, NN, {"axis": _axis(op.axis, rank)}, [x])
        if fn == "linear":  # keras.activations.linear(x) is x itself
            return x
        if fn == "mish":  # ops.multiply(x, ops.tanh(ops.softplus(x)))
            soft = builder.op("Softplus", NN, {}, [x], x)
            tanh = builder.op("Tanh", NUMPY, {}, [soft], x)
            return emit("Multiply", NUMPY, {}, [x, tanh])
        if fn not in UNARY:
            raise CodegenError(f"no Keras operation for the function '{fn}'")
        module, class_name, config = UNARY[fn]
        return emit(class_name, module, dict(config), [x])
    if isinstance(op, ex.Reduce):
        axes = op.axes
        axis = _axis(axes[0], rank) if len(axes) == 1 else list(axes)
        return emit(REDUCE[op.fn], NUMPY, {"axis": axis, "keepdims": bool(op.keepdims)}, [x])
    if isinstance(op, ex.MatMul):
        return emit("Matmul", NUMPY, {}, inputs)
    if isinstance(op, ex.Clip):
        return emit("Clip", NUMPY, {"x_min": op.lo, "x_max": op.hi}, [x])
    if isinstance(op, shapes.ReshapeTo):
        if all(isinstance(d, int) for d in op.resolved):
            return emit("Reshape", NUMPY, {"newshape": [-1, *op.resolved]}, [x])
        # a dynamic size: the generated code uses the Reshape layer, named after the node
        from transpiler.emit.code.keras_config import LAYERS_MODULE, serialized

        name = op.name
        config = {"name": name, "target_shape": list(op.target)}
        entry = serialized(LAYERS_MODULE, "Reshape", config)
        entry["name"] = name
        entry["inbound_nodes"] = [{"args": [x.json()], "kwargs": {}}]
        builder.layers.append(entry)
        return TensorRef([name, 0, 0], result.shape, result.dtype)
    if isinstance(op, shapes.Transpose):
        return emit("Transpose", NUMPY, {"axes": list(op.resolved)}, [x])
    if isinstance(op, shapes.Concat):
        return emit("Concatenate", NUMPY, {"axis": _axis(op.resolved, rank)}, [inputs])
    if isinstance(op, shapes.ExpandDims):
        return emit("ExpandDims", NUMPY, {"axis": op.resolved}, [x])
    if isinstance(op, shapes.Squeeze):
        return emit("Squeeze", NUMPY, {"axis": op.resolved}, [x])
    if isinstance(op, shapes.Index):
        return emit("GetItem", NUMPY, {}, [x, _key(op.resolved)])
    raise CodegenError(f"no Keras operation for the expression '{op.describe_config()}'")
