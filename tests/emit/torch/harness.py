"""The Keras oracle for `codegen --target torch`: the same model in Keras 3 and as the
generated torch.nn.Module, the same Keras-layout weights (loaded into the module through
its own load_keras_weights, which keras_weights() must give back exactly), the same
inputs, the same outputs.

`compare_torch` has the signature of tests/emit/parity.py's `compare`, so the lowering
tests' tables run against the PyTorch target unchanged (see test_layers_match_keras.py).
"""

from __future__ import annotations

import itertools
import os
import types

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

#: outputs agree to 1e-5, relative (with an absolute floor for values near zero)
ATOL, RTOL = 1e-5, 1e-5

_counter = itertools.count()


def load_graph(kdl_text: str, tmp_path, model: str | None = None):
    from transpiler.graph import load

    src = tmp_path / f"model_{next(_counter)}.kdl"
    src.write_text(kdl_text)
    program, graphs = load(str(src))
    graph = graphs[model] if model else next(iter(graphs.values()))
    return program, graph, src


def import_code(code: str, name: str = "generated") -> types.ModuleType:
    """The generated source as a module (executed in memory)."""
    module = types.ModuleType(f"ktrans_torch_{next(_counter)}_{name}")
    exec(compile(code, f"<{module.__name__}>", "exec"), module.__dict__)
    return module


def model_class(module: types.ModuleType):
    (cls,) = [
        v for v in vars(module).values() if isinstance(v, type) and "from_keras_weights" in vars(v)
    ]
    return cls


def torch_model(graph, program=None, source=None):
    """(an instance of the generated class, the generated code)."""
    from transpiler.emit.torch import generate_torch

    code = generate_torch(graph, program, source)
    return model_class(import_code(code, graph.name))(), code


def run_torch(net, graph, inputs: dict[str, np.ndarray], **kwargs):
    """The module's outputs (a list, in the graph's output order) on numpy inputs."""
    import torch

    args = [torch.as_tensor(inputs[v.name]) for v in graph.inputs]
    with torch.no_grad():
        out = net(*args, **kwargs)
    if kwargs.get("return_masks"):
        return out
    outs = [out] if len(graph.outputs) == 1 else list(out)
    return [o.detach().cpu().numpy() for o in outs]


def keras_outputs(keras_model, inputs: list[np.ndarray], names=None) -> list[np.ndarray]:
    """The Keras model's outputs in inference mode (called directly: predict's set-up
    costs more than these small models' computation)."""
    import keras

    if isinstance(keras_model, keras.Model):
        theirs = keras_model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    else:  # a wrapper with its own predict (a reordered twin)
        theirs = keras_model.predict(inputs, verbose=0)
    if isinstance(theirs, dict):
        theirs = [theirs[n] for n in names] if names else list(theirs.values())
    if not isinstance(theirs, (list, tuple)):
        theirs = [theirs]
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in theirs]


def assert_close(ours: list[np.ndarray], theirs: list[np.ndarray], rtol: float = RTOL):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape, (a.shape, b.shape)
        nan = np.isnan(b)
        assert (np.isnan(a) == nan).all(), "nan in different places"
        diff = np.abs(a - b)[~nan]
        bound = ATOL + rtol * np.abs(b[~nan])
        assert (diff <= bound).all(), f"max |diff| {diff.max():.3g}"


def assert_round_trip(net, arrays: dict[str, np.ndarray]) -> None:
    """keras_weights() gives back exactly what load_keras_weights() was given."""
    back = net.keras_weights()
    assert sorted(back) == sorted(arrays)
    for key, value in arrays.items():
        assert back[key].shape == value.shape, key
        assert np.array_equal(back[key], value.astype(np.float32)), key


def compare_torch(
    kdl_text: str,
    keras_model,
    inputs: dict[str, np.ndarray],
    tmp_path,
    model=None,
    randomize: bool = True,
    runtime: str | None = None,
):
    """Builds both, runs both, asserts outputs match; returns (ours, theirs) lists.
    (`runtime` is the ONNX tests' choice of runtime: not used here.)"""
    from tests.emit.parity import keras_weights_for, randomize_keras

    program, graph, src = load_graph(kdl_text, tmp_path, model)
    if randomize:
        randomize_keras(keras_model)
    net, _ = torch_model(graph, program, str(src))
    arrays = keras_weights_for(graph, keras_model)
    net.load_keras_weights(arrays)
    assert_round_trip(net, arrays)
    net.eval()
    ours = run_torch(net, graph, inputs)
    theirs = keras_outputs(keras_model, [inputs[v.name] for v in graph.inputs], list(graph.outputs))
    assert_close(ours, theirs)
    return ours, theirs


# ---------------------------------------------------------------- the Keras target's twin


def keras_model_of(program, graph, source):
    """The Keras model `codegen --target keras` writes for the graph (layer names agree,
    so weights pair by name)."""
    import keras

    from transpiler.emit.code.keras import generate_keras

    keras.utils.set_random_seed(0)  # Keras's initializers: the same kernels every run
    return import_code(generate_keras(graph, program, source), "keras").build_model()


def keras_arrays(graph, model) -> dict[str, np.ndarray]:
    """The Keras model's weights as `<layer>/<weight>`, paired with ours by layer name."""
    import keras

    arrays = {}
    for layer in graph.layers:
        if not layer.weights:
            continue
        values = model.get_layer(layer.name).weights
        assert [tuple(v.shape) for v in values] == [w.shape for w in layer.weights]
        for w, v in zip(layer.weights, values):
            arrays[f"{layer.name}/{w.name}"] = np.asarray(keras.ops.convert_to_numpy(v))
    return arrays


def example_inputs(graph, batch: int, rng) -> dict[str, np.ndarray]:
    """Random inputs: token ids below every Embedding's vocabulary for integer inputs
    (a `?` length becomes 9), uniform floats in [-1, 1) otherwise."""
    vocab = min(
        (la.input_dim for la in graph.layers if la.keras_class() == "Embedding"), default=10
    )
    feeds = {}
    for v in graph.inputs:
        shape = (batch, *(d if isinstance(d, int) else 9 for d in v.type.shape[1:]))
        if v.type.dtype.startswith("int"):
            feeds[v.name] = rng.integers(0, vocab, size=shape).astype(v.type.dtype)
        else:
            feeds[v.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds


def compare_with_keras_target(
    program, graph, source, randomize, batch: int = 2, rtol: float = RTOL
) -> tuple[str, list[np.ndarray]]:
    """The generated module against the Keras target's model of the same graph, on the
    same weights (the Keras model's after `randomize(model)`), and inputs; returns the
    generated code and Keras's outputs."""
    model = keras_model_of(program, graph, source)
    randomize(model)
    net, code = torch_model(graph, program, source)
    arrays = keras_arrays(graph, model)
    net.load_keras_weights(arrays)
    assert_round_trip(net, arrays)
    net.eval()
    feeds = example_inputs(graph, batch, np.random.default_rng(1))
    ours = run_torch(net, graph, feeds)
    theirs = keras_outputs(model, [feeds[v.name] for v in graph.inputs], list(graph.outputs))
    assert_close(ours, theirs, rtol)
    return code, theirs
