"""Recurrent layers and wrappers: ONNX (onnxruntime, and onnx's reference evaluator for
some) equals Keras 3 on the same weights.

Covers SimpleRNN, LSTM and GRU (reset_after both ways) with return_sequences, return_state,
go_backwards, initial-state inputs, a dynamic time axis, activations ONNX's recurrent ops
take as attributes and ones they don't (the unrolled lowering); Bidirectional with every
merge mode and a custom backward layer; TimeDistributed over Dense and Conv2D; the
unit_forget_bias initial value; and the three example models that use recurrent layers.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.normal(size=(4, *shape)).astype(np.float32)


def build(kdl: str):
    import tempfile
    from pathlib import Path

    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "m.kdl"
        src.write_text(kdl)
        _, graphs = load(str(src))
    graph = next(iter(graphs.values()))
    return graph, build_model(graph)


def op_types(kdl: str) -> list[str]:
    return [n.op_type for n in build(kdl)[1].graph.node]


def run_layer(tmp_path, kdl_layer, keras_layer, shape=(5, 3), runtime="ort"):
    """One layer on a (4, *shape) input (a `?` in shape is a dynamic axis, fed 6)."""
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M {{\n input x: float32[{dims}]\n {kdl_layer}\n}}\n"
    inp = keras.Input(tuple(None if d == "?" else d for d in shape))
    out = keras_layer(inp)
    km = keras.Model(inp, out)
    x = rand(*(6 if d == "?" else d for d in shape))
    return compare(kdl, km, {"x": x}, tmp_path, runtime=runtime)


# (kdl call, Keras layer)
CASES = [
    ("SimpleRNN(4)", lambda: layers.SimpleRNN(4)),
    (
        "SimpleRNN(4, return_sequences=true, go_backwards=true, activation=relu)",
        lambda: layers.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu"),
    ),
    (
        "SimpleRNN(4, use_bias=false, go_backwards=true)",
        lambda: layers.SimpleRNN(4, use_bias=False, go_backwards=True),
    ),
    ("LSTM(4)", lambda: layers.LSTM(4)),
    ("LSTM(4, return_sequences=true)", lambda: layers.LSTM(4, return_sequences=True)),
    (
        "LSTM(4, return_sequences=true, go_backwards=true)",
        lambda: layers.LSTM(4, return_sequences=True, go_backwards=True),
    ),
    (
        "LSTM(4, go_backwards=true, use_bias=false)",
        lambda: layers.LSTM(4, go_backwards=True, use_bias=False),
    ),
    (
        "LSTM(4, activation=relu, recurrent_activation=hard_sigmoid, return_sequences=true)",
        lambda: layers.LSTM(
            4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True
        ),
    ),
    (
        "LSTM(4, activation=leaky_relu, unroll=true)",
        lambda: layers.LSTM(4, activation="leaky_relu", unroll=True),
    ),
    (
        "LSTM(4, activation=elu, recurrent_activation=hard_sigmoid)",
        lambda: layers.LSTM(4, activation="elu", recurrent_activation="hard_sigmoid"),
    ),
    (
        "LSTM(4, activation=linear, recurrent_activation=softsign, return_sequences=true)",
        lambda: layers.LSTM(
            4, activation="linear", recurrent_activation="softsign", return_sequences=True
        ),
    ),
    ("GRU(4)", lambda: layers.GRU(4)),
    # alpha and beta belong to the second function only
    ("GRU(4, activation=hard_sigmoid)", lambda: layers.GRU(4, activation="hard_sigmoid")),
    ("GRU(4, reset_after=false)", lambda: layers.GRU(4, reset_after=False)),
    (
        "GRU(4, reset_after=false, return_sequences=true, go_backwards=true)",
        lambda: layers.GRU(4, reset_after=False, return_sequences=True, go_backwards=True),
    ),
    (
        "GRU(4, return_sequences=true, go_backwards=true, use_bias=false)",
        lambda: layers.GRU(4, return_sequences=True, go_backwards=True, use_bias=False),
    ),
    (
        "GRU(4, recurrent_activation=hard_sigmoid, activation=softplus)",
        lambda: layers.GRU(4, recurrent_activation="hard_sigmoid", activation="softplus"),
    ),
]


@pytest.mark.parametrize(("kdl_layer", "keras_layer"), CASES, ids=[c[0] for c in CASES])
def test_recurrent(tmp_path, kdl_layer, keras_layer):
    run_layer(tmp_path, kdl_layer, keras_layer())


# activations ONNX's recurrent ops lack: the unrolled cell math
UNROLLED = [
    ("SimpleRNN(4, activation=gelu)", lambda: layers.SimpleRNN(4, activation="gelu")),
    (
        "SimpleRNN(4, activation=selu, return_sequences=true, go_backwards=true, use_bias=false)",
        lambda: layers.SimpleRNN(
            4, activation="selu", return_sequences=True, go_backwards=True, use_bias=False
        ),
    ),
    (
        "LSTM(4, activation=relu6, return_sequences=true)",
        lambda: layers.LSTM(4, activation="relu6", return_sequences=True),
    ),
    (
        "LSTM(4, recurrent_activation=silu, go_backwards=true, use_bias=false)",
        lambda: layers.LSTM(4, recurrent_activation="silu", go_backwards=True, use_bias=False),
    ),
    (
        "GRU(4, activation=gelu, return_sequences=true)",
        lambda: layers.GRU(4, activation="gelu", return_sequences=True),
    ),
    (
        "GRU(4, activation=gelu, reset_after=false, go_backwards=true)",
        lambda: layers.GRU(4, activation="gelu", reset_after=False, go_backwards=True),
    ),
    (
        "GRU(4, recurrent_activation=mish, use_bias=false, return_sequences=true)",
        lambda: layers.GRU(4, recurrent_activation="mish", use_bias=False, return_sequences=True),
    ),
]


@pytest.mark.parametrize(("kdl_layer", "keras_layer"), UNROLLED, ids=[c[0] for c in UNROLLED])
def test_unrolled(tmp_path, kdl_layer, keras_layer):
    run_layer(tmp_path, kdl_layer, keras_layer())


@pytest.mark.parametrize(
    ("kdl_layer", "keras_layer"),
    [
        ("LSTM(4, return_sequences=true)", lambda: layers.LSTM(4, return_sequences=True)),
        ("GRU(4, go_backwards=true)", lambda: layers.GRU(4, go_backwards=True)),
        ("SimpleRNN(4, return_sequences=true)", lambda: layers.SimpleRNN(4, return_sequences=True)),
    ],
    ids=["lstm", "gru", "simple_rnn"],
)
def test_dynamic_time_axis(tmp_path, kdl_layer, keras_layer):
    run_layer(tmp_path, kdl_layer, keras_layer(), shape=("?", 3))


def test_dynamic_time_axis_with_an_activation_onnx_lacks():
    from transpiler.errors import KdlErrors

    with pytest.raises(KdlErrors, match=r"activation 'gelu'.*known number of timesteps"):
        build("model M {\n input x: float32[?, 3]\n GRU(4, activation=gelu)\n}\n")


@pytest.mark.parametrize(
    ("kdl_layer", "keras_layer"),
    [
        ("LSTM(4, go_backwards=true)", lambda: layers.LSTM(4, go_backwards=True)),
        (
            "GRU(4, return_sequences=true, go_backwards=true)",
            lambda: layers.GRU(4, return_sequences=True, go_backwards=True),
        ),
        ("GRU(4, reset_after=false)", lambda: layers.GRU(4, reset_after=False)),
        ("SimpleRNN(4)", lambda: layers.SimpleRNN(4)),
    ],
    ids=["lstm", "gru", "gru_reset_before", "simple_rnn"],
)
def test_reference_evaluator(tmp_path, kdl_layer, keras_layer):
    run_layer(tmp_path, kdl_layer, keras_layer(), runtime="reference")


STATE_CASES = [
    ("LSTM", 2, "return_sequences=true", {"return_sequences": True}),
    ("LSTM", 2, "go_backwards=true", {"go_backwards": True}),
    ("LSTM", 2, "activation=gelu", {"activation": "gelu"}),  # unrolled
    (
        "GRU",
        1,
        "return_sequences=true, go_backwards=true",
        {"return_sequences": True, "go_backwards": True},
    ),
    ("GRU", 1, "reset_after=false, activation=gelu", {"reset_after": False, "activation": "gelu"}),
    ("GRU", 1, "activation=gelu", {"activation": "gelu"}),
    ("SimpleRNN", 1, "go_backwards=true", {"go_backwards": True}),
]


@pytest.mark.parametrize(
    ("cls", "n", "args", "kwargs"), STATE_CASES, ids=[f"{c[0]}-{c[2]}" for c in STATE_CASES]
)
def test_initial_and_returned_states(tmp_path, cls, n, args, kwargs):
    names = ["h", "c"][:n]
    state_inputs = "".join(f" input {s}: float32[4]\n" for s in names)
    outs = ["y", *(f"{s}_out" for s in names)]
    kdl = (
        f"model M {{\n input x: float32[5, 3]\n{state_inputs}"
        f" {', '.join(outs)} = {cls}(4, return_state=true, {args})(x, {', '.join(names)})\n"
        + "".join(f" output {o}\n" for o in outs)
        + "}\n"
    )
    x = keras.Input((5, 3))
    states = [keras.Input((4,)) for _ in names]
    ys = getattr(layers, cls)(4, return_state=True, **kwargs)(x, initial_state=states)
    km = keras.Model([x, *states], ys)
    feeds = {"x": rand(5, 3), **{s: rand(4) for s in names}}
    compare(kdl, km, feeds, tmp_path)


def test_stacked_sequences_stay_time_major(tmp_path):
    """Between stacked recurrent layers and TimeDistributed no Transpose is needed: one
    on the way in, one for the output."""
    kdl = (
        "model M {\n input x: float32[5, 3]\n LSTM(6, return_sequences=true)\n"
        " GRU(4, return_sequences=true, go_backwards=true)\n"
        " TimeDistributed(Dense(3, activation=softmax))\n}\n"
    )
    assert op_types(kdl).count("Transpose") == 2
    inp = keras.Input((5, 3))
    y = layers.LSTM(6, return_sequences=True)(inp)
    y = layers.GRU(4, return_sequences=True, go_backwards=True)(y)
    y = layers.TimeDistributed(layers.Dense(3, activation="softmax"))(y)
    compare(kdl, keras.Model(inp, y), {"x": rand(5, 3)}, tmp_path)


# ---------------------------------------------------------------- Bidirectional

BIDI = [
    ("LSTM(4)", lambda: layers.LSTM(4), "concat"),
    ("LSTM(4, return_sequences=true)", lambda: layers.LSTM(4, return_sequences=True), "concat"),
    ("GRU(3, return_sequences=true)", lambda: layers.GRU(3, return_sequences=True), "sum"),
    ("SimpleRNN(3)", lambda: layers.SimpleRNN(3), "mul"),
    ("GRU(3, reset_after=false)", lambda: layers.GRU(3, reset_after=False), "ave"),
    ("LSTM(3, return_sequences=true)", lambda: layers.LSTM(3, return_sequences=True), "ave"),
    (
        "LSTM(3, return_sequences=true, activation=gelu)",
        lambda: layers.LSTM(3, return_sequences=True, activation="gelu"),
        "mul",
    ),
]


@pytest.mark.parametrize(
    ("inner", "keras_inner", "mode"), BIDI, ids=[f"{c[0]}-{c[2]}" for c in BIDI]
)
def test_bidirectional(tmp_path, inner, keras_inner, mode):
    run_layer(
        tmp_path,
        f"Bidirectional({inner}, merge_mode={mode})",
        lambda t: layers.Bidirectional(keras_inner(), merge_mode=mode)(t),
    )


def test_bidirectional_reference_evaluator(tmp_path):
    run_layer(
        tmp_path,
        "Bidirectional(LSTM(4, return_sequences=true))",
        lambda t: layers.Bidirectional(layers.LSTM(4, return_sequences=True))(t),
        runtime="reference",
    )


@pytest.mark.parametrize("sequences", [False, True])
def test_bidirectional_unmerged(tmp_path, sequences):
    rs = str(sequences).lower()
    kdl = (
        "model M {\n input x: float32[5, 3]\n"
        f" a, b = Bidirectional(GRU(4, return_sequences={rs}), merge_mode=none)(x)\n"
        " output a\n output b\n}\n"
    )
    inp = keras.Input((5, 3))
    ys = layers.Bidirectional(layers.GRU(4, return_sequences=sequences), merge_mode=None)(inp)
    compare(kdl, keras.Model(inp, list(ys)), {"x": rand(5, 3)}, tmp_path)


def test_bidirectional_states_and_backward_layer(tmp_path):
    kdl = (
        "model M {\n input x: float32[5, 3]\n input h1: float32[4]\n input c1: float32[4]\n"
        " input h2: float32[4]\n input c2: float32[4]\n"
        " y, fh, fc, bh, bc = Bidirectional(LSTM(4, return_sequences=true, return_state=true),"
        " backward_layer=LSTM(4, return_sequences=true, return_state=true, go_backwards=true,"
        " activation=relu))(x, h1, c1, h2, c2)\n"
        " output y\n output fh\n output fc\n output bh\n output bc\n}\n"
    )
    x = keras.Input((5, 3))
    states = [keras.Input((4,)) for _ in range(4)]
    bidi = layers.Bidirectional(
        layers.LSTM(4, return_sequences=True, return_state=True),
        backward_layer=layers.LSTM(
            4, return_sequences=True, return_state=True, go_backwards=True, activation="relu"
        ),
    )
    km = keras.Model([x, *states], bidi(x, initial_state=states))
    feeds = {"x": rand(5, 3), **{n: rand(4) for n in ("h1", "c1", "h2", "c2")}}
    compare(kdl, km, feeds, tmp_path)


def test_bidirectional_dynamic_time_axis(tmp_path):
    run_layer(
        tmp_path,
        "Bidirectional(GRU(4, return_sequences=true), merge_mode=sum)",
        lambda t: layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode="sum")(t),
        shape=("?", 3),
    )


# ---------------------------------------------------------------- TimeDistributed


@pytest.mark.parametrize("shape", [(4, 6), ("?", 6), (3, 2, 6)], ids=["static", "dynamic", "rank4"])
def test_time_distributed_dense(tmp_path, shape):
    run_layer(
        tmp_path,
        "TimeDistributed(Dense(5, activation=relu))",
        layers.TimeDistributed(layers.Dense(5, activation="relu")),
        shape=shape,
    )


def test_time_distributed_conv2d(tmp_path):
    run_layer(
        tmp_path,
        "TimeDistributed(Conv2D(4, 3, padding=same))\n TimeDistributed(Flatten())",
        lambda t: layers.TimeDistributed(layers.Flatten())(
            layers.TimeDistributed(layers.Conv2D(4, 3, padding="same"))(t)
        ),
        shape=(3, 6, 5, 2),
    )


def test_time_distributed_lstm(tmp_path):
    run_layer(
        tmp_path,
        "TimeDistributed(LSTM(3, return_sequences=true))",
        layers.TimeDistributed(layers.LSTM(3, return_sequences=True)),
        shape=(3, 5, 2),
    )


def test_time_distributed_initializer_names():
    _, proto = build("model M {\n input x: float32[4, 6]\n TimeDistributed(Dense(5))\n}\n")
    names = {i.name for i in proto.graph.initializer}
    assert {"time_distributed/dense/kernel", "time_distributed/dense/bias"} <= names


# ---------------------------------------------------------------- initial values


@pytest.mark.parametrize("forget", [True, False])
def test_unit_forget_bias(forget):
    from transpiler.emit.onnx import initial_weights

    flag = str(forget).lower()
    graph, _ = build(
        "model M {\n input x: float32[5, 3]\n"
        f" LSTM(4, unit_forget_bias={flag}, return_sequences=true)\n"
        f" Bidirectional(LSTM(2, unit_forget_bias={flag}))\n}}\n"
    )
    w = initial_weights(graph)
    want = np.zeros(16, np.float32)
    if forget:
        want[4:8] = 1.0
    np.testing.assert_array_equal(w["lstm"]["bias"], want)
    want2 = np.zeros(8, np.float32)
    if forget:
        want2[2:4] = 1.0
    for side in ("forward_lstm_1", "backward_lstm_1"):
        np.testing.assert_array_equal(w["bidirectional"][f"{side}/bias"], want2)


def test_unit_forget_bias_matches_keras():
    """Keras's own initial bias with unit_forget_bias: zeros, the forget block ones."""
    from transpiler.emit.onnx import initial_weights

    graph, _ = build("model M {\n input x: float32[5, 3]\n LSTM(4)\n}\n")
    ours = initial_weights(graph)["lstm"]["bias"]
    inp = keras.Input((5, 3))
    lstm = layers.LSTM(4)
    lstm(inp)
    np.testing.assert_array_equal(ours, lstm.weights[2].numpy())


# ---------------------------------------------------------------- examples


def example_kdl(name: str) -> str:
    from tests.test_examples import EXAMPLES

    return (EXAMPLES / f"{name}.kdl").read_text()


def test_example_addition_rnn(tmp_path):
    from tests.test_examples import keras_addition_rnn

    compare(example_kdl("addition_rnn"), keras_addition_rnn(), {"question": rand(7, 12)}, tmp_path)


def test_example_tweet_pair(tmp_path):
    from tests.test_examples import keras_tweet_pair

    inputs = {"tweet_a": rand(280, 256)[:2], "tweet_b": rand(280, 256)[:2]}
    compare(example_kdl("tweet_pair"), keras_tweet_pair(), inputs, tmp_path)


class _Reordered:
    """A Keras model seen with its layers in our order and its outputs as a list in our
    order (the twin's functional model lists layers by depth and returns a dict)."""

    def __init__(self, model, layers_in_order, output_names):
        self.model = model
        self.layers = layers_in_order
        self.weights = model.weights
        self.output_names = output_names

    def predict(self, inputs, verbose=0):
        out = self.model.predict(inputs, verbose=verbose)
        return [out[n] for n in self.output_names]


def test_example_ticket_triage(tmp_path):
    from tests.test_examples import keras_ticket_triage

    km = keras_ticket_triage()
    # ours, in source order: title's Embedding and LSTM, body's, then priority, department
    embeddings = {
        layer.input.name: layer for layer in km.layers if isinstance(layer, layers.Embedding)
    }
    lstms = {layer.units: layer for layer in km.layers if isinstance(layer, layers.LSTM)}
    dense = {layer.name: layer for layer in km.layers if isinstance(layer, layers.Dense)}
    order = [
        embeddings["title"],
        lstms[128],
        embeddings["body"],
        lstms[32],
        dense["priority"],
        dense["department"],
    ]
    wrapped = _Reordered(km, order, ["priority", "department"])
    title = RNG.integers(0, 10000, size=(4, 9)).astype(np.int64)
    body = RNG.integers(0, 10000, size=(4, 13)).astype(np.int64)
    inputs = {"title": title, "body": body, "tags": rand(12)}
    compare(example_kdl("ticket_triage"), wrapped, inputs, tmp_path)


def test_between_convolutions(tmp_path):
    """A Conv1D output (stored channels-first) into an LSTM, its sequence into a Conv1D
    and a global pooling: the layouts convert where needed."""
    run_layer(
        tmp_path,
        "Conv1D(4, 3, padding=same)\n LSTM(5, return_sequences=true)\n Conv1D(3, 2)\n"
        " GlobalMaxPooling1D()",
        lambda t: layers.GlobalMaxPooling1D()(
            layers.Conv1D(3, 2)(
                layers.LSTM(5, return_sequences=True)(layers.Conv1D(4, 3, padding="same")(t))
            )
        ),
        shape=(7, 3),
    )
