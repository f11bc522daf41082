"""The CNN examples end to end: ONNX from examples/*.kdl equals their Keras twins (the ones
tests/test_examples.py checks the structure of) on the same random weights, and a
channels_last CNN runs channels-first with at most two Transposes (after the input, and
before Flatten where there is one).

Weights are paired by walking both graphs from the output, inputs in call order, so the
pairing does not depend on the order either side lists its layers in (ResNet50 creates its
shortcut convolution first, Keras lists layers by depth)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.emit.parity import ATOL, RTOL

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CNN_EXAMPLES = ["mnist_cnn", "toy_resnet", "resnet50", "mobilenet_v2"]


def graph_of(name: str):
    from transpiler.graph import load

    _, graphs = load(EXAMPLES / f"{name}.kdl")
    return next(iter(graphs.values()))


def require_lowerings(graph) -> None:
    """Skips, naming them, if some layer classes of the graph have no `lower` yet."""
    from transpiler.layers.base import Layer

    missing = sorted({la.keras_class() for la in graph.layers if type(la).lower is Layer.lower})
    if missing:
        pytest.skip(f"{graph.name}: no ONNX lowering yet for {', '.join(missing)}")


def keras_twin(name: str):
    from tests.test_examples import KERAS_TWINS

    return KERAS_TWINS[name]()


def our_weight_order(graph) -> list:
    """Layers with weights, in post-order from the outputs (inputs in call order)."""
    done: set[int] = set()
    order: dict[int, object] = {}

    def visit(value):
        node = value.producer
        if node is None or id(node) in done:
            return
        done.add(id(node))
        for v in node.inputs:
            visit(v)
        if node.layer.weights:
            order.setdefault(id(node.layer), node.layer)

    for v in graph.outputs.values():
        visit(v)
    return list(order.values())


def keras_weight_order(model) -> list:
    done: set[int] = set()
    order: dict[int, object] = {}

    def visit(tensor):
        history = tensor._keras_history
        node = history.operation._inbound_nodes[history.node_index]
        if id(node) in done:
            return
        done.add(id(node))
        for t in node.input_tensors:
            visit(t)
        if node.operation.weights:
            order.setdefault(id(node.operation), node.operation)

    for out in model.outputs:
        visit(out)
    return list(order.values())


def randomize(model, seed: int = 0) -> None:
    """Non-trivial weights that keep a 50-layer network's activations in range: kernels
    as initialised (Glorot), random biases, BatchNormalization affine and statistics."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape, path = tuple(w.shape), w.path
        if "moving_variance" in path or "gamma" in path:
            value = rng.uniform(0.5, 1.5, size=shape)
        elif any(k in path for k in ("beta", "bias", "moving_mean")):
            value = rng.normal(0, 0.1, size=shape)
        else:
            continue
        w.assign(value.astype(np.float32))


def paired_weights(graph, model) -> dict[str, dict[str, np.ndarray]]:
    from transpiler.emit.onnx.weights import assign

    ours, theirs = our_weight_order(graph), keras_weight_order(model)
    assert [type(k).__name__ for k in theirs] == [la.keras_class() for la in ours]
    arrays = {}
    for mine, keras_layer in zip(ours, theirs):
        values = [np.asarray(w.numpy()) for w in keras_layer.weights]
        assert [v.shape for v in values] == [w.shape for w in mine.weights], mine.name
        for w, value in zip(mine.weights, values):
            arrays[f"{mine.name}/{w.name}"] = value
    return assign(arrays, graph, "keras")


def transposes(proto) -> int:
    return sum(node.op_type == "Transpose" for node in proto.graph.node)


@pytest.mark.parametrize("name", CNN_EXAMPLES)
def test_example_cnn_uses_at_most_two_transposes(name):
    from transpiler.emit.onnx import build_model

    graph = graph_of(name)
    require_lowerings(graph)
    proto = build_model(graph)
    flatten = any(la.keras_class() == "Flatten" for la in graph.layers)
    # one after the input, and one before Flatten (its Dense needs Keras's order)
    assert transposes(proto) == (2 if flatten else 1)


@pytest.mark.parametrize(
    ("name", "batch"),
    [("mnist_cnn", 4), ("toy_resnet", 4), ("resnet50", 1), ("mobilenet_v2", 2)],
)
def test_example_cnn_matches_keras(name, batch):
    import onnx

    from transpiler.emit.onnx import build_model
    from transpiler.runtime.session import create_session

    graph = graph_of(name)
    require_lowerings(graph)
    model = keras_twin(name)
    randomize(model)
    proto = build_model(graph, weights=paired_weights(graph, model))
    onnx.checker.check_model(proto)
    (inp,) = graph.inputs
    x = np.random.default_rng(1).uniform(-1, 1, size=(batch, *inp.type.shape[1:]))
    x = x.astype(np.float32)
    start = time.perf_counter()
    theirs = np.asarray(model.predict(x, verbose=0))
    keras_s = time.perf_counter() - start
    (ours,) = create_session(proto).run(None, {inp.name: x})
    assert ours.shape == theirs.shape
    diff = np.abs(ours - theirs)
    assert (diff <= ATOL + RTOL * np.abs(theirs)).all(), f"max |diff| {diff.max():.3g}"
    # the outputs are softmax probabilities (or logits): make sure they are not degenerate
    assert np.std(theirs) > 1e-4, "the random weights give a constant output"
    # softmax over 1000 classes gives values near 1e-3, where ATOL alone would allow 1%
    rel = diff / np.maximum(np.abs(theirs), 1e-4)
    assert rel.max() <= 1e-3, f"max relative diff {rel.max():.3g}"
    print(f"{name}: Keras {keras_s:.2f} s, max |diff| {diff.max():.3g}, rel {rel.max():.3g}")
