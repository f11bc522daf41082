"""ONNX layout -> Keras layout (transpiler.emit.onnx.keras_recipes): for every catalogue
layer, Keras weights -> ktrans's lowering -> ONNX initializers -> recipe give the same
Keras arrays back, exactly. After a training step that moved every state tensor (both
ONNX recurrent biases included), the Keras model with the recipes' arrays computes what
the ONNX model with that state computes: Keras 3 is the oracle for what the one Keras
bias means."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from tests.emit.catalogue_models import CASES, layer_class
from tests.emit.keras_twin import (
    flat,
    keras_model,
    load_graph,
    onnx_outputs,
    predict,
    random_feeds,
    random_weights,
)
from transpiler.emit.onnx import build_model
from transpiler.emit.onnx.keras_recipes import keras_recipes, part_recipe
from transpiler.errors import KdlErrors
from transpiler.layers import LAYERS
from transpiler.templates.ktrans_runtime.keras_export import (
    ExportError,
    apply_ops,
    keras_arrays,
)


def initializers(proto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def test_every_catalogue_layer_has_a_case():
    assert set(LAYERS) <= {layer_class(c) for c in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_recipes_give_the_keras_weights_back_exactly(case, tmp_path):
    _, graph = load_graph(CASES[case], tmp_path)
    weights = random_weights(graph, np.random.default_rng(1))
    state = initializers(build_model(graph, weights=weights))
    recipes = keras_recipes(graph)
    assert set(recipes) == set(flat(weights))
    back = keras_arrays(state, recipes)
    for key, want in flat(weights).items():
        assert back[key].dtype == np.float32
        np.testing.assert_array_equal(back[key], want, err_msg=key)


RECURRENT = [
    c for c in CASES if layer_class(c) in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")
] + ["TimeDistributed-Dense", "Conv2D", "DepthwiseConv2D", "MultiHeadAttention"]

TRAIN = """
train M {
    loss = mse
    optimizer = SGD(learning_rate=0.5)
}
"""


def _one_training_step(graph, weights, feeds) -> dict[str, np.ndarray]:
    """The parameters and buffers after one SGD step on `feeds` (targets: ones)."""
    from transpiler.emit.train.model import build_training_model
    from transpiler.runtime.session import create_session

    config = graph.trains["default"]
    tm = build_training_model(graph, config, weights=weights)
    session = create_session(tm.proto)
    state = {**tm.params, **tm.buffers, **tm.slots}
    run = dict(feeds)
    for name, v in graph.outputs.items():
        shape = [feeds[graph.inputs[0].name].shape[0], *v.type.shape[1:]]
        run[f"target:{name}"] = np.ones(shape, np.float32)
    for i in session.get_inputs():
        if i.name in run or i.name in state:
            continue
        # the step counter (int64) and the learning rate (float), whatever their names
        is_step = "int64" in i.type
        run[i.name] = np.array(0, np.int64) if is_step else np.array(0.5, np.float32)
    run.update(state)
    names = [o.name for o in session.get_outputs() if o.name.startswith("new:")]
    new = dict(zip(names, session.run(names, run)))
    return {n: new[f"new:{n}"] for n in [*tm.params, *tm.buffers]}


@pytest.mark.parametrize("case", RECURRENT)
def test_a_trained_state_means_in_keras_what_it_means_in_onnx(case, tmp_path):
    program, graph = load_graph(CASES[case] + TRAIN, tmp_path)
    rng = np.random.default_rng(2)
    weights = random_weights(graph, rng)
    feeds = random_feeds(graph, rng, batch=3)
    state = _one_training_step(graph, weights, feeds)
    # and every tensor moved, both halves of an ONNX recurrent bias included (training
    # leaves B's recurrent half alone where Keras has one bias; a state may not)
    state = {n: (a + rng.normal(0, 0.1, a.shape)).astype(np.float32) for n, a in state.items()}
    proto = build_model(graph, weights=weights)
    for t in proto.graph.initializer:
        if t.name in state:
            t.CopyFrom(numpy_helper.from_array(state[t.name], t.name))
    expected = onnx_outputs(proto, feeds)
    arrays = keras_arrays(state, keras_recipes(graph, state_names=state))
    model = keras_model(program, graph, tmp_path)
    for layer in graph.layers:
        if layer.weights:
            values = [arrays[f"{layer.name}/{w.name}"] for w in layer.weights]
            model.get_layer(layer.name).set_weights(values)
    for got, want in zip(predict(model, graph, feeds), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_the_recurrent_bias_halves_add_up():
    """LSTM's Keras bias is ONNX's B input half + recurrent half, gates reordered."""
    from transpiler.graph.types import TensorType
    from transpiler.layers.recurrent import LSTM

    layer = LSTM.create(2)
    layer([TensorType("float32", ("batch", 3, 4))])
    part = part_recipe(layer.onnx_bias, (8,))
    b = np.arange(8, dtype=np.float32)
    onnx_b = layer.onnx_bias(b)
    moved = onnx_b.copy()
    moved[0, 8:] += 10.0  # the recurrent half
    assert part["at"] is None
    np.testing.assert_array_equal(apply_ops(onnx_b, part["ops"]), b)
    np.testing.assert_array_equal(apply_ops(moved, part["ops"]), b + 10.0)


def test_values_computed_from_weights_are_no_source():
    assert part_recipe(lambda a: a * 2.0 + 1.0, (3, 2)) is None
    assert part_recipe(lambda a: np.concatenate([a, a]), (4,)) is None
    assert part_recipe(lambda a: a.sum(0), (3, 2)) is None


def test_folded_batch_normalization_is_a_clear_error(tmp_path):
    """BatchNormalization on an axis ONNX's op cannot take is folded for inference:
    its gamma survives in no tensor, so there is no Keras layout to give back."""
    _, graph = load_graph(
        f"model M {{\n    {CASES['Flatten'].splitlines()[1]}\n    BatchNormalization()\n}}\n",
        tmp_path,
    )
    with pytest.raises(KdlErrors, match="batch_normalization/gamma"):
        keras_recipes(graph)


def test_a_state_without_a_tensor_or_of_the_wrong_shape_names_it(tmp_path):
    _, graph = load_graph(CASES["LSTM"], tmp_path)
    recipes = keras_recipes(graph)
    weights = random_weights(graph, np.random.default_rng(0))
    state = initializers(build_model(graph, weights=weights))
    with pytest.raises(ExportError, match="the state has no 'lstm/bias_onnx'"):
        keras_arrays({k: v for k, v in state.items() if k != "lstm/bias_onnx"}, recipes)
    state["lstm/kernel_onnx"] = np.zeros((1, 4, 4), np.float32)
    match = r"'lstm/kernel_onnx' has shape \(1, 4, 4\); the weight 'lstm/kernel' needs it"
    with pytest.raises(ExportError, match=match + r" shaped \(1, 12, 4\)"):
        keras_arrays(state, recipes)
