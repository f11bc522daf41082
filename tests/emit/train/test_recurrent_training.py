"""Recurrent layers in training: SimpleRNN, LSTM and GRU lowered as their cell math unrolled
over the timesteps (ONNX's RNN/LSTM/GRU ops have no gradient rule), against Keras 3's
train_on_batch from the same weights: parameters after one and three SGD steps and after
an Adam step (and Adam's slots), and the logged loss.

Also: the trained parameters are the inference model's initializers (same names, shapes),
and the inference model holding them computes what the training-mode forward pass and
the Keras model compute; dropout / recurrent_dropout masks (drawn from ctx.uniform_noise,
replayed here in numpy and handed to Keras); the errors for what cannot train.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.emit.train.keras_oracle import assert_params, build, compile_like, run_ktrans
from tests.emit.train.keras_step import (
    keras_weights_now,
    ktrans_graph,
    onnx_layout,
    set_keras_weights,
)
from transpiler.emit.onnx import build_model, initial_weights
from transpiler.emit.train.names import LOSS_OUTPUT, STEP_INPUT

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

SGD = "SGD(learning_rate=0.5)"
ADAM = "Adam(learning_rate=0.01)"


def kdl_model(inputs: str, body: str, optimizer: str, loss="categorical_crossentropy") -> str:
    return (
        f"model M {{\n{inputs}\n{body}\n}}\n"
        f"train M {{\n    loss = {loss}\n    optimizer = {optimizer}\n}}\n"
    )


def batch(shape, classes, n=6, seed=0, ints=None):
    """(inputs, one-hot targets); `ints` = vocabulary size for int64 token inputs."""
    rng = np.random.default_rng(seed)
    if ints:
        x = rng.integers(0, ints, size=(n, *shape)).astype(np.int64)
    else:
        x = rng.normal(size=(n, *shape)).astype(np.float32)
    out_shape = (n,) if len(classes) == 1 else (n, classes[0])
    y = np.eye(classes[-1], dtype=np.float32)[rng.integers(0, classes[-1], out_shape)]
    return x, y


# ---------------------------------------------------------------- the oracle


def train_pair(kdl, tmp_path, keras_model, feeds: dict, y, steps, before_step=None, seed=3):
    """`steps` train_on_batch calls on one batch in Keras and in ktrans from the same
    weights; `before_step(km, graph, step)` runs before each Keras step. Returns (graph, tm, ktrans
    outputs per step, final state, Keras params (ONNX layout) per step, Keras logs, km)."""
    graph = ktrans_graph(kdl, tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=seed)
    km = keras_model()
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    xs = [feeds[v.name] for v in graph.inputs]
    logs, expected = [], []
    for step in range(steps):
        if before_step:
            before_step(km, graph, step)
        logs.append(km.train_on_batch(xs[0] if len(xs) == 1 else xs, y, return_dict=True))
        expected.append(onnx_layout(graph, keras_weights_now(km, graph)))
    tm = build(graph, config, weights)
    out = config.outputs[0]
    lr = config.optimizer.kwargs["learning_rate"]
    history, state = run_ktrans(tm, [{**feeds, f"target:{out}": y}] * steps, lr)
    return graph, tm, history, state, expected, logs, km


def assert_matches_keras(tm, history, expected, logs, rtol=1e-5, atol=1e-6):
    """Every step's parameters (within float32 rounding) and logged loss equal Keras's."""
    for i, (out, keras_params) in enumerate(zip(history, expected)):
        # the training parameters are inference initializers (names and shapes)
        assert set(tm.params) <= set(keras_params), sorted(set(tm.params) - set(keras_params))
        new = {name: out[f"new:{name}"] for name in tm.params}
        try:
            assert_params(new, {n: keras_params[n] for n in tm.params}, rtol, atol)
        except AssertionError as e:
            raise AssertionError(f"after step {i + 1}: {e}") from None
        np.testing.assert_allclose(out[LOSS_OUTPUT], logs[i]["loss"], rtol=1e-5, err_msg="loss")


def training_forward(graph, state: dict, feeds: dict) -> list[np.ndarray]:
    """The model's outputs from the training-mode lowering (the unrolled cell math) with
    the parameters in `state`."""
    from transpiler.emit.onnx.builder import OpBuilder
    from transpiler.emit.onnx.context import LowerContext
    from transpiler.emit.onnx.model import value_info
    from transpiler.emit.onnx.tensors import LTensor
    from transpiler.emit.versions import IR_VERSION, OPSET
    from transpiler.layers.masking import lower_layer
    from transpiler.runtime.session import create_session

    b = OpBuilder()
    ctx = LowerContext(b, initial_weights(graph, 0), training=True)
    values = {}
    for v in graph.inputs:
        values[id(v)] = LTensor(b.unique(v.name), v.type)
    for node in graph.nodes:
        ctx.layer = node.layer
        b.scope = node.outputs[0].name.split(":")[0]
        outs = lower_layer(ctx, node.layer, [values[id(v)] for v in node.inputs])
        values.update((id(v), t) for v, t in zip(node.outputs, outs))
    b.scope = ""
    outputs = []
    for name, v in graph.outputs.items():
        b.nodes.append(helper.make_node("Identity", [ctx.logical(values[id(v)]).name], [name]))
        outputs.append(value_info(name, v.type))
    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    inputs.append(helper.make_tensor_value_info(STEP_INPUT, TensorProto.INT64, []))
    for name, (array, _, _) in ctx.params.items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    g = helper.make_graph(b.nodes, "forward", inputs, outputs, b.tensor_protos())
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    params = {n: state[n] for n in ctx.params}
    return create_session(proto).run(None, {**feeds, **params, STEP_INPUT: np.array(0, np.int64)})


def inference_with(graph, state: dict, feeds: dict) -> list[np.ndarray]:
    """The inference model (ONNX's recurrent ops) with its initializers replaced by name
    from the trained `state`, as the training bundle writes the trained model."""
    from transpiler.runtime.session import create_session

    proto = build_model(graph, weights=initial_weights(graph, 0))
    for t in proto.graph.initializer:
        if t.name in state:
            assert tuple(t.dims) == state[t.name].shape, t.name
            t.CopyFrom(numpy_helper.from_array(state[t.name], t.name))
    return create_session(proto).run(None, feeds)


def assert_inference_agrees(graph, state, feeds, km, rtol=1e-5, atol=1e-6):
    """With the trained weights: inference model == training-mode forward == Keras."""
    inference = inference_with(graph, state, feeds)
    forward = training_forward(graph, state, feeds)
    xs = [feeds[v.name] for v in graph.inputs]
    theirs = km(xs[0] if len(xs) == 1 else xs, training=False)
    theirs = [theirs] if not isinstance(theirs, list | tuple) else theirs
    for a, b, c in zip(inference, forward, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(c), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- architectures

SEQ = "    input x: float32[5, 3]"


def lstm():
    inp = keras.Input((5, 3))
    return keras.Model(inp, L.Dense(2, activation="softmax")(L.LSTM(4)(inp)))


def lstm_sequence():
    inp = keras.Input((5, 3))
    h = L.LSTM(4, return_sequences=True)(inp)
    return keras.Model(inp, L.TimeDistributed(L.Dense(2, activation="softmax"))(h))


def gru(reset_after):
    def make():
        inp = keras.Input((5, 3))
        h = L.GRU(4, reset_after=reset_after)(inp)
        return keras.Model(inp, L.Dense(2, activation="softmax")(h))

    return make


def simple_rnn():
    inp = keras.Input((5, 3))
    return keras.Model(inp, L.Dense(2, activation="softmax")(L.SimpleRNN(4)(inp)))


def bidirectional():
    inp = keras.Input((5, 3))
    h = L.Bidirectional(L.LSTM(4))(inp)
    return keras.Model(inp, L.Dense(2, activation="softmax")(h))


def bidirectional_sequences():
    """The backward layer's sequence reversed into time order, then concatenated."""
    inp = keras.Input((5, 3))
    h = L.Bidirectional(L.GRU(3, return_sequences=True))(inp)
    return keras.Model(inp, L.Dense(2, activation="softmax")(L.LSTM(4)(h)))


def backwards():
    """go_backwards both ways: a returned sequence (Keras's order: processing order) and a
    last state."""
    inp = keras.Input((5, 3))
    h = L.GRU(4, return_sequences=True, go_backwards=True)(inp)
    h = L.LSTM(3, go_backwards=True)(h)
    return keras.Model(inp, L.Dense(2, activation="softmax")(h))


def embedding_lstm():
    inp = keras.Input((6,), dtype="int64")
    h = L.LSTM(5)(L.Embedding(10, 4)(inp))
    return keras.Model(inp, L.Dense(3, activation="softmax")(h))


def unrolled_activations():
    """Activations ONNX's recurrent ops lack: the inference model unrolls too, on the
    Keras-layout weights (GRU's recurrent kernel split as zr | h)."""
    inp = keras.Input((5, 3))
    h = L.GRU(4, reset_after=False, activation="silu", return_sequences=True)(inp)
    h = L.SimpleRNN(3, activation="gelu")(h)
    return keras.Model(inp, L.Dense(2, activation="softmax")(h))


DENSE = "    Dense(2, activation=softmax)"
ARCHITECTURES = {
    "lstm": (SEQ, "    LSTM(4)\n" + DENSE, lstm, (5, 3), None),
    "lstm_sequences_time_distributed": (
        SEQ,
        "    LSTM(4, return_sequences=true)\n    TimeDistributed(Dense(2, activation=softmax))",
        lstm_sequence,
        (5, 3),
        None,
    ),
    "gru_reset_after": (SEQ, "    GRU(4)\n" + DENSE, gru(True), (5, 3), None),
    "gru_reset_before": (SEQ, "    GRU(4, reset_after=false)\n" + DENSE, gru(False), (5, 3), None),
    "simple_rnn": (SEQ, "    SimpleRNN(4)\n" + DENSE, simple_rnn, (5, 3), None),
    "bidirectional_lstm": (
        SEQ,
        "    Bidirectional(LSTM(4))\n" + DENSE,
        bidirectional,
        (5, 3),
        None,
    ),
    "bidirectional_sequences": (
        SEQ,
        "    Bidirectional(GRU(3, return_sequences=true))\n    LSTM(4)\n" + DENSE,
        bidirectional_sequences,
        (5, 3),
        None,
    ),
    "go_backwards": (
        SEQ,
        "    GRU(4, return_sequences=true, go_backwards=true)\n"
        "    LSTM(3, go_backwards=true)\n" + DENSE,
        backwards,
        (5, 3),
        None,
    ),
    "embedding_lstm": (
        "    input x: int64[6]",
        "    Embedding(10, 4)\n    LSTM(5)\n    Dense(3, activation=softmax)",
        embedding_lstm,
        (6,),
        10,
    ),
    "unrolled_activations": (
        SEQ,
        "    GRU(4, reset_after=false, activation=silu, return_sequences=true)\n"
        "    SimpleRNN(3, activation=gelu)\n" + DENSE,
        unrolled_activations,
        (5, 3),
        None,
    ),
}


def classes_of(name):
    if name == "lstm_sequences_time_distributed":
        return (5, 2)
    return (3,) if name == "embedding_lstm" else (2,)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_sgd_one_and_three_steps_match_keras(tmp_path, name):
    inputs, body, keras_model, shape, vocab = ARCHITECTURES[name]
    x, y = batch(shape, classes_of(name), ints=vocab)
    kdl = kdl_model(inputs, body, SGD)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_model, {"x": x}, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
    assert_inference_agrees(graph, state, {"x": x}, km)


@pytest.mark.parametrize(
    "name", ["lstm", "gru_reset_after", "gru_reset_before", "simple_rnn", "bidirectional_lstm"]
)
def test_adam_step_matches_keras(tmp_path, name):
    from tests.emit.train.keras_oracle import keras_slots

    inputs, body, keras_model, shape, vocab = ARCHITECTURES[name]
    x, y = batch(shape, classes_of(name), ints=vocab)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl_model(inputs, body, ADAM), tmp_path, keras_model, {"x": x}, y, steps=1
    )
    assert_matches_keras(tm, history, expected, logs)
    # Adam's moments, in the parameters' ONNX layout; B's recurrent half (zeros in the
    # LSTM/SimpleRNN/GRU(reset_after=false) inference layout) gets none
    theirs = keras_slots(km, graph)
    ours = {k: v for k, v in state.items() if k.startswith("slot:")}
    assert ours and set(ours) <= set(theirs), sorted(set(ours) - set(theirs))
    for slot, value in ours.items():
        np.testing.assert_allclose(value, theirs[slot], rtol=1e-5, atol=1e-7, err_msg=slot)


def test_initial_states_and_returned_states(tmp_path):
    """Initial-state inputs, return_state (the final c feeds the head) and a bias-free
    layer."""
    kdl = kdl_model(
        "    input x: float32[5, 3]\n    input h: float32[4]\n    input c: float32[4]",
        "    y, h_out, c_out = LSTM(4, return_state=true, use_bias=false)(x, h, c)\n"
        "    z = Concatenate()(y, c_out)\n"
        "    Dense(2, activation=softmax)(z)",
        SGD,
    )

    def keras_model():
        x, h, c = keras.Input((5, 3)), keras.Input((4,)), keras.Input((4,))
        y, _, c_out = L.LSTM(4, return_state=True, use_bias=False)(x, initial_state=[h, c])
        out = L.Dense(2, activation="softmax")(L.Concatenate()([y, c_out]))
        return keras.Model([x, h, c], out)

    rng = np.random.default_rng(1)
    x, y = batch((5, 3), (2,))
    feeds = {"x": x, "h": rng.normal(size=(6, 4)).astype(np.float32)}
    feeds["c"] = rng.normal(size=(6, 4)).astype(np.float32)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_model, feeds, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
    assert_inference_agrees(graph, state, feeds, km)


def test_addition_rnn_example_matches_keras(tmp_path):
    """examples/addition_rnn.kdl (LSTM encoder, RepeatVector, LSTM decoder over 4 steps,
    TimeDistributed softmax; Adam) against its Keras twin: one and three steps."""
    from tests.test_examples import keras_addition_rnn

    rng = np.random.default_rng(0)
    x = np.eye(12, dtype=np.float32)[rng.integers(0, 12, (8, 7))]
    y = np.eye(12, dtype=np.float32)[rng.integers(0, 12, (8, 4))]
    kdl = (EXAMPLES / "addition_rnn.kdl").read_text()
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_addition_rnn, {"question": x}, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
    assert_inference_agrees(graph, state, {"question": x}, km)


# ---------------------------------------------------------------- dropout


def counter_uniform(shape, name: str, step: int) -> np.ndarray:
    """numpy's copy of transpiler.emit.onnx.random.counter_uniform."""
    from transpiler.emit.onnx import random as r

    with np.errstate(over="ignore"):
        h = np.arange(int(np.prod(shape)), dtype=np.uint64) * np.uint64(r._GOLDEN)
        h = h + np.uint64(step) * np.uint64(r._M2)
        h ^= np.uint64(zlib.crc32(name.encode()) * r._GOLDEN % 2**64)
        for mult in (r._M1, r._M2):
            h ^= h >> np.uint64(33)
            h = h * np.uint64(mult)
        h ^= h >> np.uint64(33)
    u = (h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 2**24)
    return u.reshape(shape)


def ktrans_masks(name, stream, count, shape, rate, step):
    masks = []
    for j in range(count):
        u = counter_uniform(shape, f"{name}#{stream + j}", step)
        masks.append((u >= np.float32(rate)).astype(np.float32) * np.float32(1 / (1 - rate)))
    return masks


def inject_masks(cell, name, stream, batch_size, features, step):
    """Keras's cell draws ktrans's masks (Keras caches one per call, reused every step)."""
    count = getattr(cell, "dropout_mask_count", None)
    n = count or 1

    def as_keras(masks):
        masks = [keras.ops.convert_to_tensor(m) for m in masks]
        return masks if count else masks[0]

    if cell.dropout:
        dp = ktrans_masks(name, stream, n, (batch_size, features), cell.dropout, step)
        cell.get_dropout_mask = lambda _: as_keras(dp)
    if cell.recurrent_dropout:
        shape = (batch_size, cell.units)
        rec = ktrans_masks(name, stream + 8, n, shape, cell.recurrent_dropout, step)
        cell.get_recurrent_dropout_mask = lambda _: as_keras(rec)


DROPOUT_CASES = {
    # per-gate masks (Keras's implementation 1, which recurrent_dropout selects)
    "lstm": (
        "LSTM(4, dropout=0.3, recurrent_dropout=0.4)",
        lambda: L.LSTM(4, dropout=0.3, recurrent_dropout=0.4),
    ),
    "gru_reset_before": (
        "GRU(4, reset_after=false, dropout=0.3, recurrent_dropout=0.4)",
        lambda: L.GRU(4, reset_after=False, dropout=0.3, recurrent_dropout=0.4),
    ),
    # one mask for every gate (implementation 2)
    "gru_input_only": ("GRU(4, dropout=0.5)", lambda: L.GRU(4, dropout=0.5)),
    "simple_rnn": (
        "SimpleRNN(4, dropout=0.3, recurrent_dropout=0.4)",
        lambda: L.SimpleRNN(4, dropout=0.3, recurrent_dropout=0.4),
    ),
}


@pytest.mark.parametrize("case", list(DROPOUT_CASES))
def test_dropout_masks_match_keras(tmp_path, case):
    call, keras_layer = DROPOUT_CASES[case]

    def keras_model():
        inp = keras.Input((5, 3))
        return keras.Model(inp, L.Dense(2, activation="softmax")(keras_layer()(inp)))

    def before_step(km, graph, step):
        inject_masks(km.layers[1].cell, graph.layers[0].name, 0, 6, 3, step)

    x, y = batch((5, 3), (2,))
    kdl = kdl_model(SEQ, f"    {call}\n" + DENSE, SGD)
    _, tm, history, _, expected, logs, _ = train_pair(
        kdl, tmp_path, keras_model, {"x": x}, y, 2, before_step
    )
    assert_matches_keras(tm, history, expected, logs)


def test_bidirectional_dropout_streams(tmp_path):
    """The backward layer of a Bidirectional draws its own masks (streams from 16)."""
    kdl = kdl_model(SEQ, "    Bidirectional(LSTM(4, dropout=0.5), merge_mode=sum)\n" + DENSE, SGD)

    def keras_model():
        inp = keras.Input((5, 3))
        h = L.Bidirectional(L.LSTM(4, dropout=0.5), merge_mode="sum")(inp)
        return keras.Model(inp, L.Dense(2, activation="softmax")(h))

    def before_step(km, graph, step):
        bidi, name = km.layers[1], graph.layers[0].name
        inject_masks(bidi.forward_layer.cell, name, 0, 6, 3, step)
        inject_masks(bidi.backward_layer.cell, name, 16, 6, 3, step)

    x, y = batch((5, 3), (2,))
    _, tm, history, _, expected, logs, _ = train_pair(
        kdl, tmp_path, keras_model, {"x": x}, y, 2, before_step
    )
    assert_matches_keras(tm, history, expected, logs)


# ---------------------------------------------------------------- what cannot train


def test_dynamic_time_axis_cannot_train(tmp_path):
    from transpiler.emit.train.model import build_training_model
    from transpiler.errors import KdlErrors

    graph = ktrans_graph(
        kdl_model("    input x: float32[?, 3]", "    LSTM(4)\n" + DENSE, SGD), tmp_path
    )
    with pytest.raises(KdlErrors, match=r"known number of them.*declare the time axis"):
        build_training_model(graph, graph.trains["default"])
    build_model(graph)  # inference runs on ONNX's LSTM op, any length
