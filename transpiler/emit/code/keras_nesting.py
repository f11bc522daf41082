"""Which block instances the Keras code writes as nested Keras models, and the graph seen
one model at a time (`nested_view`).

The rule: an instance of a block that has no parameters and is used once in the model
becomes a nested model named after the instance (`block Stem()` -> a model named `stem`),
called where the block is used. That is what `ktrans import` writes for a model nested in
a Keras model (ConvNeXt's Sequential stages), so a written-back model keeps its nesting.
A block with parameters, or one used several times, is what Keras code writes as a Python
function (keras.applications' `_inverted_res_block(x, ...)`): its layers stay in the
enclosing model, as before. The .kdl text does not say where a block came from; a
parameterless block used once is a fixed, named sub-network, which Keras expresses as a
nested model, so a hand-written one is nested too.

A nested model is a `keras.Sequential` when its body is a chain (one input, one output,
each layer applied once to the previous result, no keras.ops), else a functional
`keras.Model`. An instance that cannot be a model of its own (an input passed twice, an
output that is one of its inputs, a layer shared with the enclosing model) stays flat.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from transpiler.graph.model import Graph, Node, Value
from transpiler.layers.base import NO_CALL_ARGS


@dataclass(eq=False)
class SubModel:
    """A block instance written as a nested Keras model: the `layer` of its call's node
    in the enclosing level's view."""

    name: str  # the instance's name: the Keras model's
    block: str  # the block's name
    graph: Graph  # its own level: inputs are the call's tensors, nodes its body
    input_names: tuple[str, ...]  # its `input` statements: the Keras inputs' names
    sequential: bool
    family: str = "model"
    weights: tuple = ()  # its layers hold them (in `graph`)
    trainable: bool = True

    def keras_class(self) -> str:
        return "Sequential" if self.sequential else "Functional"

    @property
    def param_count(self) -> int:
        return self.graph.param_count

    @property
    def trainable_count(self) -> int:
        return self.graph.trainable_count


def _candidates(graph: Graph) -> set[str]:
    uses = Counter(graph.block_types.values())
    return {
        inst
        for inst, params in graph.block_params.items()
        if not params and uses[graph.block_types.get(inst)] == 1
    }


def _members(graph: Graph, inst: str) -> list[Node]:
    return [n for n in graph.nodes if inst in n.scope]


def _can_nest(graph: Graph, inst: str) -> bool:
    nodes = _members(graph, inst)
    inputs = graph.block_inputs.get(inst, ())
    outputs = graph.block_outputs.get(inst, ())
    names = graph.block_input_names.get(inst, ())
    if not nodes or not inputs or len(names) != len(inputs) or not outputs:
        return False
    positions = [i for i, n in enumerate(graph.nodes) if inst in n.scope]
    if positions[-1] - positions[0] + 1 != len(positions):
        return False  # not one stretch of the graph
    if len({id(v) for v in inputs}) != len(inputs) or len({id(v) for v in outputs}) != len(outputs):
        return False
    made = {id(v) for n in nodes for v in n.outputs}
    if any(id(v) not in made for v in outputs):
        return False
    known = made | {id(v) for v in inputs}
    if any(id(v) not in known for n in nodes for v in n.inputs):
        return False
    inside = {id(n) for n in nodes}
    layers_inside = {id(n.layer) for n in nodes}
    leaving = {id(v) for v in outputs}
    for node in graph.nodes:
        if id(node) in inside:
            continue
        if id(node.layer) in layers_inside:
            return False
        if any(id(v) in made and id(v) not in leaving for v in node.inputs):
            return False
    return all(id(v) not in made or id(v) in leaving for v in graph.outputs.values())


def nested_instances(graph: Graph) -> set[str]:
    """The block instances of `graph` written as nested Keras models."""
    return {inst for inst in _candidates(graph) if _can_nest(graph, inst)}


def _is_chain(nodes: list[Node], inputs: tuple[Value, ...], outputs: tuple[Value, ...]) -> bool:
    if len(inputs) != 1 or len(outputs) != 1:
        return False
    previous = inputs[0]
    seen: set[int] = set()
    for node in nodes:
        layer = node.layer
        if layer.family == "expression" or id(layer) in seen:
            return False
        seen.add(id(layer))
        if len(node.inputs) != 1 or node.inputs[0] is not previous or len(node.outputs) != 1:
            return False
        if node.call is not NO_CALL_ARGS:
            return False
        previous = node.outputs[0]
    return previous is outputs[0]


def _level(graph: Graph, nodes: list[Node], nested: set[str]) -> list[Node]:
    """The nodes of one model: `nodes` (their scopes start inside it) with each outermost
    nested instance replaced by one node calling its SubModel."""
    out: list[Node] = []
    i = 0
    while i < len(nodes):
        node = nodes[i]
        chain = [s for s in node.scope if s in nested]
        if not chain:
            out.append(node)
            i += 1
            continue
        inst = chain[0]
        j = i
        while j < len(nodes) and inst in nodes[j].scope:
            j += 1
        inner_depth = node.scope.index(inst) + 1
        body = [replace(n, scope=n.scope[inner_depth:]) for n in nodes[i:j]]
        inner = _level(graph, body, nested)
        inputs = graph.block_inputs[inst]
        outputs = graph.block_outputs[inst]
        sub_graph = Graph(
            name=inst,
            span=graph.blocks.get(inst, graph.span),
            file=graph.file,
            data_format=graph.data_format,
            inputs=list(inputs),
            outputs={v.name: v for v in outputs},
            nodes=inner,
        )
        sub = SubModel(
            name=inst,
            block=graph.block_types[inst],
            graph=sub_graph,
            input_names=graph.block_input_names[inst],
            sequential=_is_chain(inner, inputs, outputs),
        )
        span = graph.blocks.get(inst, node.span)
        out.append(
            Node(sub, list(inputs), list(outputs), span, scope=node.scope[: inner_depth - 1])
        )
        i = j
    return out


def nested_view(graph: Graph) -> Graph:
    """`graph` as the Keras code builds it: each nested instance one node whose layer is
    its SubModel (the same graph when there is none). Nodes inside a nested model are
    copies whose scope starts inside it; the values are the graph's own."""
    nested = nested_instances(graph)
    if not nested:
        return graph
    return replace(graph, nodes=_level(graph, list(graph.nodes), nested))


def sub_models(view: Graph) -> list[SubModel]:
    """The view's nested models, each after those nested in it."""
    out: list[SubModel] = []
    for node in view.nodes:
        if isinstance(node.layer, SubModel):
            out += sub_models(node.layer.graph)
            out.append(node.layer)
    return out


def producers(graph: Graph) -> dict[int, Node]:
    """id(value) -> the node of `graph.nodes` that makes it (a view's, not `Value.producer`)."""
    return {id(v): node for node in graph.nodes for v in node.outputs}
