"""The body of `build_model()`: one statement per graph node, with variable names
planned from the graph, shared layers as variables and block comments; and the bodies
of the functions that build its nested models (keras_nesting), written the same way (a
Sequential as the list of its layers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transpiler.emit.code.keras_args import layer_expr
from transpiler.emit.code.keras_names import Namer, checked, comment_text, lit, pystr
from transpiler.emit.code.keras_nesting import SubModel
from transpiler.emit.code.keras_ops import expression_expr, keeps_name, op_names
from transpiler.emit.code.keras_render import (
    INDENT,
    KW,
    LINE,
    Atom,
    Call,
    Expr,
    Pair,
    Seq,
    call,
    render,
)
from transpiler.graph.model import Graph, Node
from transpiler.layers.base import Layer, snake_case


def _call_inputs(node: Node, var: dict[int, str]) -> list[Expr]:
    """How Keras takes this call's arguments: a list for merges, `initial_state=` for
    recurrent layers, else positionally; then the keyword tensors and flags of the call
    (`attention_mask=m`, `use_causal_mask=True`), as the .kdl call wrote them."""
    from transpiler.layers.recurrent import Recurrent
    from transpiler.layers.recurrent_wrappers import Bidirectional

    layer = node.layer
    names = [var[id(v)] for v in node.positional]
    if layer.family == "merge":
        args: list[Expr] = [Seq("[", "]", [Atom(n) for n in names])]
    elif isinstance(layer, (Recurrent, Bidirectional)) and len(names) > 1:
        states = Seq("[", "]", [Atom(n) for n in names[1:]])
        args = [Atom(names[0]), KW("initial_state", states)]
    else:
        args = [Atom(n) for n in names]
    args += [KW(checked(k), Atom(var[id(v)])) for k, v in node.call.tensors.items()]
    args += [KW(checked(k), Atom(lit(v))) for k, v in node.call.options.items()]
    return args


@dataclass
class Line:
    """A statement of build_model's body."""

    targets: list[str] | None = None  # None: a comment or a blank line
    expr: Expr | None = None
    text: str = ""


def _block_names(program) -> dict[str, str]:
    """snake_case(block name) -> block name, to name a block instance's definition."""
    if program is None:
        return {}
    return {snake_case(name): name for name in getattr(program, "blocks", {})}


def _scope_comments(old: tuple[str, ...], new: tuple[str, ...], blocks: dict[str, str]):
    """`# block residual_block_1 (ResidualBlock)` for each block entered, nested ones
    indented inside the comment."""
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    lines = []
    for depth in range(same, len(new)):
        instance = new[depth]
        base = re.sub(r"_\d+$", "", instance)
        definition = blocks.get(instance) or blocks.get(base)
        text = f"block {instance} ({definition})" if definition else f"block {instance}"
        lines.append("# " + "  " * min(depth, 8) + comment_text(text))
    return lines


class KerasWriter:
    """Writes one model: `graph` (a level of keras_nesting.nested_view), or the nested
    model `sub`; `functions` names the function that builds each nested model."""

    def __init__(
        self,
        graph: Graph,
        program=None,
        *,
        sub: SubModel | None = None,
        functions: dict[int, str] | None = None,
    ) -> None:
        self.graph = graph
        self.sub = sub
        self.functions = functions or {}
        self.blocks = _block_names(program)
        self.namer = Namer()
        self.namer.used |= set(self.functions.values())
        self.var: dict[int, str] = {}  # id(Value) -> variable
        self.layer_var: dict[int, str] = {}  # id(Layer) -> variable of a shared layer
        self.lines: list[Line] = []
        self.defined: set[int] = set()  # shared layers already created
        self.uses_ops = False
        self.op_names: set[str] = set()  # Keras's names of the operations written

    # ------------------------------------------------------------ names

    def _consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, node in enumerate(self.graph.nodes):
            for v in node.inputs:
                out.setdefault(id(v), [])
                if not out[id(v)] or out[id(v)][-1] != i:
                    out[id(v)].append(i)
        return out

    def input_names(self) -> list[str]:
        """The Keras inputs' names: the model's, or the nested model's `input`s."""
        if self.sub is not None:
            return list(self.sub.input_names)
        return [v.name for v in self.graph.inputs]

    def _plan_names(self) -> None:
        graph = self.graph
        for v, name in zip(graph.inputs, self.input_names()):
            self.var[id(v)] = self.namer.fresh(name)
        output_of: dict[int, str] = {}
        for name, v in graph.outputs.items():
            output_of.setdefault(id(v), name)
        consumers = self._consumers()
        chain = None
        calls: dict[int, int] = {}
        for node in graph.nodes:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
        for i, node in enumerate(graph.nodes):
            if calls[id(node.layer)] > 1 and id(node.layer) not in self.layer_var:
                self.layer_var[id(node.layer)] = self.namer.fresh(f"{node.layer.name}_layer")
            hints = output_hints(node)
            for j, v in enumerate(node.outputs):
                if len(node.outputs) > 1 and id(v) not in output_of and id(v) not in consumers:
                    self.var[id(v)] = "_"  # an output nothing uses (the encoder's sequence)
                    continue
                if id(v) in output_of:
                    hint = output_of[id(v)]
                elif len(node.outputs) == 1 and consumers.get(id(v)) == [i + 1]:
                    if chain is None:
                        chain = self.namer.fresh("x")
                    self.var[id(v)] = chain
                    continue
                else:
                    hint = hints[j]
                self.var[id(v)] = self.namer.fresh(hint)

    # ------------------------------------------------------------ statements

    def body(self) -> list[str]:
        if self.sub is not None and self.sub.sequential:
            return self.sequential_body()
        self._plan_names()
        graph = self.graph
        for v, name in zip(graph.inputs, self.input_names()):
            self.lines.append(Line([self.var[id(v)]], _input_expr(v, name)))
        at = len(self.lines)  # where reserve_op_names goes, once the ops are known
        scope: tuple[str, ...] = ()
        for node in graph.nodes:
            if node.scope != scope:
                comments = _scope_comments(scope, node.scope, self.blocks)
                if comments or not node.scope:
                    self.lines.append(Line())
                self.lines += [Line(text=c) for c in comments]
                scope = node.scope
            self.node(node)
        self.lines[at:at] = self.reserve_op_names()
        self.lines.append(Line())
        self.lines.append(Line(["model"], self.model_expr()))
        self.lines.append(Line(text="return model"))
        out: list[str] = []
        for line in self.lines:
            if line.expr is None:
                if line.text:
                    out.append(" " * INDENT + line.text)
                elif out and out[-1]:
                    out.append("")
                continue
            if line.targets == ["for"]:  # the loop of reserve_op_names
                out += render(line.expr, INDENT, "for prefix, last in ", ":")
                out.append(" " * 2 * INDENT + "while keras.backend.get_uid(prefix) <= last:")
                out.append(" " * 3 * INDENT + "pass")
                continue
            out += render(line.expr, INDENT, f"{', '.join(line.targets)} = ")
        return out

    def reserve_op_names(self) -> list[Line]:
        """keras.ops calls get automatic names ("add", "add_1", ...) from global counters,
        and a model's operation names must be unique: where a layer's explicit name has
        that form, start the counter after it."""
        last: dict[str, int] = {}
        names = [n.layer.name for n in self.graph.nodes if n.layer.family != "expression"]
        names += [
            n.layer.name
            for n in self.graph.nodes
            if n.layer.family == "expression" and keeps_name(n.layer)
        ]
        for name in names:
            m = re.fullmatch(r"(.+?)(?:_(\d+))?", name)
            if m and m.group(1) in self.op_names:
                number = int(m.group(2) or 0)
                last[m.group(1)] = max(last.get(m.group(1), -1), number)
        if not last:
            return []
        pairs = [Seq("(", ")", [Atom(pystr(p)), Atom(str(n))]) for p, n in sorted(last.items())]
        return [
            Line(),
            Line(text="# keras.ops calls are named automatically (add, add_1, ...), and names"),
            Line(text="# are unique in a model: number them after the layers named that way"),
            Line(["for"], Seq("(", ")", pairs)),
        ]

    def sequential_body(self) -> list[str]:
        """`return keras.Sequential([keras.Input(...), layers..., ], name=...)`."""
        sub = self.sub
        items: list[Expr] = [_input_expr(self.graph.inputs[0], sub.input_names[0])]
        for node in self.graph.nodes:
            layer = node.layer
            if isinstance(layer, SubModel):
                items.append(call(self.functions[id(layer)]))
                continue
            items.append(layer_expr(layer))
        expr = call("keras.Sequential", Seq("[", "]", items), name=Atom(pystr(sub.name)))
        return render(expr, INDENT, "return ")

    def node(self, node: Node) -> None:
        names = [self.var[id(v)] for v in node.inputs]
        targets = [self.var[id(v)] for v in node.outputs]
        layer = node.layer
        if isinstance(layer, SubModel):
            args = [Atom(n) for n in names]
            arg = args[0] if len(args) == 1 else Seq("[", "]", args)
            self.lines.append(Line(targets, Call(call(self.functions[id(layer)]), [arg])))
            return
        if layer.family == "expression":
            expr = expression_expr(node, names)
            self.uses_ops = self.uses_ops or "ops." in expr.flat()
            self.op_names |= op_names(layer, expr)
            self.lines.append(Line(targets, expr))
            return
        inputs = _call_inputs(node, self.var)
        if any("." in n for n in _layer_names(layer)) and id(layer) not in self.defined:
            self.lines.append(
                Line(text="# Keras's torch backend takes no '.' in layer names (TF and JAX do)")
            )
        shared = self.layer_var.get(id(layer))
        if shared is not None:
            if id(layer) not in self.defined:
                self.defined.add(id(layer))
                self.lines.append(Line([shared], layer_expr(layer)))
            expr: Expr = Call(Atom(shared), inputs)
        else:
            expr = Call(layer_expr(layer), inputs)
        width = len(" " * INDENT + ", ".join(targets) + " = ")
        if len(targets) > 1 and width > LINE // 2:
            # a long unpacking: one output per line
            whole = self.namer.fresh(f"{layer.name}_outputs")
            self.lines.append(Line([whole], expr))
            for i, t in enumerate(targets):
                self.lines.append(Line([t], Atom(f"{whole}[{i}]")))
            return
        self.lines.append(Line(targets, expr))

    def model_expr(self) -> Expr:
        graph = self.graph
        ins = [Atom(self.var[id(v)]) for v in graph.inputs]
        inputs = ins[0] if len(ins) == 1 else Seq("[", "]", ins)
        outs = list(graph.outputs.items())
        if len(outs) == 1:
            outputs: Expr = Atom(self.var[id(outs[0][1])])
        elif self.sub is not None:  # a nested model's outputs: a list, in `output` order
            outputs = Seq("[", "]", [Atom(self.var[id(v)]) for _, v in outs])
        else:
            outputs = Seq("{", "}", [Pair(pystr(n), Atom(self.var[id(v)])) for n, v in outs])
        return call("keras.Model", inputs=inputs, outputs=outputs, name=Atom(pystr(graph.name)))


def _layer_names(layer: Layer) -> list[str]:
    """The layer's name and those of the layers it wraps."""
    inner = [v for v in layer.config.values() if isinstance(v, Layer)]
    return [layer.name, *(n for v in inner for n in _layer_names(v))]


def _input_expr(v, name: str) -> Expr:
    kwargs = {"shape": Atom(lit(tuple(_dim(d) for d in v.type.shape[1:])))}
    if v.type.dtype != "float32":
        kwargs["dtype"] = Atom(pystr(v.type.dtype))
    kwargs["name"] = Atom(pystr(name))
    return call("keras.Input", **kwargs)


def output_hints(node: Node) -> list[str]:
    """Variable names for a node's outputs: the layer's, then its states'
    (`lstm`, `lstm_h`, `lstm_c`)."""
    from transpiler.layers.recurrent import Recurrent
    from transpiler.layers.recurrent_wrappers import Bidirectional

    layer = node.layer
    base = node.outputs[0].name.split(":")[0]
    n = len(node.outputs)
    names = [base] + [f"{base}_out{i}" for i in range(1, n)]
    if isinstance(layer, Recurrent) and n == 1 + len(layer.state_names):
        names = [base] + [f"{base}_{s}" for s in layer.state_names]
    elif isinstance(layer, Bidirectional):
        heads = [base] if layer.merge_mode else [f"{base}_fwd", f"{base}_bwd"]
        states = [f"{base}_fwd_{s}" for s in layer.forward_layer.state_names]
        states += [f"{base}_bwd_{s}" for s in layer.backward_layer.state_names]
        if len(heads) + (len(states) if layer.return_state else 0) == n:
            names = heads + (states if layer.return_state else [])
    return names


def _dim(d):
    return d if isinstance(d, int) and not isinstance(d, bool) else None
