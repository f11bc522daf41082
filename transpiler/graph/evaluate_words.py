"""The words of the expression evaluator's errors: how a value is named in a message,
and the hints (a misspelt name, a layer used where a tensor goes, a value used before
its definition). A mixin of ExpressionEvaluator, whose scopes, consts, program and
`error` it reads."""

from __future__ import annotations

from transpiler.errors import suggest
from transpiler.graph.merge_helpers import MERGE_HELPERS
from transpiler.graph.model import Value
from transpiler.graph.values import BlockInstance
from transpiler.layers.args import Symbol, describe
from transpiler.layers.base import Layer
from transpiler.layers.expressions import FUNCTIONS
from transpiler.parser import ast


def is_tensor(v) -> bool:
    return isinstance(v, Value)


class ErrorWords:
    def what(self, v) -> str:
        if is_tensor(v):
            return f"the tensor '{v.name}' {v.type}"
        if isinstance(v, Layer):
            return f"the layer '{v.name}' ({v.keras_class()})"
        if isinstance(v, BlockInstance):
            return f"the block {v.block.name}"
        if isinstance(v, Symbol):
            return f"the name '{v.name}'"
        if isinstance(v, (int, float, str, bool)) or v is None:
            return describe(v)
        kind = getattr(type(v), "kdl_kind", None)
        return kind or describe(v)

    def layer_as_tensor(self, name: ast.Name, value) -> None:
        """`output y = d` where `d = Dense(2)`: the name holds a layer, not its result."""
        kind = self.what(value)
        self.error(
            name.span,
            f"'{name.id}' is {kind}, not a tensor",
            f"apply it to a tensor: {name.id}(x), or x |> {name.id}; a name bound to a layer "
            "is the layer (to share its weights), not its output",
        )

    def not_a_tensor_hint(self, v) -> str | None:
        if isinstance(v, Symbol):
            return self.suggest_name(v.name, None)
        if isinstance(v, Layer):  # by the name the file binds it to (`d = Dense(2)`)
            bound = [n for scope in self.scopes for n, x in scope.names.items() if x is v]
            call = f"{bound[-1]}(x)" if bound else f"{v.keras_class()}(...)(x)"
            return f"apply the layer to a tensor first: {call}"
        return None

    def suggest_name(self, name: str, span) -> str | None:
        here = [n for scope in self.scopes for n in scope.names] + list(self.consts)
        later = self.defined_later.get(name)
        if later is not None and (
            span is None or (later.line, later.column) > (span.line, span.column)
        ):
            return (
                f"'{name}' is defined at line {later.line}, after this use; a model's graph "
                "has no cycles, so define a value before using it"
            )
        return suggest(name, here)

    def suggest_callable(self, name: str) -> str | None:
        from transpiler.layers import LAYERS

        known = [*LAYERS, *self.program.blocks, *FUNCTIONS, *MERGE_HELPERS]
        return suggest(name, known)
