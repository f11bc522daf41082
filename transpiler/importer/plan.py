"""The statements of a model's body, planned from the Keras graph: which calls chain into
one pipeline, in which order the pipelines come, which tensors need a variable.

A *chain* is a run of calls where each one takes the single output of the one before,
which nobody else uses (`x |> Conv2D(...) |> BatchNormalization(...) |> ReLU()`): the
sequential statements of a linear model, the pipelines of a branching one. A chain
starts where a call takes a tensor that has a name (a model input, a tensor used twice,
several tensors) and ends where its result is used by more than one call, by a call that
takes several tensors, or is a model output. Chains come in dependency order, the ones
that make model outputs as late as possible (so a single output is the last value).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from transpiler.importer.errors import ImportFailure
from transpiler.importer.kgraph import Call, KModel, Ref

#: keyword arguments of a call that carry tensors ktrans takes as extra inputs, in order
TENSOR_KWARGS = {
    "MultiHeadAttention": ("query", "value", "key"),
    "LSTM": ("initial_state",),
    "GRU": ("initial_state",),
    "SimpleRNN": ("initial_state",),
    "Bidirectional": ("initial_state",),
}
#: keyword arguments of a call that may be given as None or False (nothing changes)
NEUTRAL_KWARGS = ("mask", "training", "return_attention_scores", "use_causal_mask")


@dataclass
class Chain:
    calls: list[Call]
    outputs: int  # how many tensors the last call gives

    @property
    def first(self) -> Call:
        return self.calls[0]

    @property
    def last(self) -> Call:
        return self.calls[-1]

    def results(self) -> list[Ref]:
        return [Ref(self.last.layer.name, self.last.node, i) for i in range(self.outputs)]


@dataclass
class Plan:
    chains: list[Chain]
    consumers: dict[Ref, list[Call]] = field(default_factory=dict)
    output_refs: set[Ref] = field(default_factory=set)


def call_inputs(call: Call) -> list[Ref]:
    """The tensors a call takes, in the order ktrans takes them: positional arguments
    (a list of tensors for merges), then tensor keyword arguments (initial states, an
    attention's value and key)."""
    cls = call.layer.class_name
    allowed = TENSOR_KWARGS.get(cls, ())
    refs = _flat(call.args)
    for key, value in call.kwargs.items():
        tensors = _flat(value)
        if tensors and key not in allowed:
            raise ImportFailure(
                f"the call passes tensors as {key}=, which .kdl cannot express",
                "pass them as inputs of the layer in Keras",
                key="inbound_nodes",
            )
        if not tensors and value not in (None, False, [], {}) and key not in NEUTRAL_KWARGS:
            raise ImportFailure(
                f"the call passes {key}={str(value)[:40]}, which .kdl cannot express",
                key="inbound_nodes",
            )
    for key in allowed:
        refs += _flat(call.kwargs.get(key))
    return refs


def _flat(value) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, list):
        return [r for v in value for r in _flat(v)]
    return []


def plan(model: KModel, outputs_of: dict[int, int]) -> Plan:
    """`outputs_of[id(call)]`: how many tensors each call gives."""
    calls = [c for layer in model.layers for c in layer.calls]
    producer = {(c.layer.name, c.node): c for c in calls}
    inputs = {r.layer for r in model.input_refs}
    consumers: dict[Ref, list[Call]] = {}
    ins: dict[int, list[Ref]] = {}
    for c in calls:
        try:
            ins[id(c)] = call_inputs(c) if not c.layer.is_op else _flat(c.args)
        except ImportFailure as e:
            raise e.at_layer(c.layer.name, c.layer.class_name) from None
        for r in ins[id(c)]:
            if r.layer not in inputs and (r.layer, r.node) not in producer:
                raise ImportFailure(
                    f"the call takes a tensor of '{r.layer}', which the model does not have",
                    key="inbound_nodes",
                ).at_layer(c.layer.name, c.layer.class_name)
            consumers.setdefault(r, [])
            if c not in consumers[r]:
                consumers[r].append(c)
    output_refs = {r for _, r in model.outputs}

    def continues(call: Call, nxt: Call) -> bool:
        """nxt takes call's single output, and only it, as a pipeline step."""
        if outputs_of[id(call)] != 1 or nxt.layer.is_op:
            return False
        out = Ref(call.layer.name, call.node, 0)
        return (
            out not in output_refs
            and consumers.get(out) == [nxt]
            and ins[id(nxt)] == [out]
            and nxt.args == [out]
        )

    chains: list[Chain] = []
    chain_of: dict[int, int] = {}
    placed: set[int] = set()
    for c in _topological(calls, ins, producer):
        if id(c) in placed:
            continue
        members = [c]
        placed.add(id(c))
        while True:
            out = Ref(members[-1].layer.name, members[-1].node, 0)
            nxt = consumers.get(out, [])
            if len(nxt) == 1 and id(nxt[0]) not in placed and continues(members[-1], nxt[0]):
                members.append(nxt[0])
                placed.add(id(nxt[0]))
            else:
                break
        for m in members:
            chain_of[id(m)] = len(chains)
        chains.append(Chain(members, outputs_of[id(members[-1])]))
    rank = {ref: i for i, (_, ref) in enumerate(model.outputs)}
    order = _chain_order(chains, chain_of, ins, producer, rank)
    return Plan([chains[i] for i in order], consumers, output_refs)


def _topological(calls: list[Call], ins, producer) -> list[Call]:
    """Kahn's algorithm, in the config's order where there is a choice."""
    deps = {
        id(c): {producer[(r.layer, r.node)] for r in ins[id(c)] if (r.layer, r.node) in producer}
        for c in calls
    }
    users: dict[int, list[Call]] = {}
    for c in calls:
        for d in deps[id(c)]:
            users.setdefault(id(d), []).append(c)
    waiting = {id(c): len(deps[id(c)]) for c in calls}
    ready = [(c.layer.position, c.node, i, c) for i, c in enumerate(calls) if not waiting[id(c)]]
    heapq.heapify(ready)
    index = {id(c): i for i, c in enumerate(calls)}
    out = []
    while ready:
        *_, c = heapq.heappop(ready)
        out.append(c)
        for u in users.get(id(c), []):
            waiting[id(u)] -= 1
            if not waiting[id(u)]:
                heapq.heappush(ready, (u.layer.position, u.node, index[id(u)], u))
    if len(out) != len(calls):
        raise ImportFailure("the model's layers call each other in a cycle")
    return out


def _chain_order(chains, chain_of, ins, producer, rank: dict[Ref, int]) -> list[int]:
    """Chains in dependency order; those making outputs as late as they can come, in the
    model's order of outputs."""
    deps: dict[int, set[int]] = {i: set() for i in range(len(chains))}
    for i, chain in enumerate(chains):
        for c in chain.calls:
            for r in ins[id(c)]:
                p = producer.get((r.layer, r.node))
                if p is not None and chain_of[id(p)] != i:
                    deps[i].add(chain_of[id(p)])
    users: dict[int, list[int]] = {}
    for i, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(i)
    waiting = {i: len(ds) for i, ds in deps.items()}

    def key(i: int):
        outputs = [rank[r] for r in chains[i].results() if r in rank]
        return (bool(outputs), min(outputs, default=0), i)

    ready = [key(i) for i in range(len(chains)) if not waiting[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        *_, i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, key(u))
    return order
