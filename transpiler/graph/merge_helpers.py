"""Keras's functional merge helpers: `add([a, b])`, `concatenate([a, b], axis=1)`,
`dot([a, b], axes=1)`... are `keras.layers.add` and friends, which create the merge layer
(Add, Concatenate, Dot...) and call it on the list: the layer appears in summaries and
diagrams under Keras's automatic name (`add`, `concatenate_1`), and Keras masks combine
as the layer combines them. Mixed into `GraphBuilder`.

`maximum`, `minimum`, `add`, `subtract` and `multiply` with a number among the operands
(`maximum(x, 0.0)`) have no merge layer: they stay keras.ops expressions.
"""

from __future__ import annotations

from transpiler.errors import Span
from transpiler.graph.values import Function
from transpiler.layers.args import Spec
from transpiler.layers.base import LayerError
from transpiler.layers.expressions import BINARY_FUNCTIONS
from transpiler.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)

#: helper -> (merge layer, the helper's arguments after the list of tensors, defaults)
MERGE_HELPERS = {
    "add": (Add, (), {}),
    "subtract": (Subtract, (), {}),
    "multiply": (Multiply, (), {}),
    "average": (Average, (), {}),
    "maximum": (Maximum, (), {}),
    "minimum": (Minimum, (), {}),
    "concatenate": (Concatenate, ("axis",), {}),
    "dot": (Dot, ("axes",), {"axes": -1}),  # keras.layers.dot(inputs, axes=-1, **kwargs)
}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class MergeHelpers:
    def merge_call(self, fn: str, args: list, kwargs: dict, span: Span, arg_spans: dict):
        """`fn(...)` of a merge helper: the merge layer's output, or None where the call
        is a keras.ops expression (a number among the operands) or has no tensors yet."""
        from transpiler.graph.evaluate import is_tensor

        if args and isinstance(args[0], (list, tuple)) and args[0]:
            tensors, rest = list(args[0]), list(args[1:])
        else:
            count = 0
            while count < len(args) and is_tensor(args[count]):
                count += 1
            tensors, rest = list(args[:count]), list(args[count:])
        if not any(map(is_tensor, tensors)):
            return None  # `concatenate(axis=1)`, to be piped into: a Spec
        _, names, _ = MERGE_HELPERS[fn]
        if not names and any(is_number(v) for v in rest):
            if fn in BINARY_FUNCTIONS:
                return None  # keras.ops.maximum(x, 0.0): an expression
            self.error(span, f"{fn} takes a list of tensors: {fn}([a, b])")
        for v in tensors:
            if not is_tensor(v):
                self.error(
                    span,
                    f"{fn} takes a list of tensors; got {self.what(v)} in it",
                    self.not_a_tensor_hint(v) or f"write {fn}([a, b])",
                )
        if len(rest) > len(names):
            takes = f"the tensors, then {', '.join(names)}" if names else "only the tensors"
            self.error(span, f"{fn} takes {takes}; got {len(rest)} more arguments")
        for name, value in zip(names, rest):
            if name in kwargs:
                self.error(span, f"{fn}: argument '{name}' is given twice")
            kwargs = {**kwargs, name: value}
        return self.merge_layer(fn, tensors, kwargs, span, arg_spans)

    def merge_layer(self, fn: str, tensors: list, kwargs: dict, span: Span, arg_spans: dict):
        """Creates the merge layer `fn` stands for and calls it on `tensors`."""
        cls, _, defaults = MERGE_HELPERS[fn]
        if not tensors:
            self.error(span, f"{fn} needs tensors to merge", f"write {fn}([a, b])")
        try:
            config = cls.bind([], {**defaults, **kwargs})
        except LayerError as err:
            where = (
                arg_spans.get(("name", err.arg))
                if err.arg not in {a.name for a in cls.signature}
                else arg_spans.get(err.arg)
            )
            self.error(where or span, err.message, err.hint)
        layer = self.make_layer(cls, config, span, arg_spans)
        return self.apply(layer, tensors, span)

    def merge_target(self, target, inputs: list, span: Span):
        """`[a, b] |> add` or `[a, b] |> concatenate(axis=1)`: the merge layer's output,
        or None when `target` is not a merge helper."""
        if isinstance(target, Function) and target.name in MERGE_HELPERS:
            return self.merge_layer(target.name, inputs, {}, span, {})
        if isinstance(target, Spec) and target.name in MERGE_HELPERS:
            if target.args:
                return self.merge_call(
                    target.name, [inputs, *target.args], dict(target.kwargs), span, {}
                )
            return self.merge_layer(target.name, inputs, dict(target.kwargs), span, {})
        return None
