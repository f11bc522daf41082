"""Blocks: binding a block's parameters at its call, expanding its body into the graph
with a fresh scope, and checking its inputs. Mixed into `GraphBuilder`."""

from __future__ import annotations

from transpiler.errors import Span, suggest
from transpiler.graph.evaluate import Fail, is_tensor
from transpiler.graph.model import Value
from transpiler.graph.types import TensorType, format_shape
from transpiler.graph.values import BlockInstance, Scope
from transpiler.layers.args import Symbol, is_int
from transpiler.layers.base import Layer, snake_case
from transpiler.limits import MAX_BLOCK_DEPTH
from transpiler.parser import ast

BLOCK_PARAM_TYPES = {
    "int": lambda v: is_int(v),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, (str, Symbol)),
    "list": lambda v: isinstance(v, (list, tuple)),
    "layer": lambda v: isinstance(v, Layer),
    "tensor": is_tensor,
}


class BlockExpander:
    def bind_block(self, block: ast.BlockDef, args, kwargs, call: ast.Call) -> BlockInstance:
        params = {p.name: p for p in block.params}
        if len(args) > len(block.params):
            self.error(
                call.span,
                f"{block.name} takes {len(block.params)} arguments; got {len(args)}",
            )
        bound = dict(zip((p.name for p in block.params), args))
        spans = {p.name: a.span for p, a in zip(block.params, call.args)}
        for k in call.kwargs:
            if k.name not in params:
                self.error(
                    k.span,
                    f"block {block.name} has no parameter '{k.name}'",
                    suggest(k.name, params) or f"parameters: {', '.join(params) or 'none'}",
                )
            if k.name in bound:
                self.error(k.span, f"parameter '{k.name}' is given twice")
            bound[k.name] = kwargs[k.name]
            spans[k.name] = k.span
        for p in block.params:
            if p.name not in bound:
                if p.default is None:
                    self.error(
                        call.span,
                        f"block {block.name} needs the parameter '{p.name}'",
                        f"for example {block.name}({p.name}=...)",
                    )
                bound[p.name] = self.eval_in_block_defaults(p)
            if p.type is not None:
                check = BLOCK_PARAM_TYPES.get(p.type)
                if check is None:
                    self.error(
                        p.span,
                        f"unknown parameter type '{p.type}'",
                        f"types: {', '.join(BLOCK_PARAM_TYPES)}",
                    )
                if not check(bound[p.name]):
                    self.error(
                        spans.get(p.name, call.span),
                        f"{block.name}: parameter '{p.name}' expects {p.type}; "
                        f"got {self.what(bound[p.name])}",
                    )
        return BlockInstance(block, bound, call.span)

    def eval_in_block_defaults(self, p: ast.Param):
        saved = self.scopes
        self.scopes = []
        try:
            return self.eval(p.default)
        finally:
            self.scopes = saved

    def expand_block(self, inst: BlockInstance, inputs: list[Value], span: Span):
        block = inst.block
        active = [b for b, _ in self.block_stack]
        if block.name in active:
            chain = " -> ".join([*active[active.index(block.name) :], block.name])
            self.error(span, f"block {block.name} uses itself: {chain}", "blocks cannot recurse")
        if len(self.block_stack) >= MAX_BLOCK_DEPTH:
            self.error(span, f"blocks nest more than {MAX_BLOCK_DEPTH} deep")
        self.spend_expansion(span)
        declared = [s for s in block.body if isinstance(s, ast.InputStmt)]
        if len(declared) != len(inputs):
            self.error(
                span,
                f"block {block.name} takes {len(declared)} input tensor"
                f"{'s' if len(declared) != 1 else ''}; got {len(inputs)}",
            )
        instance = self.unique_name(snake_case(block.name))
        self.block_sites[instance] = span
        self.block_types[instance] = block.name
        self.block_inputs[instance] = tuple(inputs)
        self.block_params[instance] = tuple(p.name for p in block.params)
        self.block_input_names[instance] = tuple(s.name for s in declared)
        self.block_stack.append((block.name, instance))
        saved = (self.scopes, self.current, self.defined_later, self.pending_inputs)
        self.scopes = [Scope(dict(inst.params))]
        self.pending_inputs = list(inputs)
        self.defined_later = definitions(block.body)
        outputs: dict[str, tuple[Value, Span]] = {}
        errors = len(self.sink.errors)
        try:
            self.run_body(block.body, [], outputs, top=False)
            result = self.current
        finally:
            self.scopes, self.current, self.defined_later, self.pending_inputs = saved
            self.block_stack.pop()
        if len(self.sink.errors) != errors:
            raise Fail
        if outputs:
            values = [v for v, _ in outputs.values()]
            self.block_outputs[instance] = tuple(values)
            return values[0] if len(values) == 1 else tuple(values)
        if result is None or not (is_tensor(result) or isinstance(result, tuple)):
            self.error(span, f"block {block.name} produces no tensor")
        self.block_outputs[instance] = result if isinstance(result, tuple) else (result,)
        return result

    def block_input(self, stmt: ast.InputStmt) -> Value:
        if not self.pending_inputs:  # an `input` inside repeat or if: counted once, or not
            self.error(
                stmt.name_span,
                f"block input '{stmt.name}' has no tensor left to take: block "
                f"{self.block_stack[-1][0]} takes one tensor per `input` at the top of its body",
                "declare a block's inputs at the top of its body, outside repeat and if",
            )
        return self.pending_inputs.pop(0)

    def check_block_input(self, stmt: ast.InputStmt, value: Value, declared: TensorType) -> None:
        got = value.type
        ok = got.dtype == declared.dtype and got.rank == declared.rank
        if ok:
            for a, b in zip(got.shape[1:], declared.shape[1:]):
                if isinstance(b, int) and isinstance(a, int) and a != b:
                    ok = False
        if not ok:
            self.error(
                stmt.type.span,
                f"block input '{stmt.name}' expects {declared.dtype}"
                f"{format_shape(declared.shape)}; got {got.dtype}{format_shape(got.shape)}",
            )


def flatten(body):
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.Repeat):
            yield from flatten(stmt.body)
        elif isinstance(stmt, ast.If):
            yield from flatten(stmt.body)
            yield from flatten(stmt.orelse)


def definitions(body) -> dict[str, Span]:
    """Where each name is first bound in a body (for 'defined after use' hints)."""
    out: dict[str, Span] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            for name, span in stmt.targets:
                out.setdefault(name, span)
        elif isinstance(stmt, ast.InputStmt) or (isinstance(stmt, ast.OutputStmt) and stmt.name):
            out.setdefault(stmt.name, stmt.name_span)
        elif isinstance(stmt, ast.Repeat):
            for k, v in definitions(stmt.body).items():
                out.setdefault(k, v)
        elif isinstance(stmt, ast.If):
            for k, v in {**definitions(stmt.orelse), **definitions(stmt.body)}.items():
                out.setdefault(k, v)
    return out
