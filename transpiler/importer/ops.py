"""Keras operations on symbolic tensors (`x + 3.0`, `keras.ops.mean(x, axis=1)`) -> .kdl
expressions.

A functional config lists them like layers, with their module under keras.src.ops, their
settings (axis, keepdims...) in `config` and their operands in the inbound node's `args`
(tensors and numbers). Each becomes one expression over named tensors; `op_expression`
also returns the expression function ktrans names the node after (its automatic names,
`add`, `add_1`..., share counters with the layers').
"""

from __future__ import annotations

from transpiler.importer.errors import ImportFailure
from transpiler.importer.kgraph import Call, Ref
from transpiler.importer.values import number_text, plain

_OPERATORS = {
    "Add": ("+", "add"),
    "Subtract": ("-", "subtract"),
    "Multiply": ("*", "multiply"),
    "TrueDivide": ("/", "divide"),
    "Divide": ("/", "divide"),
    "Power": ("**", "pow"),
    "Matmul": ("@", "matmul"),
}
_UNARY = {
    "Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "HardSigmoid": "hard_sigmoid",
    "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Rsqrt": "rsqrt",
    "Absolute": "abs", "Abs": "abs", "Square": "square", "Negative": "negative",
    "Reciprocal": "reciprocal", "Sign": "sign", "Floor": "floor", "Ceil": "ceil",
    "Round": "round", "Sin": "sin", "Cos": "cos", "Erf": "erf", "Softplus": "softplus",
    "Softsign": "softsign", "Selu": "selu", "Silu": "silu", "Swish": "silu",
}  # fmt: skip
_BINARY_FUNCTIONS = {"Maximum": "maximum", "Minimum": "minimum"}
_REDUCTIONS = {"Sum": "sum", "Mean": "mean", "Max": "max", "Min": "min", "Prod": "prod"}
_NAME_KEYS = ("name",)


def _operands(call: Call) -> list:
    args = list(call.args)
    if len(args) == 1 and isinstance(args[0], list):  # ops.concatenate([a, b])
        args = args[0]
    return args


def _settings(call: Call, allowed: dict) -> dict:
    """The op's config settings, checked against `allowed` (key -> default)."""
    out = {}
    for key, value in call.layer.config.items():
        if key in _NAME_KEYS:
            continue
        value = plain(value)
        if key not in allowed:
            raise ImportFailure(
                f"the operation {call.layer.class_name} has the setting {key}={value!r}, "
                "which the .kdl expression lacks",
                key=key,
            )
        out[key] = value
    for key, value in call.kwargs.items():
        if value is not None:
            raise ImportFailure(f"the operation's call passes {key}=, which .kdl lacks")
    return {k: out.get(k, d) for k, d in allowed.items()}


def _text(value, names: dict[Ref, str], operand: bool = False) -> str:
    if isinstance(value, Ref):
        return names[value]
    if isinstance(value, bool) or value is None:
        raise ImportFailure(f"an operand {value!r} has no .kdl equivalent")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = number_text(value)
    else:
        raise ImportFailure(f"the operand {str(value)[:60]} has no .kdl equivalent")
    if operand and (" " in text or text.startswith("-")):
        return f"({text})"
    return text


def op_expression(call: Call, names: dict[Ref, str]) -> tuple[str, str]:
    """(the .kdl expression of the op call, the function ktrans names its node after)."""
    cls = call.layer.class_name
    ops = _operands(call)
    if cls in _OPERATORS:
        symbol, fn = _OPERATORS[cls]
        _settings(call, {})
        if len(ops) != 2:
            raise ImportFailure(f"{cls} takes two operands; got {len(ops)}")
        a, b = (_text(v, names, operand=True) for v in ops)
        if cls == "Matmul" and not all(isinstance(v, Ref) for v in ops):
            raise ImportFailure("matmul of a tensor and a number has no .kdl equivalent")
        return f"{a} {symbol} {b}", fn
    if cls in _UNARY:
        _settings(call, {})
        return f"{_UNARY[cls]}({_text(ops[0], names)})", _UNARY[cls]
    if cls == "Gelu":
        if _settings(call, {"approximate": True})["approximate"]:
            raise ImportFailure(
                "gelu with approximate=True (the tanh form) has no .kdl equivalent",
                "use keras.ops.gelu(x, approximate=False), which .kdl's gelu computes",
                key="approximate",
            )
        return f"gelu({_text(ops[0], names)})", "gelu"
    if cls in ("LeakyRelu", "Elu"):
        key, default = ("negative_slope", 0.2) if cls == "LeakyRelu" else ("alpha", 1.0)
        if _settings(call, {key: default})[key] != default:
            raise ImportFailure(f"{cls} with {key} other than {default} has no .kdl function")
        fn = "leaky_relu" if cls == "LeakyRelu" else "elu"
        return f"{fn}({_text(ops[0], names)})", fn
    if cls in _BINARY_FUNCTIONS:
        _settings(call, {})
        a, b = (_text(v, names) for v in ops)
        return f"{_BINARY_FUNCTIONS[cls]}({a}, {b})", _BINARY_FUNCTIONS[cls]
    if cls in _REDUCTIONS:
        s = _settings(call, {"axis": None, "keepdims": False})
        fn = _REDUCTIONS[cls]
        return f"{fn}({_text(ops[0], names)}{_axis_kw(s['axis'])}{_keepdims(s)})", fn
    if cls in ("Softmax", "LogSoftmax"):
        s = _settings(call, {"axis": -1})
        fn = "softmax" if cls == "Softmax" else "log_softmax"
        axis = "" if s["axis"] == -1 else f", axis={_axis(s['axis'])}"
        return f"{fn}({_text(ops[0], names)}{axis})", fn
    return _shape_op(call, cls, ops, names)


def _axis(axis) -> str:
    if isinstance(axis, list):
        return "[" + ", ".join(str(int(a)) for a in axis) + "]"
    return str(int(axis))


def _axis_kw(axis) -> str:
    return "" if axis is None else f", axis={_axis(axis)}"


def _keepdims(s: dict) -> str:
    return ", keepdims=true" if s["keepdims"] else ""


def _shape_op(call: Call, cls: str, ops: list, names) -> tuple[str, str]:
    x = _text(ops[0], names) if ops else ""
    if cls == "Reshape":
        shape = _settings(call, {"newshape": None})["newshape"]
        if not isinstance(shape, list) or not shape or shape[0] not in (-1, None):
            raise ImportFailure(
                f"reshape to {shape} changes the batch axis, which .kdl keeps", key="newshape"
            )
        return f"reshape({x}, [{', '.join(str(int(d)) for d in shape[1:])}])", "reshape"
    if cls == "Transpose":
        axes = _settings(call, {"axes": None})["axes"]
        if not isinstance(axes, list) or not axes or axes[0] != 0:
            raise ImportFailure(f"transpose with axes {axes} moves the batch axis", key="axes")
        return f"transpose({x}, {_axis(axes)})", "transpose"
    if cls == "Concatenate":
        axis = _settings(call, {"axis": 0})["axis"]
        tensors = ", ".join(_text(v, names) for v in ops)
        return f"concat({tensors}, axis={_axis(axis)})", "concat"
    if cls in ("ExpandDims", "Squeeze"):
        axis = _settings(call, {"axis": None})["axis"]
        fn = "expand_dims" if cls == "ExpandDims" else "squeeze"
        if axis is None or isinstance(axis, list):
            raise ImportFailure(f"{fn} needs one axis in .kdl", key="axis")
        return f"{fn}({x}, axis={_axis(axis)})", fn
    if cls == "Clip":
        s = _settings(call, {"x_min": None, "x_max": None})
        return f"clip({x}, {_text(s['x_min'], names)}, {_text(s['x_max'], names)})", "clip"
    if cls == "GetItem":
        _settings(call, {})
        return f"{x}[{_subscripts(ops[1] if len(ops) > 1 else None)}]", "index"
    raise ImportFailure(
        f"the operation {cls} has no .kdl expression",
        "write the computation with .kdl expressions or catalogue layers",
    )


def _subscripts(key) -> str:
    items = key if isinstance(key, list) else [key]
    parts = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            parts.append(str(item))
            continue
        if isinstance(item, dict) and item.get("class_name") == "__slice__":
            c = item.get("config") or {}
            start, stop, step = c.get("start"), c.get("stop"), c.get("step")
            text = f"{'' if start is None else int(start)}:{'' if stop is None else int(stop)}"
            if step not in (None, 1):
                text += f":{int(step)}"
            parts.append(text)
            continue
        if item is Ellipsis or item == {"class_name": "__ellipsis__"}:
            parts.append("...")
            continue
        raise ImportFailure(f"the index {str(item)[:40]} has no .kdl equivalent")
    if not parts or parts[0] != ":":
        raise ImportFailure("an index of the batch axis has no .kdl equivalent")
    return ", ".join(parts)
