"""AST -> Graph: runs a model's statements, expanding blocks and repeats, creating and
calling layers, and checking every shape. Errors are collected per statement so one run
reports all of them."""

from __future__ import annotations

from transpiler.errors import ErrorSink, Span
from transpiler.graph.blocks import BlockExpander, definitions, flatten
from transpiler.graph.call_args import CallBinder
from transpiler.graph.evaluate import ExpressionEvaluator, Fail, is_applicable, is_tensor
from transpiler.graph.merge_helpers import MergeHelpers
from transpiler.graph.model import Graph, Node, Value
from transpiler.graph.program import Program
from transpiler.graph.types import DTYPES, TensorType, format_shape
from transpiler.graph.values import BlockDefRef, BlockInstance, LayerClass, Poison, Scope
from transpiler.layers.args import ArgError, Spec, Symbol, data_format, describe, is_int
from transpiler.layers.base import NO_CALL_ARGS, CallArgs, Layer, LayerError, snake_case
from transpiler.limits import MAX_EXPANSIONS, MAX_LAYERS, MAX_REPEAT
from transpiler.parser import ast

MODEL_OPTIONS = ("data_format", "name")


def evaluate_consts(program: Program, sink: ErrorSink) -> dict[str, object]:
    """File-level constants, in order; each may use the ones before it."""
    builder = GraphBuilder(program, {}, sink)
    for const in program.consts:
        try:
            value = builder.eval(const.value)
            builder.check_constant(value, const.value.span)
        except Fail:
            value = Poison()
        builder.consts[const.name] = value
    return builder.consts


class OverBudget(Exception):
    """Ends the model: it is over a budget of transpiler.limits (the error is recorded)."""


class GraphBuilder(BlockExpander, CallBinder, MergeHelpers, ExpressionEvaluator):
    def __init__(
        self,
        program: Program,
        consts: dict,
        sink: ErrorSink,
        input_shapes: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.program = program
        #: per-sample data shapes that fix the inputs' dynamic axes (see fixed_axes.py)
        self.input_shapes = input_shapes or {}
        self.named_axes: dict[str, int] = {}
        self.consts = dict(consts)
        self.sink = sink
        self.scopes: list[Scope] = []
        self.nodes: list[Node] = []
        self.name_counts: dict[str, int] = {}
        self.used_names: set[str] = set()
        self.block_stack: list[tuple[str, str]] = []  # (block name, instance name)
        self.block_sites: dict[str, Span] = {}
        self.block_types: dict[str, str] = {}
        self.block_inputs: dict[str, tuple[Value, ...]] = {}
        self.block_outputs: dict[str, tuple[Value, ...]] = {}
        self.block_params: dict[str, tuple[str, ...]] = {}
        self.block_input_names: dict[str, tuple[str, ...]] = {}
        self.layer_calls: dict[int, int] = {}
        self.data_format = "channels_last"
        self.defined_later: dict[str, Span] = {}
        self.current = None  # the value a bare layer applies to
        self.pending_inputs: list[Value] = []  # a block's input tensors, not yet declared
        self.repeat_product = 1  # the product of the counts of the repeats being run
        self.expansions = 0  # block instances and repeat iterations so far

    # ------------------------------------------------------------ the model

    def build(self, model: ast.ModelDef) -> Graph | None:
        errors_before = len(self.sink.errors)
        self.read_options(model)
        self.scopes.append(Scope())
        self.defined_later = definitions(model.body)
        inputs: list[tuple[Value, Span]] = []
        outputs: dict[str, tuple[Value, Span]] = {}
        try:
            self.run_body(model.body, inputs, outputs, top=True)
        except OverBudget:
            return None
        if not outputs and self.current is not None and len(self.sink.errors) == errors_before:
            last = self.current
            if is_tensor(last):
                outputs["output"] = (last, model.span)
            elif isinstance(last, tuple) and all(map(is_tensor, last)):
                for i, v in enumerate(last):
                    outputs[f"output_{i}"] = (v, model.span)
        declared = any(isinstance(s, ast.InputStmt) for s in flatten(model.body))
        if not declared:
            self.sink.error(
                model.name_span,
                f"model '{model.name}' has no inputs",
                "declare one: input x: float32[16]",
            )
        elif not outputs and len(self.sink.errors) == errors_before:
            self.sink.error(
                model.name_span,
                f"model '{model.name}' computes nothing",
                "add layers after the inputs, or an `output` statement",
            )
        if len(self.sink.errors) != errors_before:
            return None
        for name, (value, _) in outputs.items():
            if value.producer is None and name == "output":
                self.sink.error(
                    model.name_span,
                    f"model '{model.name}' computes nothing: its output is the input "
                    f"'{value.name}'",
                    "add layers after the inputs",
                )
                return None
        return self.assemble(model, inputs, outputs)

    def read_options(self, model: ast.ModelDef) -> None:
        for opt in model.options:
            if opt.name not in MODEL_OPTIONS:
                from transpiler.errors import suggest

                self.sink.error(
                    opt.span,
                    f"unknown model option '{opt.name}'",
                    suggest(opt.name, MODEL_OPTIONS) or f"options: {', '.join(MODEL_OPTIONS)}",
                )
                continue
            try:
                value = self.eval(opt.value)
            except Fail:
                continue
            if opt.name == "data_format":
                try:
                    self.data_format = data_format(value)
                except ArgError as e:
                    self.sink.error(opt.value.span, f"data_format {e.message}", e.hint)

    def assemble(self, model, inputs, outputs) -> Graph | None:
        """Keeps what the outputs need; an input nothing uses is an error."""
        needed: set[int] = set()
        stack = [v for v, _ in outputs.values()]
        while stack:
            v = stack.pop()
            if id(v) in needed:
                continue
            needed.add(id(v))
            if v.producer is not None:
                stack.extend(v.producer.inputs)
        for value, span in inputs:
            if id(value) not in needed:
                self.sink.error(
                    span,
                    f"input '{value.name}' is never used by an output",
                    "use it, or remove the declaration",
                )
        nodes = [n for n in self.nodes if any(id(o) in needed for o in n.outputs)]
        graph = Graph(
            name=model.name,
            span=model.span,
            file=model.span.file,
            data_format=self.data_format,
            inputs=[v for v, _ in inputs],
            outputs={name: v for name, (v, _) in outputs.items()},
            nodes=nodes,
            blocks=dict(self.block_sites),
            block_types=dict(self.block_types),
            block_inputs=dict(self.block_inputs),
            block_outputs=dict(self.block_outputs),
            block_params=dict(self.block_params),
            block_input_names=dict(self.block_input_names),
        )
        return graph

    # ------------------------------------------------------------ statements

    def run_body(self, body, inputs, outputs, top: bool) -> None:
        for stmt in body:
            try:
                self.run_stmt(stmt, inputs, outputs, top)
            except Fail:
                if isinstance(stmt, ast.Assign):
                    for name, _ in stmt.targets:
                        self.scopes[-1].names[name] = Poison()
                self.current = Poison()

    def run_stmt(self, stmt, inputs, outputs, top) -> None:
        if isinstance(stmt, ast.InputStmt):
            self.declare_input(stmt, inputs, top)
        elif isinstance(stmt, ast.Assign):
            self.assign(stmt)
        elif isinstance(stmt, ast.ExprStmt):
            self.current = self.sequential(stmt.value)
        elif isinstance(stmt, ast.OutputStmt):
            self.output(stmt, outputs)
        elif isinstance(stmt, ast.Repeat):
            self.repeat(stmt, inputs, outputs, top)
        elif isinstance(stmt, ast.If):
            branch = stmt.body if self.truth(stmt.condition) else stmt.orelse
            self.run_body(branch, inputs, outputs, top)
        elif isinstance(stmt, ast.ConstDef):
            value = self.eval(stmt.value)
            self.check_constant(value, stmt.value.span)
            self.bind(stmt.name, value, stmt.name_span)

    def declare_input(self, stmt: ast.InputStmt, inputs, top: bool) -> None:
        if stmt.type is None:
            if top:
                self.error(
                    stmt.name_span,
                    f"model input '{stmt.name}' needs a type",
                    f"write input {stmt.name}: float32[...] (shape without the batch axis)",
                )
            value = self.block_input(stmt)
        else:
            ttype = self.tensor_type(stmt)
            if top:
                if stmt.name in self.input_shapes:
                    ttype = self.fixed_type(stmt, ttype)
                value = Value(ttype, stmt.name)
            else:
                value = self.block_input(stmt)
                self.check_block_input(stmt, value, ttype)
        if any(v.name == stmt.name for v, _ in inputs) and top:
            self.error(stmt.name_span, f"input '{stmt.name}' is declared twice")
        inputs.append((value, stmt.name_span))
        self.bind(stmt.name, value, stmt.name_span)
        self.current = value

    def fixed_type(self, stmt: ast.InputStmt, ttype: TensorType) -> TensorType:
        from transpiler.graph.fixed_axes import AxisMismatch, fix_dynamic_axes

        try:
            return fix_dynamic_axes(stmt.name, ttype, self.input_shapes[stmt.name], self.named_axes)
        except AxisMismatch as e:
            self.error(stmt.name_span, f"the data does not fit: {e}", "check the data file")

    def tensor_type(self, stmt: ast.InputStmt) -> TensorType:
        t = stmt.type
        if t.dtype not in DTYPES:
            from transpiler.errors import suggest

            usual = {"float": "float32", "double": "float64", "int": "int64", "long": "int64"}
            hint = (
                f"did you mean '{usual[t.dtype]}'?"
                if t.dtype in usual
                else suggest(t.dtype, DTYPES)
            )
            self.error(
                t.dtype_span, f"unknown dtype '{t.dtype}'", hint or f"dtypes: {', '.join(DTYPES)}"
            )
        dims: list = ["batch"]
        for i, d in enumerate(t.dims, start=1):
            if d.value is None:
                dims.append(f"{stmt.name}_{i}")
            elif isinstance(d.value, int):
                if d.value <= 0:
                    self.error(d.span, f"dimensions must be positive; got {d.value}")
                dims.append(d.value)
            else:
                v = self.lookup(d.value)
                if v is None:
                    dims.append(d.value)  # a named dynamic axis, shared by name
                elif is_int(v) and v > 0:
                    dims.append(v)
                else:
                    self.error(d.span, f"'{d.value}' is not a positive integer: {describe(v)}")
        return TensorType(t.dtype, tuple(dims))

    def assign(self, stmt: ast.Assign) -> None:
        value = self.eval(stmt.value)
        if len(stmt.targets) == 1:
            name, span = stmt.targets[0]
            if isinstance(value, Symbol):
                self.as_inputs(value, stmt.value.span)
            self.bind(name, value, span)
            if is_tensor(value) or isinstance(value, tuple):
                self.current = value
            return
        if not (isinstance(value, tuple) and all(map(is_tensor, value))):
            self.error(
                stmt.value.span, f"expected several tensors to unpack; got {self.what(value)}"
            )
        if len(value) != len(stmt.targets):
            self.error(
                stmt.span,
                f"{len(stmt.targets)} names but {len(value)} values to unpack",
                "a recurrent layer with return_state=true returns its output and its states",
            )
        for (name, span), v in zip(stmt.targets, value):
            self.bind(name, v, span)
        self.current = value

    def bind(self, name: str, value, span: Span) -> None:
        if self.builtin(name) is not None:
            kind = self.what(self.builtin(name))
            self.error(span, f"'{name}' is {kind} and cannot be rebound", "choose another name")
        self.scopes[-1].names[name] = value
        self.scopes[-1].spans[name] = span

    def sequential(self, expr: ast.Expr):
        """A bare statement: a layer applies to the previous value; a tensor becomes it."""
        if isinstance(expr, (ast.Compare, ast.BoolOp)):
            hint = "to bind a name, write name = value" if getattr(expr, "op", "") == "==" else None
            self.error(expr.span, "a comparison on its own does nothing", hint)
        value = self.eval(expr)
        if is_applicable(value):
            if self.current is None:
                self.error(
                    expr.span,
                    f"nothing to apply {self.what(value)} to",
                    "declare an input first: input x: float32[...]",
                )
            self.check(self.current, expr.span)
            return self.apply_to(value, self.as_inputs(self.current, expr.span), expr.span)
        if is_tensor(value) or (isinstance(value, tuple) and all(map(is_tensor, value))):
            return value
        if isinstance(value, (LayerClass, BlockDefRef, Spec)):
            return self.apply_to(value, [], expr.span)
        if isinstance(value, Symbol):
            self.error(expr.span, f"unknown name '{value.name}'", self.suggest_callable(value.name))
        self.error(expr.span, f"this statement does nothing with {self.what(value)}")

    def output(self, stmt: ast.OutputStmt, outputs) -> None:
        value = self.eval(stmt.value)
        if isinstance(stmt.value, ast.Name) and isinstance(value, (Layer, BlockInstance)):
            self.layer_as_tensor(stmt.value, value)
        if is_applicable(value):
            value = self.apply_to(value, self.as_inputs(self.current, stmt.span), stmt.value.span)
        if isinstance(value, Symbol):
            self.as_inputs(value, stmt.value.span)
        if not is_tensor(value):
            self.error(stmt.value.span, f"an output must be a tensor; got {self.what(value)}")
        name = stmt.name
        if name is None:
            name = stmt.value.id if isinstance(stmt.value, ast.Name) else "output"
            base, i = name, 1
            while name in outputs:
                name, i = f"{base}_{i}", i + 1
        elif name in outputs:
            self.error(stmt.name_span, f"output '{name}' is defined twice")
        outputs[name] = (value, stmt.name_span or stmt.span)
        if stmt.name is not None:
            self.bind(stmt.name, value, stmt.name_span)
        self.current = value

    def repeat(self, stmt: ast.Repeat, inputs, outputs, top) -> None:
        count = self.eval(stmt.count)
        if not is_int(count) or not 0 <= count <= MAX_REPEAT:
            self.error(
                stmt.count.span,
                f"repeat needs a count from 0 to {MAX_REPEAT:,}; got {describe(count)}",
            )
        outer = self.repeat_product
        if outer * count > MAX_REPEAT:  # before the first iteration, not after 10,000
            self.error(
                stmt.count.span,
                f"this repeat runs {outer * count:,} times inside the repeats around it "
                f"({outer:,} x {count:,}); the limit is {MAX_REPEAT:,}",
                "nested repeats multiply: make the counts smaller",
            )
        self.repeat_product = outer * max(count, 1)
        try:
            for _ in range(count):
                self.spend_expansion(stmt.span)
                errors = len(self.sink.errors)
                self.run_body(stmt.body, inputs, outputs, top)
                if len(self.sink.errors) != errors:
                    raise Fail  # one report, not one per repetition
        finally:
            self.repeat_product = outer

    def spend_expansion(self, span: Span) -> None:
        """Counts a block instance or a repeat iteration against MAX_EXPANSIONS."""
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            self.sink.error(
                span,
                f"the model expands to more than {MAX_EXPANSIONS:,} block instances and "
                "repeat iterations",
                "blocks that call other blocks several times multiply: simplify the nesting",
            )
            raise OverBudget

    def check_constant(self, value, span: Span) -> None:
        if is_tensor(value) or isinstance(value, (Layer, BlockInstance)):
            self.error(span, "a const must be a number, string, boolean or list")

    # ------------------------------------------------------------ layers

    def unique_name(self, base: str) -> str:
        n = self.name_counts.get(base, 0)
        name = base if n == 0 else f"{base}_{n}"
        while name in self.used_names:
            n += 1
            name = f"{base}_{n}"
        self.name_counts[base] = n + 1
        self.used_names.add(name)
        return name

    def new_layer(self, cls, args, kwargs, call: ast.Call, arg_spans) -> Layer:
        for a, expr in zip(args, call.args):
            if is_tensor(a):
                self.error(
                    expr.span,
                    f"{cls.__name__}(...) takes its settings here, not a tensor",
                    f"create the layer, then call it: {cls.__name__}(...)(x)",
                )
        try:
            config = cls.bind(args, kwargs)
        except LayerError as err:
            known = {a.name for a in cls.signature}
            if err.arg and (err.arg not in known or "twice" in err.message):
                span = arg_spans.get(("name", err.arg))  # the keyword itself is wrong
            else:
                span = arg_spans.get(err.arg) if err.arg else None
            if span is None and err.arg:
                names = [a.name for a in cls.signature]
                if err.arg in names and names.index(err.arg) < len(call.args):
                    span = call.args[names.index(err.arg)].span
            self.error(span or call.span, err.message, err.hint)
        return self.make_layer(cls, config, call.span, arg_spans)

    def make_layer(self, cls, config: dict, span: Span, arg_spans) -> Layer:
        """The layer of a checked `config`, named as Keras names it (or by `name=`)."""
        if "data_format" in config and config["data_format"] is None:
            config["data_format"] = self.data_format
        name = config.get("name")
        if name:
            if name in self.used_names:
                self.error(arg_spans.get("name", span), f"the layer name '{name}' is taken")
            self.used_names.add(name)
        else:
            name = self.unique_name(snake_case(cls.__name__))
        layer = cls(config, name)
        layer.span = span
        return layer

    def apply(self, target, inputs: list[Value], span: Span, call=NO_CALL_ARGS, call_spans=None):
        """Calls a layer (adding a node) or expands a block; returns a tensor or a tuple.
        `call` holds the call's keyword tensors and flags, `call_spans` where each keyword's
        value is written."""
        for v in [*inputs, *call.tensors.values()]:
            self.check(v, span)
        if isinstance(target, BlockInstance):
            return self.expand_block(target, inputs, span)
        layer: Layer = target
        try:
            if call is NO_CALL_ARGS:
                types = layer([v.type for v in inputs])
            else:
                keyword_types = {k: v.type for k, v in call.tensors.items()}
                types = layer([v.type for v in inputs], CallArgs(keyword_types, call.options))
        except LayerError as err:
            where = getattr(layer, "span", None) if err.arg else span
            if any(err.arg == a.name for a in layer.call_signature):  # the call's argument
                where = (call_spans or {}).get(err.arg, span)
            shapes = ", ".join(format_shape(v.type.shape) for v in inputs)
            hint = err.hint
            if hint is None and "input" in err.message and inputs:
                hint = f"the input here is {shapes}"
            self.error(where or span, err.message, hint)
        if len(self.nodes) >= MAX_LAYERS:
            self.sink.error(
                span,
                f"the model expands to more than {MAX_LAYERS:,} layers",
                "repeats and blocks multiply the layers they hold: make the counts smaller",
            )
            raise OverBudget
        call_index = self.layer_calls.get(id(layer), 0)
        self.layer_calls[id(layer)] = call_index + 1
        base = layer.name if call_index == 0 else f"{layer.name}_call{call_index}"
        outs = [
            Value(t, base if len(types) == 1 else f"{base}:{i}", None, i)
            for i, t in enumerate(types)
        ]
        node = Node(
            layer,
            [*inputs, *call.tensors.values()],
            outs,
            span,
            tuple(i for _, i in self.block_stack),
            call_index,
            call,
        )
        for v in outs:
            v.producer = node
        self.nodes.append(node)
        return outs[0] if len(outs) == 1 else tuple(outs)
