"""Round trips through Keras for the importer tests: a .kdl model -> `codegen --target
keras` -> the Keras model, saved as .keras -> `ktrans import` -> the same graph.

`graph_signature` is what "the same graph" means: the inputs (names, types), every
layer (class, name, config with its nested layers), every call's inputs (by the layer
and call that made them; expression nodes by what they compute), and the outputs in
order (by name too when there are several: Keras names a single output after its layer).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

_counter = itertools.count()


def load_text(text: str, name: str = "model.kdl"):
    from transpiler.graph import load

    program, graphs = load(name, text=text)
    return program, next(iter(graphs.values()))


def keras_module(graph, program, tmp_path: Path):
    """The module `codegen --target keras` writes for `graph`, imported."""
    from transpiler.emit.code.keras import generate_keras

    path = tmp_path / f"generated_{next(_counter)}.py"
    path.write_text(generate_keras(graph, program, "model.kdl"))
    spec = importlib.util.spec_from_file_location(f"ktrans_rt_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize(model, seed: int = 0) -> None:
    """Non-trivial weights (BN statistics included) that keep activations moderate."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        value = np.asarray(w.numpy())
        if not np.issubdtype(value.dtype, np.floating):
            continue
        if "variance" in w.path:
            new = rng.uniform(0.5, 1.5, size=shape)
        elif "gamma" in w.path:
            new = rng.uniform(0.8, 1.2, size=shape)
        elif value.ndim <= 1:
            new = rng.normal(0, 0.1, size=shape)
        else:
            new = value * rng.uniform(0.8, 1.2, size=shape)
        w.assign(new.astype(np.float32))


def save_generated(graph, program, tmp_path: Path, *, compile_it: bool = True, seed: int = 0):
    """Builds the generated Keras model (compiled if the module can), randomizes its
    weights and saves it as .keras; returns (the Keras model, the path)."""
    module = keras_module(graph, program, tmp_path)
    model = module.build_model()
    if compile_it and hasattr(module, "compile_model"):
        module.compile_model(model)
    randomize(model, seed)
    path = tmp_path / f"{graph.name}_{next(_counter)}.keras"
    model.save(str(path))
    return model, path


def value_key(v):
    p = v.producer
    if p is None:
        return ("input", v.name)
    if p.layer.family == "expression":
        return ("expr", p.layer.describe_config(), tuple(map(value_key, p.inputs)), v.index)
    return (p.layer.name, p.call_index, v.index)


def _config(layer) -> tuple:
    from transpiler.emit.code.keras_args import normalized
    from transpiler.layers.base import Layer

    out = []
    for a in layer.signature:
        value = layer.config.get(a.name)
        if isinstance(value, Layer):
            value = (value.keras_class(), _config(value))
        out.append((a.name, normalized(value)))
    return (layer.keras_class(), layer.trainable, tuple(out))


def graph_signature(graph) -> dict:
    nodes = {}
    for node in graph.nodes:
        if node.layer.family == "expression":
            continue
        key = (node.layer.name, node.call_index)
        nodes[key] = (_config(node.layer), tuple(map(value_key, node.inputs)))
    outputs = list(graph.outputs.items())
    return {
        "inputs": [(v.name, v.type) for v in graph.inputs],
        "nodes": nodes,
        "outputs": [value_key(v) for _, v in outputs],
        "output names": [n for n, _ in outputs] if len(outputs) > 1 else None,
    }


def assert_same_graph(ours, theirs) -> None:
    a, b = graph_signature(ours), graph_signature(theirs)
    assert a["inputs"] == b["inputs"]
    assert a["nodes"].keys() == b["nodes"].keys()
    for key in a["nodes"]:
        assert a["nodes"][key] == b["nodes"][key], key
    assert a["outputs"] == b["outputs"]
    assert a["output names"] == b["output names"]
    assert (ours.param_count, ours.trainable_count) == (theirs.param_count, theirs.trainable_count)
