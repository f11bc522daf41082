"""The shape of the generated module: the graph's block instances as a tree of scopes
(the model, and each block call), each with its items in order, and the runs of items
that a `repeat` made.

The graph is already expanded; the nodes keep the block instances they belong to
(`Node.scope`), the graph keeps each instance's block, call site, input and output
tensors, and the source spans tell which items a `repeat` statement produced. A run of
repeat iterations becomes a loop over an nn.ModuleList where its iterations turn out to
be the same code (see scope.py); otherwise it stays straight-line code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.errors import Span
from transpiler.graph.model import Graph, Node, Value
from transpiler.parser import ast


@dataclass(eq=False)
class Instance:
    """A scope: the model itself (`name` None) or one block call."""

    name: str | None
    definition: str | None  # the block's name
    items: list = field(default_factory=list)  # Node | Instance, in graph order
    nodes: list[Node] = field(default_factory=list)  # every node of the subtree
    span: Span | None = None  # the call site
    #: for one iteration of a repeat whose body is several statements (written as a
    #: class of its own): the tensors it hands on, and what its class's docstring says
    returns: list[Value] | None = None
    doc: str = ""


def iteration(items: list, name: str, returns: list[Value], doc: str) -> Instance:
    """Several items of one repeat iteration as a scope of their own."""
    nodes = []
    for item in items:
        nodes += item.nodes if isinstance(item, Instance) else [item]
    return Instance(None, name, list(items), nodes, None, returns, doc)


@dataclass
class Repeat:
    """Items of one scope made by one `repeat` statement: `iterations[i]` is the list of
    items (indices into the scope's items) of iteration i."""

    iterations: list[list[int]]


def scope_tree(graph: Graph) -> Instance:
    root = Instance(None, None)
    by_name: dict[tuple[str, ...], Instance] = {(): root}
    for node in graph.nodes:
        parent = root
        for depth in range(len(node.scope)):
            key = node.scope[: depth + 1]
            child = by_name.get(key)
            if child is None:
                name = node.scope[depth]
                child = Instance(name, graph.block_types.get(name), span=graph.blocks.get(name))
                by_name[key] = child
                parent.items.append(child)
            parent.nodes.append(node)
            parent = child
        parent.nodes.append(node)
        parent.items.append(node)
    return root


def item_span(item) -> Span | None:
    return item.span


def subtree_values(instance: Instance) -> tuple[list[Value], set[int]]:
    """The values the subtree consumes from outside it (in order of first use) and the
    ids of the values it produces."""
    produced = {id(v) for n in instance.nodes for v in n.outputs}
    external: dict[int, Value] = {}
    for node in instance.nodes:
        for v in node.inputs:
            if id(v) not in produced:
                external.setdefault(id(v), v)
    return list(external.values()), produced


def body_of(program, graph: Graph, instance: Instance) -> list | None:
    """The statements that made the instance: its block's body, or the model's."""
    if program is None:
        return None
    if instance.definition is None:
        model = program.models.get(graph.name)
        return model.body if model is not None else None
    block = program.blocks.get(instance.definition)
    return block.body if block is not None else None


def _repeats(body) -> list[ast.Repeat]:
    """The outermost repeat statements of a body (also inside the branches of an if)."""
    out = []
    for stmt in body or []:
        if isinstance(stmt, ast.Repeat):
            out.append(stmt)
        elif isinstance(stmt, ast.If):
            out += _repeats(stmt.body) + _repeats(stmt.orelse)
    return out


def _inside(span: Span | None, outer: Span) -> bool:
    if span is None or span.file != outer.file or outer.end_line is None:
        return False
    start = (span.line, span.column)
    return (outer.line, outer.column) <= start < (outer.end_line, outer.end_column or 0)


def repeats(program, graph: Graph, instance: Instance) -> list[Repeat]:
    """The runs of the instance's items that each repeat statement of its body made,
    split into iterations (an iteration starts where the first item's source recurs)."""
    out = []
    for stmt in _repeats(body_of(program, graph, instance)):
        run = [i for i, item in enumerate(instance.items) if _inside(item_span(item), stmt.span)]
        if not run or run != list(range(run[0], run[0] + len(run))):
            continue
        first = item_span(instance.items[run[0]])
        iterations: list[list[int]] = []
        for i in run:
            if item_span(instance.items[i]) == first or not iterations:
                iterations.append([])
            iterations[-1].append(i)
        out.append(Repeat(iterations))
    return out


def declared_inputs(program, instance: Instance) -> list[str]:
    """The names of a block's `input` statements, in order."""
    block = program.blocks.get(instance.definition) if program is not None else None
    if block is None:
        return []
    return [s.name for s in block.body if isinstance(s, ast.InputStmt)]
