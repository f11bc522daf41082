"""Expression operations: what `x + y`, `relu(x)`, `mean(x, axis=-1)`, `x[:, 0]` become.

These are the .kdl counterpart of Keras's Lambda layer and keras.ops: weightless nodes in
the graph. They are not in the layer catalogue (users write operators and functions, not
these classes); `FUNCTIONS` lists the functions the expression language knows.

Axis numbers count the batch axis as 0, as in keras.ops (so `axis=-1` is the last axis,
`x[:, 0]` takes index 0 of the first non-batch axis). The batch axis itself cannot be
reduced, transposed or indexed. `reshape(x, [7, 7, 16])` takes the target shape without
the batch axis, like the Reshape layer and like input declarations.
"""

from __future__ import annotations

from transpiler.graph.types import broadcast_shapes, format_shape
from transpiler.layers.base import Layer

UNARY_FUNCTIONS = (
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "abs",
    "square",
    "negative",
    "reciprocal",
    "sign",
    "floor",
    "ceil",
    "round",
    "sin",
    "cos",
    "erf",
    "softplus",
    "softsign",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "leaky_relu",
    "exponential",
    "linear",
)
AXIS_FUNCTIONS = ("softmax", "log_softmax")
REDUCTIONS = ("sum", "mean", "max", "min", "prod")
BINARY_FUNCTIONS = ("maximum", "minimum", "pow", "add", "subtract", "multiply", "divide")
SHAPE_FUNCTIONS = (
    "reshape",
    "transpose",
    "concat",
    "concatenate",
    "flatten",
    "expand_dims",
    "squeeze",
    "clip",
    "matmul",
)

FUNCTIONS = UNARY_FUNCTIONS + AXIS_FUNCTIONS + REDUCTIONS + BINARY_FUNCTIONS + SHAPE_FUNCTIONS

BINARY_OPERATORS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "**": "pow"}


_ONNX_UNARY = {
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "abs": "Abs",
    "negative": "Neg",
    "reciprocal": "Reciprocal",
    "sign": "Sign",
    "floor": "Floor",
    "ceil": "Ceil",
    "round": "Round",
    "sin": "Sin",
    "cos": "Cos",
    "erf": "Erf",
}
_ONNX_BINARY = {
    "add": "Add",
    "subtract": "Sub",
    "multiply": "Mul",
    "divide": "Div",
    "pow": "Pow",
    "maximum": "Max",
    "minimum": "Min",
}


class Expression(Layer):
    """Base of the expression ops: configured directly, never bound from .kdl arguments."""

    family = "expression"
    autocast = False  # a Keras op keeps its inputs' dtype

    def __init__(self, name: str, **config) -> None:
        super().__init__(config, name)

    @classmethod
    def keras_class(cls) -> str:
        return "Lambda"

    def check_axis(self, axis: int, rank: int, what: str = "axis") -> int:
        """Normalises a keras.ops axis (batch = 0) and refuses the batch axis."""
        if not -rank <= axis < rank:
            self.fail(f"{what} {axis} is out of range for a rank-{rank} tensor")
        axis = axis % rank
        if axis == 0:
            self.fail(
                f"{what} 0 is the batch axis, which expressions cannot change",
                "axes count the batch axis as 0, as in keras.ops: the first feature axis is 1",
            )
        return axis


class Elementwise(Expression):
    """add, subtract, multiply, divide, pow, maximum, minimum: two tensors, or a tensor and a
    constant (`scalar`, on the left when `scalar_left`). Numpy broadcasting."""

    num_inputs = (1, 2)

    def describe_config(self) -> str:
        return self.op

    def build(self, inputs):
        for t in inputs:
            self.expect_float(t)
        return []

    def output_types(self, inputs):
        if len(inputs) == 1:
            return inputs[0]
        a, b = inputs
        shape = broadcast_shapes(a.shape, b.shape)
        if shape is None:
            self.fail(
                f"{self.op}: shapes {format_shape(a.shape)} and {format_shape(b.shape)} "
                f"cannot be broadcast together"
            )
        return a.with_shape(shape)

    def lower(self, ctx, inputs):
        op = _ONNX_BINARY[self.op]
        out_type = self.output_types([t.type for t in inputs])
        if len(inputs) == 1:
            (x,) = inputs
            c = ctx.const(self.scalar)
            args = [c, x.name] if self.scalar_left else [x.name, c]
            return [x.like(ctx.op(op, args), out_type)]
        a, b = inputs
        if a.perm != b.perm or a.rank != b.rank:
            a, b = ctx.logical(a), ctx.logical(b)
        return [a.like(ctx.op(op, [a, b]), out_type)]


class Unary(Expression):
    """An elementwise function of one tensor (`fn`), or softmax/log_softmax over `axis`."""

    def describe_config(self) -> str:
        return self.fn

    def build(self, inputs):
        self.expect_float(inputs[0])
        if getattr(self, "axis", None) is not None:
            self.axis = self.check_axis(self.axis, inputs[0].rank)
        return []

    def output_types(self, inputs):
        return inputs[0]

    def lower(self, ctx, inputs):
        (x,) = inputs
        fn = self.fn
        if fn in ("softmax", "log_softmax"):
            op = "Softmax" if fn == "softmax" else "LogSoftmax"
            return [x.like(ctx.op(op, [x], axis=x.physical_axis(self.axis)))]
        if fn in _ONNX_UNARY:
            return [x.like(ctx.op(_ONNX_UNARY[fn], [x]))]
        if fn == "square":
            return [x.like(ctx.op("Mul", [x, x]))]
        if fn == "rsqrt":
            return [x.like(ctx.op("Reciprocal", [ctx.op("Sqrt", [x])]))]
        name = {"swish": "silu"}.get(fn, fn)
        return [ctx.activation(x, name)]


class Reduce(Expression):
    """sum/mean/max/min/prod over `axis` (an int, a list, or None for all non-batch axes)."""

    def describe_config(self) -> str:
        return self.fn

    def build(self, inputs):
        (x,) = inputs
        self.expect_float(x)
        axes = self.axis
        if axes is None:
            axes = list(range(1, x.rank))
        elif isinstance(axes, int):
            axes = [axes]
        self.axes = sorted({self.check_axis(a, x.rank) for a in axes})
        return []

    def output_types(self, inputs):
        (x,) = inputs
        shape = []
        for i, d in enumerate(x.shape):
            if i in self.axes:
                if self.keepdims:
                    shape.append(1)
            else:
                shape.append(d)
        return x.with_shape(shape)

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        op = {
            "sum": "ReduceSum",
            "mean": "ReduceMean",
            "max": "ReduceMax",
            "min": "ReduceMin",
            "prod": "ReduceProd",
        }[self.fn]
        out = ctx.op(op, [x, ctx.ints(self.axes, "axes")], keepdims=int(self.keepdims))
        return [x.like(out, self.output_types([x.type]))]


class MatMul(Expression):
    """`a @ b` with numpy matmul semantics over the trailing two axes."""

    num_inputs = (2, 2)

    def build(self, inputs):
        for t in inputs:
            self.expect_float(t)
            if t.rank < 2:
                self.fail(f"matmul needs tensors of rank 2 or more; got {format_shape(t.shape)}")
        return []

    def output_types(self, inputs):
        a, b = inputs
        k1, k2 = a.shape[-1], b.shape[-2]
        if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
            self.fail(
                f"matmul: {format_shape(a.shape)} @ {format_shape(b.shape)}: the inner "
                f"dimensions {k1} and {k2} differ"
            )
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if batch is None:
            self.fail(
                f"matmul: leading dimensions of {format_shape(a.shape)} and "
                f"{format_shape(b.shape)} cannot be broadcast"
            )
        return a.with_shape(batch + (a.shape[-2], b.shape[-1]))

    def lower(self, ctx, inputs):
        a, b = (ctx.logical(t) for t in inputs)
        return [a.like(ctx.op("MatMul", [a, b]), self.output_types([a.type, b.type]))]


class Clip(Expression):
    """clip(x, min, max)."""

    def build(self, inputs):
        self.expect_float(inputs[0])
        if self.lo > self.hi:
            self.fail(f"clip: min {self.lo} is greater than max {self.hi}")
        return []

    def output_types(self, inputs):
        return inputs[0]

    def lower(self, ctx, inputs):
        (x,) = inputs
        return [x.like(ctx.op("Clip", [x, ctx.const(self.lo), ctx.const(self.hi)]))]
