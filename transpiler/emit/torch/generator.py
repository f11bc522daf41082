"""Graph -> the classes of a PyTorch module: the model's, and one per block (variant).

The model class builds every module in its __init__, with the sizes the graph inferred;
a block's class receives its submodules as constructor arguments and holds the block's
wiring in its forward, so every call of a block shares one class. A block whose calls
differ in structure or in the layout of their tensors gets one class per variant
(`Inverted`, `Inverted2`), found by comparing the code each call produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.emit.torch.code import KW, Atom, BareTuple, Call, Expr, Stmt, render_block
from transpiler.emit.torch.helpers import library
from transpiler.emit.torch.loops import emit_repeat
from transpiler.emit.torch.scope import Attr, ScopeEmitter
from transpiler.emit.torch.structure import (
    Instance,
    declared_inputs,
    repeats,
    scope_tree,
    subtree_values,
)
from transpiler.emit.torch.values import TValue
from transpiler.graph.model import Graph, Value


@dataclass(eq=False)
class ClassRef(Expr):
    """A block class in a constructor call; named when the file is assembled."""

    definition: str
    text: str = ""

    def flat(self) -> str:
        return self.text


@dataclass
class Variant:
    ref: ClassRef
    definition: str
    init_params: list[tuple[str, str]]  # (attribute, annotation)
    forward_params: list[str]
    forward: list[Stmt]
    returns: str
    doc: str = ""


@dataclass
class BlockCall:
    """A block call as its caller sees it."""

    ctor: Expr
    weights: list  # LayerWeights
    inputs: list[TValue]  # the caller's values it is passed, in order
    consumed: list[Value]
    returned: list[Value]
    outs: list[tuple[tuple | None, bool]]  # per returned value: its storage, masked?


@dataclass
class Generated:
    root: ScopeEmitter
    results: list[TValue]
    variants: list[Variant] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)


class TorchGenerator:
    def __init__(self, graph: Graph, program=None) -> None:
        self.graph = graph
        self.program = program
        self.helpers: set[str] = set()
        self.global_names = frozenset(library())
        self.consumers = graph.consumers()
        self.output_ids = {id(v) for v in graph.outputs.values()}
        self.variants: dict[tuple, Variant] = {}
        self.tree = scope_tree(graph)
        self._node_ids: dict[int, set[int]] = {}
        # layers called from more than one scope (a layer handed to blocks): built once,
        # by the model, and handed to each block that calls it
        scopes: dict[int, set] = {}
        self.calls: dict[int, int] = {}
        for node in graph.nodes:
            scopes.setdefault(id(node.layer), set()).add(node.scope)
            self.calls[id(node.layer)] = self.calls.get(id(node.layer), 0) + 1
        self.cross_scope = {key for key, s in scopes.items() if len(s) > 1}
        self.root: ScopeEmitter | None = None
        self.hoisted: dict[int, str] = {}
        #: per layer: the storage order of its first call's inputs, and its module
        self.call_layouts: dict[int, list] = {}
        self.shared_ctors: dict[int, str] = {}

    def hoist(self, layer, ctor: Expr, weights) -> str:
        """The model's attribute for a layer called from several scopes (created on the
        layer's first call, ahead of the model's other attributes)."""
        if id(layer) not in self.hoisted:
            root = self.root
            name = root.attr_names.fresh(layer.name)
            root.attrs = {name: Attr(name, ctor, weights), **root.attrs}
            root.layer_attrs[id(layer)] = name
            self.hoisted[id(layer)] = name
        return self.hoisted[id(layer)]

    def called_again(self, layer) -> bool:
        return self.calls.get(id(layer), 0) > 1

    def use_helper(self, name: str) -> str:
        if name not in library():
            raise KeyError(f"templates/torch_layers defines no '{name}'")
        self.helpers.add(name)
        return name

    def all_readers_cast(self, value_id: int) -> bool:
        """Whether every reader of the value takes it as a positional input of a layer
        that autocasts (so it may be cast to float32 once, for all of them)."""
        if value_id in self.output_ids:
            return False
        for node in self.consumers.get(value_id, ()):
            if not node.layer.autocast or any(
                id(v) == value_id for v in node.call.tensors.values()
            ):
                return False
        return True

    def used(self, v: Value) -> bool:
        return id(v) in self.consumers or id(v) in self.output_ids

    def node_ids(self, inst: Instance) -> set[int]:
        if id(inst) not in self._node_ids:
            self._node_ids[id(inst)] = {id(n) for n in inst.nodes}
        return self._node_ids[id(inst)]

    def returned_by(self, inst: Instance) -> list[Value]:
        """The tensors a block call hands back that its caller uses."""
        if inst.returns is not None:
            return inst.returns
        _, produced = subtree_values(inst)
        inside = self.node_ids(inst)
        out: dict[int, Value] = {}
        for v in self.graph.block_outputs.get(inst.name, ()):
            if id(v) not in produced or id(v) in out:
                continue
            outside = any(id(n) not in inside for n in self.consumers.get(id(v), ()))
            if outside or id(v) in self.output_ids:
                out[id(v)] = v
        return list(out.values())

    # ------------------------------------------------------------ scopes

    def run(self, scope: ScopeEmitter, inst: Instance, returned: list[Value]) -> None:
        scope.plan(inst.items, returned)
        runs = {r.iterations[0][0]: r for r in repeats(self.program, self.graph, inst)}
        i = 0
        while i < len(inst.items):
            run = runs.get(i)
            if run is not None and emit_repeat(scope, run):
                i = run.iterations[-1][-1] + 1
                continue
            scope.emit_item(inst.items[i])
            i += 1

    def generate(self) -> Generated:
        root = ScopeEmitter(self, self.tree, root=True)
        self.root = root
        for v in self.graph.inputs:
            root.bind_input(v, v.name)
        returned = list({id(v): v for v in self.graph.outputs.values()}.values())
        self.run(root, self.tree, returned)
        results = root.results()
        return Generated(root, results, list(self.variants.values()), self.helpers)

    def emit_block(self, inst: Instance, caller: dict[int, TValue]) -> BlockCall:
        external, _ = subtree_values(inst)
        ext = {id(v) for v in external}
        args: dict[int, tuple[str, Value]] = {}
        passed = self.graph.block_inputs.get(inst.name, ())
        declared = declared_inputs(self.program, inst)
        if inst.returns is not None:  # a repeat's iteration: structural names
            passed, declared = external, ["x"] * len(external)
        for name, v in zip(declared, passed):
            if id(v) in ext and id(v) not in args:
                args[id(v)] = (name, v)
        for v in external:
            args.setdefault(id(v), (v.name.split(":")[0], v))
        scope = ScopeEmitter(self, inst, root=False)
        inputs = []
        for name, v in args.values():
            tv = caller[id(v)]
            scope.bind_input(v, name, tv.perm, tv.mask is not None)
            inputs.append(tv)
        returned = self.returned_by(inst)
        self.run(scope, inst, returned)
        results = scope.results()
        scope.stmts += block_return(scope.stmts, results)
        variant = self.variant(inst, scope, results)
        ctor = Call(variant.ref, [KW(a.name, a.ctor) for a in scope.attrs.values()])
        weights = [w.under(a.name) for a in scope.attrs.values() for w in a.weights]
        outs = [(tv.perm, tv.mask is not None) for tv in results]
        consumed = [v for _, v in args.values()]
        return BlockCall(ctor, weights, inputs, consumed, returned, outs)

    def variant(self, inst: Instance, scope: ScopeEmitter, results: list[TValue]) -> Variant:
        init = [(a.name, a.annotation) for a in scope.attrs.values()]
        returns = "torch.Tensor" if len(results) == 1 and not results[0].mask else "tuple"
        key = (
            inst.definition,
            tuple(init),
            tuple(scope.params),
            tuple(render_block(scope.stmts, 8)),
            returns,
        )
        if key not in self.variants:
            ref = ClassRef(inst.definition or "Block")
            self.variants[key] = Variant(
                ref, inst.definition or "", init, list(scope.params), scope.stmts, returns, inst.doc
            )
        return self.variants[key]


def block_return(stmts: list[Stmt], results: list[TValue]) -> list[Stmt]:
    """A block's return statement; `x = expr` then `return x` becomes `return expr`."""
    names = [tv.name for tv in results] + [tv.mask for tv in results if tv.mask]
    last = stmts[-1] if stmts else None
    if len(names) == 1 and last is not None and last.prefix == f"{names[0]} = ":
        stmts.pop()
        return [Stmt("return ", last.expr, last.comment)]
    return [Stmt("return ", BareTuple(items=[Atom(n) for n in names]))]
