"""Expression evaluation for the graph builder: names, literals, operators, calls, pipes,
indexing. Mixed into `GraphBuilder`, which supplies `apply`, `new_layer` and scopes."""

from __future__ import annotations

import math
import operator

from transpiler.errors import KdlError, Span
from transpiler.graph.evaluate_words import ErrorWords, is_tensor
from transpiler.graph.functions import FunctionError, binary, make_op
from transpiler.graph.merge_helpers import MERGE_HELPERS
from transpiler.graph.model import Value
from transpiler.graph.values import BlockDefRef, BlockInstance, Function, LayerClass, Poison
from transpiler.layers.args import Spec, Symbol, describe, is_int
from transpiler.layers.base import Layer
from transpiler.layers.expression_shapes import Index as IndexOp
from transpiler.layers.expressions import BINARY_OPERATORS, FUNCTIONS
from transpiler.limits import MAX_EXPRESSION_DEPTH, MAX_INT_MAGNITUDE
from transpiler.parser import ast

INTROSPECTION = ("shape",)  # functions of a tensor's type, known when the graph is built
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FOLD = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


class Fail(Exception):
    """Abandons the current statement; the error is already recorded."""


def is_applicable(v) -> bool:
    return isinstance(v, (Layer, BlockInstance, Function))


class ExpressionEvaluator(ErrorWords):
    # ------------------------------------------------------------ errors

    def error(self, span: Span | None, message: str, hint: str | None = None):
        self.sink.add(KdlError(span, message, hint))
        raise Fail

    def check(self, v, span: Span):
        if isinstance(v, Poison):
            raise Fail
        return v

    # ------------------------------------------------------------ dispatch

    eval_depth = 0  # expressions being evaluated inside each other

    def eval(self, e: ast.Expr):
        depth = self.eval_depth
        if depth >= MAX_EXPRESSION_DEPTH:
            self.error(
                e.span,
                f"expressions nest more than {MAX_EXPRESSION_DEPTH} deep here",
                "split the expression into named steps",
            )
        self.eval_depth = depth + 1
        try:
            return getattr(self, "eval_" + type(e).__name__)(e)
        finally:
            self.eval_depth = depth

    def eval_Literal(self, e: ast.Literal):
        return e.value

    def eval_ListExpr(self, e: ast.ListExpr):
        return [self.eval(i) for i in e.items]

    def eval_TupleExpr(self, e: ast.TupleExpr):
        return tuple(self.eval(i) for i in e.items)

    def eval_DictExpr(self, e: ast.DictExpr):
        out = {}
        for key, span, value in e.items:
            if key in out:
                self.error(span, f"key '{key}' appears twice")
            out[key] = self.eval(value)
        return out

    def eval_Name(self, e: ast.Name):
        value = self.lookup(e.id)
        if value is None:
            return Symbol(e.id, e.span)
        return self.check(value, e.span)

    def lookup(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope.names:
                return scope.names[name]
        if name in self.consts:
            return self.consts[name]
        return self.builtin(name)

    def builtin(self, name: str):
        from transpiler.layers import LAYERS

        if name in LAYERS:
            return LayerClass(LAYERS[name])
        if name in self.program.blocks:
            return BlockDefRef(self.program.blocks[name])
        if name in FUNCTIONS or name in INTROSPECTION or name in MERGE_HELPERS:
            return Function(name)
        return None

    # ------------------------------------------------------------ operators

    def eval_UnaryOp(self, e: ast.UnaryOp):
        v = self.eval(e.operand)
        if e.op == "+":
            return v
        if is_tensor(v):
            return self.expression_node("negative", [v], [], {}, e.span)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        self.error(e.span, f"cannot negate {describe(v)}")

    def eval_BinOp(self, e: ast.BinOp):
        # a + b + c + ... nests to the left: walk down that spine and fold back up in a
        # loop, so a 1,000-term sum takes no 1,000-deep recursion
        chain = _left_spine(e, ast.BinOp, "left")
        value = self.eval(chain[-1].left)
        for node in reversed(chain):
            value = self.binary_op(node, value, self.eval(node.right))
        return value

    def binary_op(self, e: ast.BinOp, left, right):
        if not is_tensor(left) and not is_tensor(right):
            return self.fold(e, left, right)
        if e.op == "@":
            if not (is_tensor(left) and is_tensor(right)):
                self.error(e.span, "'@' multiplies two tensors")
            return self.expression_node("matmul", [left, right], [], {}, e.span)
        op = BINARY_OPERATORS[e.op]
        for side in (left, right):
            if not is_tensor(side) and not (
                isinstance(side, (int, float)) and not isinstance(side, bool)
            ):
                self.error(
                    e.span,
                    f"'{e.op}' needs tensors or numbers; got {self.what(side)}",
                    self.not_a_tensor_hint(side),
                )
        if is_tensor(left) and is_tensor(right):
            return self.op_node(binary(op, [left, right], [], "", e.op), e.span, op)
        if is_tensor(left):
            layer, tensors = binary(op, [left], [right], "", e.op)
        else:
            layer, tensors = binary(op, [right], [left], "", e.op)
            layer.scalar_left = True
        return self.op_node((layer, tensors), e.span, op)

    def fold(self, e: ast.BinOp, left, right):
        """Arithmetic on constants happens now: `const units = 32 * 2`."""
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)
        )
        if not numeric or e.op == "@":
            self.error(
                e.span,
                f"'{e.op}' needs tensors or numbers; got {self.what(left)} and {self.what(right)}",
                self.not_a_tensor_hint(left if not is_tensor(left) else right),
            )
        if e.op == "**" and _huge_power(left, right):  # before Python spends hours on it
            self.error(e.span, too_large(MAX_INT_MAGNITUDE))
        try:
            result = _FOLD[e.op](left, right)
        except ZeroDivisionError:
            self.error(e.span, "division by zero")
        except OverflowError:
            self.error(e.span, too_large(MAX_INT_MAGNITUDE))
        if isinstance(result, complex):
            self.error(e.span, f"{describe(left)} ** {describe(right)} is not a real number")
        if e.op == "/" and is_int(left) and is_int(right) and result == int(result):
            result = int(result)
        if is_int(result) and abs(result) > MAX_INT_MAGNITUDE:
            self.error(e.span, too_large(MAX_INT_MAGNITUDE))
        if isinstance(result, float) and not math.isfinite(result):
            self.error(e.span, "the number is too large for a float")
        return result

    # ------------------------------------------------------------ conditions

    def eval_Compare(self, e: ast.Compare):
        left, right = self.eval(e.left), self.eval(e.right)
        for side in (left, right):
            if is_tensor(side):
                self.error(
                    e.span,
                    f"'{e.op}' compares values known when the graph is built, not tensors",
                    "compare numbers, names or shape(x)[i]",
                )
        left, right = _plain(left), _plain(right)
        try:
            return bool(_COMPARE[e.op](left, right))
        except TypeError:
            self.error(e.span, f"cannot compare {self.what(left)} and {self.what(right)}")

    def eval_BoolOp(self, e: ast.BoolOp):
        if e.op == "not":
            return not self.truth(e.left)
        chain = [e]  # p and q and r ...: a loop, as for eval_BinOp
        while isinstance(chain[-1].left, ast.BoolOp) and chain[-1].left.op != "not":
            chain.append(chain[-1].left)
        value = self.truth(chain[-1].left)
        for node in reversed(chain):
            if node.op == "and":
                value = value and self.truth(node.right)
            else:
                value = value or self.truth(node.right)
        return value

    def truth(self, expr: ast.Expr) -> bool:
        value = self.eval(expr)
        if not isinstance(value, bool):
            self.error(
                expr.span,
                f"a condition must be true or false; got {self.what(value)}",
                "conditions are known when the graph is built: use bool parameters, "
                "comparisons, and, or, not",
            )
        return value

    # ------------------------------------------------------------ calls and pipes

    def eval_Pipe(self, e: ast.Pipe):
        chain = _left_spine(e, ast.Pipe, "value")  # x |> A |> B ...: a loop
        value = self.eval(chain[-1].value)
        for node in reversed(chain):
            target = self.eval(node.target)
            value = self.apply_to(target, self.as_inputs(value, node.value.span), node.target.span)
        return value

    def eval_Call(self, e: ast.Call):
        func = self.eval(e.func)
        args = [self.eval(a) for a in e.args]
        kwargs = {k.name: self.eval(k.value) for k in e.kwargs}
        arg_spans = {k.name: k.value.span for k in e.kwargs}
        arg_spans.update({("name", k.name): k.span for k in e.kwargs})
        if isinstance(func, LayerClass):
            return self.new_layer(func.cls, args, kwargs, e, arg_spans)
        if isinstance(func, BlockDefRef):
            return self.bind_block(func.block, args, kwargs, e)
        if isinstance(func, Function) and func.name in INTROSPECTION:
            if len(args) != 1 or kwargs or not is_tensor(args[0]):
                self.error(e.span, "shape(x) takes one tensor")
            dims = args[0].type.shape
            return tuple(d if isinstance(d, int) else None for d in dims)
        if isinstance(func, Function) and func.name in MERGE_HELPERS:
            merged = self.merge_call(func.name, args, kwargs, e.span, arg_spans)
            if merged is not None:
                return merged
        if isinstance(func, Function):
            tensors = [a for a in args if is_tensor(a)]
            if len(args) == 1 and isinstance(args[0], list) and all(map(is_tensor, args[0])):
                tensors = list(args[0])
                args = [tensors]
            if not tensors and not args and not kwargs:
                self.error(e.span, f"{func.name}() needs a tensor", f"write {func.name}(x)")
            if not tensors:
                return Spec(func.name, tuple(args), tuple(kwargs.items()), e.span)
            rest = [a for a in args if not is_tensor(a) and a is not tensors]
            if any(is_tensor(a) for a in args[len(tensors) :]):
                self.error(e.span, f"{func.name}: tensors come first, then other arguments")
            return self.expression_node(func.name, tensors, rest, kwargs, e.span, arg_spans)
        if isinstance(func, Layer) and (args or kwargs):
            inputs, call, spans = self.bind_layer_call(func, e, args, kwargs)
            return self.apply(func, inputs, e.func.span, call, spans)
        if isinstance(func, (Layer, BlockInstance)):
            if kwargs:
                name = next(iter(kwargs))
                self.error(
                    arg_spans[("name", name)],
                    f"a block's call takes only its input tensors; '{name}=' is not supported",
                    "pass the tensors in the order of the block's `input` statements",
                )
            inputs = []
            for a, expr in zip(args, e.args):
                inputs.extend(self.as_inputs(a, expr.span))
            if not inputs:
                self.error(e.span, f"{self.what(func)} was called with no inputs")
            return self.apply_to(func, inputs, e.func.span)
        if isinstance(func, Symbol):
            if any(is_tensor(a) for a in args):
                self.error(
                    e.func.span,
                    f"unknown function or layer '{func.name}'",
                    self.suggest_callable(func.name),
                )
            return Spec(func.name, tuple(args), tuple(kwargs.items()), e.span)
        if isinstance(func, Spec):
            self.error(
                func.span,
                f"unknown layer '{func.name}'",
                self.suggest_callable(func.name),
            )
        self.error(
            e.func.span,
            f"{self.what(func)} cannot be called",
            self.not_a_tensor_hint(func) if is_tensor(func) else None,
        )

    def as_inputs(self, value, span: Span) -> list[Value]:
        if is_tensor(value):
            return [value]
        if isinstance(value, (list, tuple)) and value and all(map(is_tensor, value)):
            return list(value)
        if isinstance(value, Symbol):
            self.error(span, f"unknown name '{value.name}'", self.suggest_name(value.name, span))
        self.error(
            span, f"expected a tensor; got {self.what(value)}", self.not_a_tensor_hint(value)
        )

    def apply_to(self, target, inputs: list[Value], span: Span):
        merged = self.merge_target(target, inputs, span)
        if merged is not None:
            return merged
        if isinstance(target, Function):
            return self.expression_node(target.name, inputs, [], {}, span)
        if isinstance(target, Spec) and target.name in FUNCTIONS:
            # `x |> reshape([80])`: the piped tensor is the function's first argument
            kwargs = dict(target.kwargs)
            return self.expression_node(target.name, inputs, target.args, kwargs, span)
        if isinstance(target, Spec):
            self.error(
                target.span or span,
                f"unknown layer '{target.name}'",
                self.suggest_callable(target.name),
            )
        if isinstance(target, (Layer, BlockInstance)):
            return self.apply(target, inputs, span)
        if isinstance(target, LayerClass):
            self.error(
                span,
                f"{target.cls.__name__} is a layer class: create the layer first",
                f"write {target.cls.__name__}(...)",
            )
        if isinstance(target, BlockDefRef):
            self.error(
                span,
                f"{target.block.name} is a block: give it its arguments first",
                f"write {target.block.name}(...)",
            )
        if isinstance(target, Symbol):
            self.error(
                span,
                f"unknown layer or function '{target.name}'",
                self.suggest_callable(target.name),
            )
        self.error(span, f"{self.what(target)} is not a layer or function")

    def expression_node(self, fn, tensors, args, kwargs, span, arg_spans=None):
        try:
            made = make_op(fn, tensors, list(args), dict(kwargs), "", is_tensor)
        except FunctionError as err:
            where = (arg_spans or {}).get(err.arg, span)
            self.error(where, err.message, err.hint)
        return self.op_node(made, span, fn)

    def op_node(self, made, span: Span, base: str):
        layer, tensors = made
        layer.name = self.unique_name(base)
        outputs = self.apply(layer, list(tensors), span)
        return outputs

    # ------------------------------------------------------------ indexing

    def eval_Index(self, e: ast.Index):
        x = self.eval(e.value)
        if isinstance(x, (list, tuple)) and len(e.subscripts) == 1:
            i = self.eval(e.subscripts[0])
            if not is_int(i):
                self.error(e.subscripts[0].span, "a list index must be an integer")
            if not -len(x) <= i < len(x):
                self.error(e.subscripts[0].span, f"index {i} is out of range for {len(x)} items")
            return x[i]
        if not is_tensor(x):
            self.error(e.value.span, f"only tensors can be indexed; got {self.what(x)}")
        subs = list(e.subscripts)
        n_ellipsis = sum(isinstance(s, ast.EllipsisExpr) for s in subs)
        if n_ellipsis > 1:
            self.error(e.span, "an index can contain only one '...'")
        if n_ellipsis:
            at = next(i for i, s in enumerate(subs) if isinstance(s, ast.EllipsisExpr))
            fill = x.type.rank - (len(subs) - 1)
            if fill < 0:
                self.error(e.span, f"too many indices for a rank-{x.type.rank} tensor")
            full = ast.Slice(subs[at].span, None, None, None)
            subs = subs[:at] + [full] * fill + subs[at + 1 :]
        if not subs:
            return x
        first = subs[0]
        if not (isinstance(first, ast.Slice) and first.start is first.stop is first.step is None):
            self.error(
                first.span,
                "the first index is the batch axis and must be ':'",
                "write x[:, i] to index the first feature axis, as in Keras",
            )
        items = []
        for s in subs[1:]:
            if isinstance(s, ast.Slice):
                parts = [None if p is None else self.eval(p) for p in (s.start, s.stop, s.step)]
                if any(p is not None and not is_int(p) for p in parts):
                    self.error(s.span, "slice bounds must be integers")
                items.append(("slice", *parts))
            else:
                i = self.eval(s)
                if not is_int(i):
                    self.error(s.span, f"an index must be an integer; got {self.what(i)}")
                items.append(("index", i))
        layer = IndexOp("", items=tuple(items))
        return self.op_node((layer, [x]), e.span, "slice")


def _left_spine(e, kind: type, field: str) -> list:
    """`e` and the nodes of its kind down its left side, outermost first."""
    chain = [e]
    while isinstance(getattr(chain[-1], field), kind):
        chain.append(getattr(chain[-1], field))
    return chain


def _huge_power(base, exponent) -> bool:
    """Whether base ** exponent, both integers, is beyond int64 (10 ** 10 ** 10 is)."""
    if not (is_int(base) and is_int(exponent)) or abs(base) < 2 or exponent <= 0:
        return False
    return exponent * math.log2(abs(base)) > 64


def too_large(limit: int) -> str:
    return f"the number is too large: integers are limited to ±{limit:,} (int64)"


def _plain(value):
    """Symbols compare by name (`padding == same`)."""
    return value.name if isinstance(value, Symbol) else value
