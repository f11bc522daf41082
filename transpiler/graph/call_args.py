"""Binding the arguments of a layer call to the layer's Keras call signature.

`LSTM(8)(x, initial_state=[h, c])`, `MultiHeadAttention(2, 4)(query=q, value=v,
attention_mask=m, use_causal_mask=true)`: positional tensors and the keywords that name
positional slots (query, value, key, sequences, initial_state, inputs) become the node's
positional inputs in the signature's order; keyword tensors (attention_mask, mask) and flags
(use_causal_mask) become its `CallArgs`. See `CallArg` in transpiler/layers/base.py.
Mixed into `GraphBuilder`.
"""

from __future__ import annotations

from transpiler.errors import Span, suggest
from transpiler.graph.model import Value
from transpiler.layers.args import ArgError, boolean
from transpiler.layers.base import NO_CALL_ARGS, CallArgs, Layer
from transpiler.parser import ast

POSITIONAL_KINDS = ("tensor", "tensors", "states")


class CallBinder:
    def bind_layer_call(
        self, layer: Layer, call: ast.Call, args: list, kwargs: dict
    ) -> tuple[list[Value], CallArgs, dict[str, Span]]:
        """(positional inputs, keyword tensors and flags, span of each keyword's value)."""
        cls = layer.keras_class()
        signature = {a.name: a for a in layer.call_signature}
        positional: list[Value] = []
        for value, expr in zip(args, call.args):
            positional.extend(self.as_inputs(value, expr.span))
        slots: dict[str, list[Value]] = {}
        tensors: dict[str, Value] = {}
        options: dict[str, object] = {}
        spans: dict[str, Span] = {}
        names: dict[str, Span] = {}  # where each keyword is written
        for k in call.kwargs:
            names[k.name] = k.span
            arg = signature.get(k.name)
            if arg is None:
                self.error(k.span, f"{cls}'s call has no argument '{k.name}'", _hint(layer, k.name))
            spans[k.name] = k.value.span
            value = kwargs[k.name]
            if arg.kind == "flag":
                try:
                    options[k.name] = boolean(value)
                except ArgError as e:
                    self.error(k.value.span, f"{cls}: {k.name} {e.message}", e.hint)
                continue
            given = self.as_inputs(value, k.value.span)
            if arg.kind in ("tensor", "keyword") and len(given) != 1:
                self.error(k.value.span, f"{cls}: {k.name}= takes one tensor; got {len(given)}")
            if arg.kind == "keyword":
                tensors[k.name] = given[0]
            else:
                slots[k.name] = given
        inputs = self.fill_slots(layer, positional, slots, call, names)
        order = [a.name for a in layer.call_signature if a.name in tensors]
        bound = CallArgs({n: tensors[n] for n in order}, options)
        return inputs, (bound if tensors or options else NO_CALL_ARGS), spans

    def fill_slots(self, layer: Layer, positional: list[Value], slots: dict, call, names):
        """The positional inputs in the signature's order: positional tensors fill the
        slots first, keywords the ones left (`names`: where each keyword is written)."""
        cls = layer.keras_class()
        rest = list(positional)
        inputs: list[Value] = []
        skipped = None
        for arg in layer.call_signature:
            if arg.kind not in POSITIONAL_KINDS:
                continue
            if rest:
                if arg.name in slots:
                    self.error(
                        names[arg.name],
                        f"{cls}: '{arg.name}' is given twice, by position and by name",
                    )
                take = 1 if arg.kind == "tensor" else len(rest)
                values, rest = rest[:take], rest[take:]
            else:
                values = slots.pop(arg.name, [])
            if not values:
                if arg.required:
                    self.error(
                        call.span,
                        f"{cls}'s call needs '{arg.name}'",
                        f"pass it by position or as {arg.name}=...",
                    )
                skipped = skipped or arg.name
                continue
            if skipped is not None:
                self.error(
                    names.get(arg.name, call.span),
                    f"{cls}: '{arg.name}' is given but '{skipped}' (before it) is not",
                )
            inputs.extend(values)
        if rest:
            names = [a.name for a in layer.call_signature if a.kind in POSITIONAL_KINDS]
            self.error(
                call.span,
                f"{cls} takes at most {len(positional) - len(rest)} positional tensors "
                f"({', '.join(names)}); got {len(positional)}",
                "pass the others by name",
            )
        return inputs


def input_roles(node) -> list[str]:
    """The call argument each of `node.inputs` came in as (`sequences`, `initial_state`,
    `initial_state`, `mask`), for labels."""
    rest = len(node.positional)
    roles: list[str] = []
    for arg in node.layer.call_signature:
        if arg.kind in POSITIONAL_KINDS and rest:
            take = 1 if arg.kind == "tensor" else rest
            roles += [arg.name] * take
            rest -= take
    return roles + [""] * rest + list(node.call.tensors)


def extra_input_roles(node) -> dict[int, str]:
    """Position in `node.inputs` -> call argument, for the tensors a diagram labels: the
    initial states and the keyword tensors (attention_mask, mask)."""
    kinds = {a.name: a.kind for a in node.layer.call_signature}
    return {
        i: role
        for i, role in enumerate(input_roles(node))
        if kinds.get(role) in ("states", "keyword")
    }


def _hint(layer: Layer, name: str) -> str:
    names = [a.name for a in layer.call_signature]
    if name == "training":
        return (
            "the training mode is not a call argument in .kdl: `ktrans train` runs every "
            "layer in training mode, `ktrans build` and `run` in inference mode"
        )
    return suggest(name, names) or f"{layer.keras_class()}'s call takes: {', '.join(names)}"
