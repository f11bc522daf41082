"""Expression functions (`relu(x)`, `mean(x, axis=-1)`, `reshape(x, [7, 7])`...):
argument checking and the Expression op each one becomes."""

from __future__ import annotations

from transpiler.layers import expression_shapes as shapes
from transpiler.layers import expressions as ex
from transpiler.layers.args import ArgError, boolean, describe, int_list, is_int, number


class FunctionError(Exception):
    def __init__(self, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message)
        self.message, self.hint, self.arg = message, hint, arg


def _axis(value, fn: str):
    if value is None or is_int(value):
        return value
    if isinstance(value, (list, tuple)) and all(map(is_int, value)):
        return list(value)
    raise FunctionError(
        f"{fn}: axis expected an integer or a list of integers, got {describe(value)}", arg="axis"
    )


def _bind(fn: str, args: list, kwargs: dict, names: list[str], defaults: dict) -> dict:
    if len(args) > len(names):
        raise FunctionError(f"{fn} takes at most {len(names)} arguments; got {len(args)}")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise FunctionError(
                f"{fn} has no argument '{key}'",
                f"{fn} takes: {', '.join(names)}",
                arg=key,
            )
        if key in bound:
            raise FunctionError(f"{fn}: argument '{key}' is given twice", arg=key)
        bound[key] = value
    for key in names:
        if key not in bound:
            if key not in defaults:
                raise FunctionError(f"{fn} needs the argument '{key}'")
            bound[key] = defaults[key]
    return bound


def make_op(fn: str, tensors: list, args: list, kwargs: dict, name: str, is_tensor):
    """Returns (Expression op, input tensors). `args` are the non-tensor arguments after
    the tensors; raises FunctionError."""
    if fn in ex.UNARY_FUNCTIONS:
        _one(fn, tensors)
        _bind(fn, args, kwargs, [], {})
        return ex.Unary(name, fn=fn, axis=None), tensors
    if fn in ex.AXIS_FUNCTIONS:
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["axis"], {"axis": -1})
        if not is_int(b["axis"]):
            raise FunctionError(f"{fn}: axis expected an integer", arg="axis")
        return ex.Unary(name, fn=fn, axis=b["axis"]), tensors
    if fn in ex.REDUCTIONS:
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["axis", "keepdims"], {"axis": None, "keepdims": False})
        try:
            keep = boolean(b["keepdims"])
        except ArgError as e:
            raise FunctionError(f"{fn}: keepdims {e.message}", arg="keepdims") from None
        return ex.Reduce(name, fn=fn, axis=_axis(b["axis"], fn), keepdims=keep), tensors
    if fn in ("maximum", "minimum", "pow", "add", "subtract", "multiply", "divide"):
        op = {"pow": "pow"}.get(fn, fn)
        return binary(op, tensors, args, name, fn)
    if fn == "matmul":
        if len(tensors) != 2 or args or kwargs:
            raise FunctionError("matmul takes two tensors")
        return ex.MatMul(name), tensors
    if fn in ("concat", "concatenate"):
        if len(tensors) == 0:
            raise FunctionError(f"{fn} needs tensors to join")
        b = _bind(fn, args, kwargs, ["axis"], {"axis": -1})
        if not is_int(b["axis"]):
            raise FunctionError(f"{fn}: axis expected an integer", arg="axis")
        return shapes.Concat(name, axis=b["axis"]), tensors
    if fn == "reshape":
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["shape"], {})
        try:
            target = int_list(b["shape"])
        except ArgError as e:
            raise FunctionError(f"reshape: shape {e.message}", arg="shape") from None
        return shapes.ReshapeTo(name, target=target), tensors
    if fn == "flatten":
        _one(fn, tensors)
        _bind(fn, args, kwargs, [], {})
        return shapes.ReshapeTo(name, target=(-1,)), tensors
    if fn == "transpose":
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["perm"], {"perm": None})
        perm = b["perm"]
        if perm is not None:
            try:
                perm = int_list(perm)
            except ArgError as e:
                raise FunctionError(f"transpose: perm {e.message}", arg="perm") from None
        return shapes.Transpose(name, perm=perm), tensors
    if fn in ("expand_dims", "squeeze"):
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["axis"], {})
        if not is_int(b["axis"]):
            raise FunctionError(f"{fn}: axis expected an integer", arg="axis")
        cls = shapes.ExpandDims if fn == "expand_dims" else shapes.Squeeze
        return cls(name, axis=b["axis"]), tensors
    if fn == "clip":
        _one(fn, tensors)
        b = _bind(fn, args, kwargs, ["min", "max"], {})
        try:
            lo, hi = number(b["min"]), number(b["max"])
        except ArgError as e:
            raise FunctionError(f"clip: {e.message}") from None
        return ex.Clip(name, lo=lo, hi=hi), tensors
    raise FunctionError(f"unknown function '{fn}'")


def binary(op: str, tensors: list, scalars: list, name: str, shown: str):
    """A binary op on tensors and at most one constant."""
    if len(tensors) + len(scalars) != 2 or not tensors:
        raise FunctionError(f"{shown} takes two operands, at least one of them a tensor")
    if len(tensors) == 2:
        return ex.Elementwise(name, op=op, scalar=None, scalar_left=False), tensors
    try:
        value = number(scalars[0])
    except ArgError:
        raise FunctionError(
            f"{shown}: cannot combine a tensor with {describe(scalars[0])}"
        ) from None
    return ex.Elementwise(name, op=op, scalar=value, scalar_left=False), tensors


def _one(fn: str, tensors: list) -> None:
    if len(tensors) != 1:
        raise FunctionError(
            f"{fn} takes one tensor; got {len(tensors)}",
            f"write {fn}(x, ...)" if not tensors else None,
        )
