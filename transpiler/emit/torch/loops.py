"""`repeat` as a loop over an nn.ModuleList.

A run of repeat iterations becomes

    for block in self.inverted_residuals:
        x = block(x)

when the iterations are chained (iteration k reads iteration k - 1's one result, and
otherwise the same tensors as the others) and write the same code: each is emitted into
a copy of the scope and the statements are compared. An iteration of one block call or
one layer call loops over those modules; an iteration of several statements becomes a
class of its own (named after what it holds, `DenseDropout`). Otherwise the run stays
straight-line code, which computes the same.
"""

from __future__ import annotations

import copy

from transpiler.emit.torch.code import Atom, Call, Comprehension, Seq, Stmt, render_block
from transpiler.emit.torch.names import plural
from transpiler.emit.torch.scope import CHAIN, ScopeEmitter
from transpiler.emit.torch.structure import Instance, Repeat, iteration
from transpiler.emit.torch.values import TValue
from transpiler.graph.model import Node
from transpiler.layers.base import snake_case


def fork(scope: ScopeEmitter) -> ScopeEmitter:
    """A copy of the scope to try statements in (the original is left alone)."""
    other = copy.copy(scope)
    other.stmts = []
    other.attrs = dict(scope.attrs)
    other.layer_attrs = dict(scope.layer_attrs)
    other.attr_names = copy.deepcopy(scope.attr_names)
    other.locals = copy.deepcopy(scope.locals)
    other.values = dict(scope.values)
    other.uses = dict(scope.uses)
    other.owner = dict(scope.owner)
    other.converted = dict(scope.converted)
    other.loop_vars = set(scope.loop_vars)
    return other


def _same_kind(items: list) -> bool:
    if all(isinstance(i, Instance) for i in items):
        return len({i.definition for i in items}) == 1
    if all(isinstance(i, Node) for i in items):
        layers = [i.layer for i in items]
        return (
            len({type(la).__name__ for la in layers}) == 1
            and len({id(la) for la in layers}) == len(layers)
            and all(la.family != "expression" for la in layers)
        )
    return False


def _nodes(item) -> list[Node]:
    return item.nodes if isinstance(item, Instance) else [item]


def _only_read_by(scope: ScopeEmitter, value, item) -> bool:
    """Whether `item` (a node or a scope) is the only reader of `value`."""
    gen = scope.gen
    if id(value) in gen.output_ids or any(value is r for r in scope.returned):
        return False
    inside = {id(n) for n in _nodes(item)}
    return all(id(n) in inside for n in gen.consumers.get(id(value), ()))


def _chained_inputs(scope: ScopeEmitter, items: list) -> list | None:
    """The value each iteration reads from the one before (the first: from before the
    loop), if the items form a chain over otherwise the same tensors; else None."""
    consumed = [scope.consumed(item) for item in items]
    produced = [scope.produced(item) for item in items]
    if any(len(p) != 1 for p in produced):
        return None
    position = None
    for k in range(1, len(items)):
        previous = produced[k - 1][0]
        if previous not in consumed[k] or not _only_read_by(scope, previous, items[k]):
            return None
        where = consumed[k].index(previous)
        if position not in (None, where):
            return None
        position = where
    if position is None:  # one iteration: its one input is the chain
        if len(consumed[0]) != 1:
            return None
        position = 0
    if position >= len(consumed[0]):
        return None
    rest = [[id(v) for i, v in enumerate(c) if i != position] for c in consumed]
    if any(r != rest[0] for r in rest):
        return None
    return [consumed[0][position]] + [p[0] for p in produced[:-1]]


def _iterations(scope: ScopeEmitter, run: Repeat) -> tuple[list, list[list]]:
    """The run's iterations as items (the one item, or a scope of several), and each
    iteration's own items."""
    real = [[scope.instance.items[i] for i in it] for it in run.iterations]
    if all(len(parts) == 1 for parts in real):
        return [parts[0] for parts in real], real
    gen = scope.gen
    items = []
    for parts in real:
        kinds = []
        for item in parts:
            kind = item.definition if isinstance(item, Instance) else item.layer.keras_class()
            if kind and kind != "Lambda" and kind not in kinds:
                kinds.append(kind)
        inside = {id(n) for p in parts for n in _nodes(p)}
        returns = [
            v
            for item in parts
            for v in scope.produced(item)
            if id(v) in gen.output_ids
            or any(id(n) not in inside for n in gen.consumers.get(id(v), ()))
        ]
        doc = "One iteration of a repeat: the statements it repeats."
        items.append(iteration(parts, "".join(kinds[:3]) or "Step", returns, doc))
    return items, real


def emit_repeat(scope: ScopeEmitter, run: Repeat) -> bool:
    """Writes the run as a loop if it can be one; returns whether it did."""
    items, real = _iterations(scope, run)
    if not _same_kind(items):
        return False
    chain = _chained_inputs(scope, items)
    if chain is None or scope.values[id(chain[0])].mask is not None:
        return False
    # the layout the chain settles in: how the first iteration returns its result
    gen = scope.gen
    saved = dict(gen.shared_ctors), dict(gen.call_layouts)
    probe = fork(scope)
    probe.emit_item(items[0])
    gen.shared_ctors, gen.call_layouts = saved  # what the probe saw does not count
    result = probe.values.get(id(scope.produced(items[0])[0]))
    if result is None:
        return False
    base = fork(scope)
    start = base.stored_as(base.values[id(chain[0])], result.perm)
    var = start.name
    if not (var in CHAIN and base.dying(var)):
        var = base.free_chain() or base.locals.fresh("x")
        base.stmts.append(Stmt(f"{base.claim(var, None)} = ", Atom(start.name)))
    hint = "block" if isinstance(items[0], Instance) else snake_case(items[0].layer.keras_class())
    # a loop variable is free again after its loop: every loop over blocks uses `block`
    loop_var = hint if hint in scope.loop_vars else base.locals.fresh(hint)
    bodies, captured = [], []
    for item, value in zip(items, chain):
        trial = fork(base)
        trial.values[id(value)] = TValue(var, value.type, result.perm)
        trial.owner[var] = id(value)
        trial.uses[id(value)] = 1
        trial.force_target, trial.loop_var, trial.loop_capture = var, loop_var, []
        trial.emit_item(item)
        out = trial.values.get(id(scope.produced(item)[0]))
        if out is None or (out.name, out.perm, out.mask) != (var, result.perm, None):
            return False
        if len(trial.loop_capture) != 1:
            return False
        bodies.append(trial.stmts)
        captured.append(trial.loop_capture[0])
    if any(render_block(b, 0) != render_block(bodies[0], 0) for b in bodies):
        return False
    _commit(scope, base, items, real, bodies[0], captured, (var, loop_var, result))
    return True


def _commit(scope, base, items, real, body, captured, loop) -> None:
    """Writes the loop into the scope for real."""
    var, loop_var, result = loop
    scope.stmts += base.stmts
    scope.locals = base.locals
    scope.owner = base.owner
    scope.values = base.values
    scope.converted = base.converted
    first = items[0]
    hint = snake_case(first.definition or "block") if isinstance(first, Instance) else None
    hint = plural(hint or snake_case(first.layer.keras_class()))
    ctors = [c for c, _ in captured]
    if all(c.flat() == ctors[0].flat() for c in ctors):
        each = Comprehension("", "", ctors[0], f"for _ in range({len(ctors)})")
        ctor = Call(Atom("nn.ModuleList"), [each])
    else:
        ctor = Call(Atom("nn.ModuleList"), [Seq("[", "]", ctors)])
    weights = [w.under(str(k)) for k, (_, ws) in enumerate(captured) for w in ws]
    name = scope.add_attr(hint, ctor, weights, "nn.ModuleList")
    for k, item in enumerate(items):
        if isinstance(item, Node):
            scope.layer_attrs[id(item.layer)] = f"{name}[{k}]"
    for parts in real:  # the scope counted its uses per item of its own
        for part in parts:
            scope.consume(scope.consumed(part))
    scope.stmts.append(Stmt(header=f"for {loop_var} in self.{name}:", body=body))
    scope.loop_vars.add(loop_var)
    last = scope.produced(items[-1])[0]
    scope.define(last, TValue(var, last.type, result.perm))
