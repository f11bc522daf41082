"""The checked model graph: every product of ktrans is a view of a `Graph`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.errors import Span
from transpiler.graph.types import TensorType
from transpiler.layers.base import NO_CALL_ARGS, CallArgs, Layer


@dataclass(eq=False)
class Value:
    """A tensor in the graph: a model input or one output of a node."""

    type: TensorType
    name: str  # unique in the graph: the input name, or "<layer>" / "<layer>:<i>"
    producer: Node | None = None
    index: int = 0

    def __repr__(self) -> str:
        return f"<Value {self.name} {self.type}>"


@dataclass(eq=False)
class Node:
    """One call of a layer (a shared layer has several nodes).

    `inputs` holds every tensor of the call: the positional ones first, in the order the
    layer's `call_signature` gives them (LSTM: the sequence, then the initial states;
    MultiHeadAttention: query, value, then key when given), then the keyword tensors of
    `call.tensors` in their order (attention_mask=, mask=). `call` also holds the call's
    flags (`use_causal_mask`); NO_CALL_ARGS when it has neither."""

    layer: Layer
    inputs: list[Value]
    outputs: list[Value]
    span: Span
    scope: tuple[str, ...] = ()  # enclosing block instances, outermost first
    call_index: int = 0  # 0 for the layer's first call, 1 for the second...
    call: CallArgs = NO_CALL_ARGS

    @property
    def positional(self) -> list[Value]:
        """The positional tensors: what the layer's build / output_types / lower take."""
        return self.inputs[: len(self.inputs) - len(self.call.tensors)]


@dataclass
class Graph:
    name: str
    span: Span
    file: str
    data_format: str
    inputs: list[Value]
    outputs: dict[str, Value]
    nodes: list[Node]  # topological (source) order
    trains: dict[str, object] = field(default_factory=dict)  # name -> training.TrainConfig
    blocks: dict[str, Span] = field(default_factory=dict)  # block instance -> call site
    block_types: dict[str, str] = field(default_factory=dict)  # block instance -> block name
    #: block instance -> the tensors its call passed (in `input` order) and those it
    #: returned (its `output`s in order, or its last value)
    block_inputs: dict[str, tuple[Value, ...]] = field(default_factory=dict)
    block_outputs: dict[str, tuple[Value, ...]] = field(default_factory=dict)
    #: block instance -> its block's parameter names, and the names of its `input`s
    block_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    block_input_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def layers(self) -> list[Layer]:
        """Distinct layers in order of first use (a shared layer once)."""
        seen: dict[int, Layer] = {}
        for node in self.nodes:
            seen.setdefault(id(node.layer), node.layer)
        return list(seen.values())

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    @property
    def trainable_count(self) -> int:
        return sum(layer.trainable_count for layer in self.layers)

    @property
    def non_trainable_count(self) -> int:
        return self.param_count - self.trainable_count

    def consumers(self) -> dict[int, list[Node]]:
        out: dict[int, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                out.setdefault(id(v), []).append(node)
        return out

    def is_sequential(self) -> bool:
        """One input, one output, and each node feeds only the next: Keras's Sequential."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        previous = self.inputs[0]
        for node in self.nodes:
            if len(node.inputs) != 1 or node.inputs[0] is not previous or len(node.outputs) != 1:
                return False
            if node.call_index or node.call is not NO_CALL_ARGS:
                return False
            previous = node.outputs[0]
        return previous is next(iter(self.outputs.values()))
