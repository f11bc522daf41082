"""Blocks written as nested Keras models by `codegen --target keras` (keras_nesting.py):
which ones (no parameters, used once), how (a Sequential for a chain, a functional model
otherwise, each built by its own function), and that the generated model computes what
our ONNX model computes with the same weights. The Keras config and the `.weights.h5`
layout of such models are checked in test_keras_config.py and
tests/runtime/test_keras_export.py (NESTED_BLOCKS is one of their models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.emit.keras_twin import (
    keras_model,
    load_graph,
    onnx_outputs,
    predict,
    random_feeds,
    random_weights,
)
from transpiler.emit.code.keras import generate_keras
from transpiler.emit.code.keras_nesting import nested_instances
from transpiler.emit.onnx import build_model

keras = pytest.importorskip("keras")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# a chain (Stem: a Sequential), a block with two inputs, two outputs and an expression
# (Pair: functional), a block with a parameter (Scale: flat), a block used twice (Tail:
# flat), and a block nested in a nested one (Inner inside Outer)
NESTED_BLOCKS = """
block Stem() {
    input image
    Dense(16, activation=relu)
    LayerNormalization()
}

block Pair() {
    input a
    input b
    s = Dense(8)(a)
    output total = s + b * 2.0
    output other = Dense(4, name=side)(b)
}

block Scale(k: float) {
    input x
    x * k
}

block Tail() {
    input x
    Dense(8, activation=tanh)
}

block Inner() {
    input x
    Dense(8)
    Dropout(0.1)
}

block Outer() {
    input x
    y = x |> Inner()
    output relu(y) + x
}

model NestedBlocks {
    input features: float32[6]
    input extra: float32[8]
    h = features |> Stem()
    t, o = Pair()(Dense(8)(h), extra)
    y = Scale(0.5)(t) |> Tail() |> Tail() |> Outer()
    output main = Dense(3, activation=softmax)(y)
    output aux = o
}
"""


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    return load_graph(NESTED_BLOCKS, tmp_path_factory.mktemp("nested"))


def test_parameterless_blocks_used_once_are_nested_models(nested):
    program, graph = nested
    assert nested_instances(graph) == {"stem", "pair", "outer", "inner"}
    code = generate_keras(graph, program, "nested.kdl")
    assert "def build_stem() -> keras.Sequential:" in code
    assert 'keras.Input(shape=(6,), name="image"),' in code  # the block's input name
    assert "def build_pair() -> keras.Model:" in code
    assert "def build_inner() -> keras.Sequential:" in code
    assert "def build_outer() -> keras.Model:" in code
    assert "x_2 = build_inner()(x)" in code  # called inside the model that holds it
    assert "x = build_stem()(features)" in code
    assert "add, aux = build_pair()([x, extra])" in code
    assert "# block scale (Scale)" in code and "# block tail_1 (Tail)" in code
    assert code.index("def build_inner") < code.index("def build_outer")


def test_the_nested_model_computes_what_onnx_computes(nested, tmp_path):
    program, graph = nested
    model = keras_model(program, graph, tmp_path)
    assert [type(la).__name__ for la in model.layers if isinstance(la, keras.Model)] == [
        "Sequential",
        "Functional",
        "Functional",
    ]
    assert [la.name for la in model.get_layer("outer").layers][1] == "inner"
    rng = np.random.default_rng(2)
    weights = random_weights(graph, rng)
    for name, values in weights.items():
        if not values:  # keras.ops nodes and weightless layers
            continue
        holder = find_layer(model, name)
        holder.set_weights([values[w.name] for w in layer_of(graph, name).weights])
    feeds = random_feeds(graph, rng, batch=2)
    expected = onnx_outputs(build_model(graph, weights=weights), feeds)
    for ours, theirs in zip(predict(model, graph, feeds), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_hand_written_blocks_with_parameters_stay_flat(tmp_path):
    program, graph = load_graph((EXAMPLES / "toy_resnet.kdl").read_text(), tmp_path)
    assert graph.block_types and not nested_instances(graph)
    assert generate_keras(graph, program, "toy_resnet.kdl").count("def build_") == 1


def layer_of(graph, name):
    return next(la for la in graph.layers if la.name == name)


def find_layer(model, name):
    """The layer `name` of a Keras model, nested models searched."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            found = find_layer(layer, name)
            if found is not None:
                return found
    return None
