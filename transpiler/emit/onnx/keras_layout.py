"""Where Keras keeps each weight of a model built like a ktrans graph: the order of
`model.layers` (keras_layer_order), the keys Keras gives the layers, each weight's path
below its layer's group (weight_paths), and the whole `.weights.h5` layout that
`model.save_weights` writes (keras3_layout). Reading (keras_h5) and writing
(keras_export_info) share it."""

from __future__ import annotations

from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.layers.base import Layer, snake_case

# ---------------------------------------------------------------- where Keras keeps each weight


def weight_paths(layer: Layer) -> list[str]:
    """Where each of `layer.weights` lives below the layer's group, in order."""
    from transpiler.layers.recurrent import Recurrent
    from transpiler.layers.recurrent_wrappers import Bidirectional, TimeDistributed

    weights = layer.weights or []
    if isinstance(layer, Bidirectional):
        return [f"forward_layer/{p}" for p in weight_paths(layer.forward_layer)] + [
            f"backward_layer/{p}" for p in weight_paths(layer.backward_layer)
        ]
    if isinstance(layer, TimeDistributed):
        return [f"layer/{p}" for p in weight_paths(layer.layer)]
    if isinstance(layer, Recurrent):
        return [f"cell/vars/{i}" for i in range(len(weights))]
    if layer.keras_class() == "MultiHeadAttention":
        groups = {
            "query": "query_dense",
            "key": "key_dense",
            "value": "value_dense",
            "attention_output": "output_dense",
            "gate": "_gate_dense",
        }
        counts: dict[str, int] = {}
        paths = []
        for w in weights:
            part = w.name.partition("/")[0]
            i = counts.get(part, 0)
            counts[part] = i + 1
            paths.append(f"{groups.get(part, part)}/vars/{i}")
        return paths
    return [f"vars/{i}" for i in range(len(weights))]


# ---------------------------------------------------------------- Keras's order of model.layers


def keras_layer_order(graph: Graph, output_names: list[str] | None = None) -> list[Layer]:
    """`model.layers` of the functional Keras model built like `graph` (our expressions are
    keras.ops calls there: nodes, but not layers). Reproduces keras/src/ops/function.py:
    a depth-first walk from each output numbers the operations (first visit) and lists
    the nodes inputs-first; a node's depth is the longest path to an output (a shared
    layer takes its deepest node's); layers sort by depth, deepest first, then by number.
    A value's producer is the node of `graph.nodes` that outputs it, so that a view whose
    nodes stand for nested models (keras_nesting) is walked as Keras walks that model.
    """
    made_by = {id(v): node for node in graph.nodes for v in node.outputs}
    names = output_names if output_names is not None else list(graph.outputs)
    index: dict[int, int] = {}
    finished: set[int] = set()
    post: list = []
    for name in names:
        top = made_by.get(id(graph.outputs[name]))
        if top is None or id(top) in finished:
            continue
        stack = [(top, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                index.setdefault(id(node.layer), len(index))
            if i < len(node.inputs):
                stack.append((node, i + 1))
                parent = made_by.get(id(node.inputs[i]))
                if parent is not None and id(parent) not in finished:
                    stack.append((parent, 0))
            else:
                finished.add(id(node))
                post.append(node)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    for node in reversed(post):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for v in node.inputs:
            if id(v) in made_by:
                pid = id(made_by[id(v)])
                node_depth[pid] = max(depth + 1, node_depth.get(pid, 0))
    order = sorted(layers, key=lambda k: (-layer_depth[k], index[k]))
    return [layers[k] for k in order]


def is_layer(layer: Layer) -> bool:
    return layer.family != "expression"


def layer_keys(order: list[Layer]) -> dict[int, str]:
    """id(layer) -> the key Keras gives it when `model.layers` is `order`."""
    counts: dict[str, int] = {}
    keys = {}
    for layer in order:
        if not is_layer(layer):
            continue
        base = snake_case(layer.keras_class())
        n = counts.get(base, 0)
        counts[base] = n + 1
        keys[id(layer)] = base if n == 0 else f"{base}_{n}"
    return keys


# ---------------------------------------------------------------- writing: the layout


def keras3_layout(graph: Graph) -> dict:
    """Where `model.save_weights` of the `codegen --target keras` model puts each weight:
    {"datasets": [[h5 path, "<layer>/<weight>"], ...], "names": {vars group: layer name}}
    (the inverse of reading). That model is functional with its outputs as a dict when
    there are several, which Keras flattens sorted by name: its `model.layers` order, so
    its keys, follow from the outputs in that order. A block written as a nested model
    (transpiler.emit.code.keras_nesting) is a layer whose own layers are below its group:
    `layers/sequential/layers/dense/vars/0`."""
    from transpiler.emit.code.keras_nesting import nested_view

    datasets: list[list[str]] = []
    names: dict[str, str] = {}
    view = nested_view(graph)
    outputs = sorted(view.outputs) if len(view.outputs) > 1 else list(view.outputs)
    _level_layout(view, outputs, "", graph.name, datasets, names)
    return {"datasets": datasets, "names": names}


def _level_layout(
    level: Graph, outputs: list[str], prefix: str, model: str, datasets: list, names: dict
) -> None:
    keys = layer_keys(keras_layer_order(level, outputs))
    for layer in level.layers:
        sub = getattr(layer, "graph", None)  # a nested model (keras_nesting.SubModel)
        if not (is_layer(layer) and (layer.weights or sub is not None)):
            continue
        if id(layer) not in keys:
            message = (
                f"layer '{layer.name}' of model '{model}' does not lead to an output, "
                "so Keras would not save its weights"
            )
            raise KdlErrors([KdlError(None, message, "remove the layer or use its result")])
        group = f"{prefix}layers/{keys[id(layer)]}"
        names[f"{group}/vars"] = layer.name
        if sub is not None:
            _level_layout(sub, list(sub.outputs), f"{group}/", model, datasets, names)
            continue
        for w, path in zip(layer.weights, weight_paths(layer)):
            datasets.append([f"{group}/{path}", f"{layer.name}/{w.name}"])
