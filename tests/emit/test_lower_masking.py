"""Keras masks (Embedding(mask_zero=true)): ONNX (onnxruntime) equals Keras 3 on the same
weights for the layers that consume a mask and the rules that carry it.

Token ids mix right padding, zeros in the middle and on the left, and a sample with no
token at all, so a layer that ignored the mask (or read it as right padding only) fails.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

VOCAB, STEPS = 9, 6
IDS = np.array(
    [
        [1, 2, 0, 3, 0, 0],  # right padding and a gap
        [0, 0, 4, 5, 6, 7],  # left padding
        [1, 2, 3, 4, 5, 6],  # whole
        [0, 0, 0, 0, 0, 0],  # empty
        [0, 8, 0, 0, 2, 0],  # scattered
    ],
    np.int64,
)


def embedded(steps=STEPS):
    inp = keras.Input((steps,), dtype="int64")
    return inp, L.Embedding(VOCAB, 3, mask_zero=True)(inp)


def run(tmp_path, body: str, keras_model, ids=IDS, time: str = str(STEPS)):
    kdl = (
        "model M {\n"
        f"    input x: int64[{time}]\n"
        f"    h = x |> Embedding({VOCAB}, 3, mask_zero=true)\n"
        f"{body}\n"
        "}\n"
    )
    return compare(kdl, keras_model, {"x": ids}, tmp_path)


def sequential(*layers):
    def make():
        inp, h = embedded()
        for layer in layers:
            h = layer(h)
        return keras.Model(inp, h)

    return make


# (kdl body after `h = x |> Embedding(...)`, Keras layers after the Embedding)
RECURRENT = {
    "lstm": ("    h |> LSTM(4)", lambda: [L.LSTM(4)]),
    "lstm_sequences": (
        "    h |> LSTM(4, return_sequences=true)",
        lambda: [L.LSTM(4, return_sequences=True)],
    ),
    "lstm_backwards_sequences": (
        "    h |> LSTM(4, return_sequences=true, go_backwards=true)",
        lambda: [L.LSTM(4, return_sequences=True, go_backwards=True)],
    ),
    "gru_backwards": ("    h |> GRU(4, go_backwards=true)", lambda: [L.GRU(4, go_backwards=True)]),
    "gru_reset_before_sequences": (
        "    h |> GRU(4, reset_after=false, return_sequences=true)",
        lambda: [L.GRU(4, reset_after=False, return_sequences=True)],
    ),
    "simple_rnn_sequences": (
        "    h |> SimpleRNN(4, return_sequences=true)",
        lambda: [L.SimpleRNN(4, return_sequences=True)],
    ),
    "simple_rnn_backwards": (
        "    h |> SimpleRNN(4, go_backwards=true)",
        lambda: [L.SimpleRNN(4, go_backwards=True)],
    ),
    "stacked": (
        "    h |> LSTM(4, return_sequences=true) |> Dense(3) |> GRU(2)",
        lambda: [L.LSTM(4, return_sequences=True), L.Dense(3), L.GRU(2)],
    ),
    # an activation ONNX's recurrent ops lack: the unrolled cells at inference
    "lstm_unrolled_sequences": (
        "    h |> LSTM(4, activation=gelu, return_sequences=true)",
        lambda: [L.LSTM(4, activation="gelu", return_sequences=True)],
    ),
    "gru_unrolled_backwards": (
        "    h |> GRU(4, recurrent_activation=silu, go_backwards=true)",
        lambda: [L.GRU(4, recurrent_activation="silu", go_backwards=True)],
    ),
    "bidirectional_concat_sequences": (
        "    h |> Bidirectional(LSTM(3, return_sequences=true))",
        lambda: [L.Bidirectional(L.LSTM(3, return_sequences=True))],
    ),
    "bidirectional_sum": (
        "    h |> Bidirectional(GRU(3), merge_mode=sum)",
        lambda: [L.Bidirectional(L.GRU(3), merge_mode="sum")],
    ),
    "bidirectional_ave_sequences_then_lstm": (
        "    h |> Bidirectional(SimpleRNN(3, return_sequences=true), merge_mode=ave) |> LSTM(2)",
        lambda: [
            L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
            L.LSTM(2),
        ],
    ),
    "time_distributed_then_lstm": (
        "    h |> TimeDistributed(Dense(4)) |> LSTM(3, return_sequences=true)",
        lambda: [L.TimeDistributed(L.Dense(4)), L.LSTM(3, return_sequences=True)],
    ),
    "pooling": (
        "    h |> GlobalAveragePooling1D() |> Dense(2)",
        lambda: [L.GlobalAveragePooling1D(), L.Dense(2)],
    ),
    # Conv1D does not support masking: Keras drops the mask, so the LSTM sees none
    "dropped_by_conv": (
        "    h |> Conv1D(3, 2, padding=same) |> LSTM(2)",
        lambda: [L.Conv1D(3, 2, padding="same"), L.LSTM(2)],
    ),
}


@pytest.mark.parametrize("case", list(RECURRENT))
def test_masked_layers_match_keras(tmp_path, case):
    body, keras_layers = RECURRENT[case]
    ids = IDS
    if case == "pooling":
        ids = IDS[[0, 1, 2, 4]]  # Keras divides by the count of steps: an empty sample is nan
    run(tmp_path, body, sequential(*keras_layers())(), ids)


# ---------------------------------------------------------------- several inputs and merges

IDS_B = np.array([[3, 0, 0, 1], [0, 2, 2, 0], [0, 0, 0, 0], [5, 6, 7, 8], [0, 0, 0, 4]], np.int64)


def keras_weights_by_shape(graph, keras_model) -> dict[str, dict[str, np.ndarray]]:
    """Like parity.keras_weights_for, pairing our layers with Keras's by class and weight
    shapes rather than by position (Keras orders a graph's layers its own way)."""
    theirs = [layer for layer in keras_model.layers if layer.weights]
    arrays: dict = {}
    for mine in graph.layers:
        if not mine.weights:
            continue
        shapes = [w.shape for w in mine.weights]
        match = next(
            k
            for k in theirs
            if type(k).__name__ == mine.keras_class()
            and [tuple(w.shape) for w in k.weights] == shapes
        )
        theirs.remove(match)
        arrays[mine.name] = {
            w.name: np.asarray(value.numpy()) for w, value in zip(mine.weights, match.weights)
        }
    return arrays


def two_input_case(body: str, make, steps_b=4):
    """Token inputs x (6 steps) and, where the body uses g, z (`steps_b`), each through
    its own masked Embedding: h and g. Returns (.kdl text, Keras model, feeds)."""
    uses_g = re.search(r"\bg\b", body) is not None
    kdl = "model M {\n" + f"    input x: int64[{STEPS}]\n"
    kdl += f"    input z: int64[{steps_b}]\n" if uses_g else ""
    kdl += f"    h = x |> Embedding({VOCAB}, 3, mask_zero=true)\n"
    kdl += f"    g = z |> Embedding({VOCAB + 1}, 3, mask_zero=true)\n" if uses_g else ""
    kdl += f"{body}\n}}\n"
    x, z = keras.Input((STEPS,), dtype="int64"), keras.Input((steps_b,), dtype="int64")
    h = L.Embedding(VOCAB, 3, mask_zero=True)(x)
    g = L.Embedding(VOCAB + 1, 3, mask_zero=True)(z) if uses_g else None
    model = keras.Model([x, z] if uses_g else x, make(h, g))
    feeds = {"x": IDS}
    if uses_g:
        feeds["z"] = IDS_B if steps_b == 4 else IDS[:, ::-1].copy()
    return kdl, model, feeds


def two_inputs(tmp_path, body: str, make, steps_b=4):
    """One two_input_case on onnxruntime against Keras."""
    from tests.emit.parity import ATOL, RTOL, randomize_keras
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load
    from transpiler.runtime.session import create_session

    kdl, model, feeds = two_input_case(body, make, steps_b)
    src = tmp_path / "model.kdl"
    src.write_text(kdl)
    graph = next(iter(load(str(src))[1].values()))
    randomize_keras(model)
    proto = build_model(graph, weights=keras_weights_by_shape(graph, model))
    (ours,) = create_session(proto).run(None, feeds)
    theirs = model.predict(list(feeds.values()), verbose=0)
    assert ours.shape == theirs.shape
    nan = np.isnan(theirs)  # a mean over no step at all (an empty sample), in Keras too
    assert (np.isnan(ours) == nan).all()
    diff = np.abs(ours - theirs)[~nan]
    assert (diff <= ATOL + RTOL * np.abs(theirs[~nan])).all(), f"max |diff| {diff.max():.3g}"


GRAPHS = {
    # merges: the OR of the masks when every input has one, no mask otherwise
    "add_then_lstm": (
        "    Add()(h, Dense(3)(h)) |> LSTM(3, return_sequences=true)",
        lambda h, g: L.LSTM(3, return_sequences=True)(L.Add()([h, L.Dense(3)(h)])),
        STEPS,
    ),
    "maximum_of_two_masks": (
        "    Maximum()(h, g) |> LSTM(3, return_sequences=true)",
        lambda h, g: L.LSTM(3, return_sequences=True)(L.Maximum()([h, g])),
        STEPS,
    ),
    "minimum_one_masked": (
        "    Minimum()(h, Conv1D(3, 1)(g), h) |> Dense(2)",
        lambda h, g: L.Dense(2)(L.Minimum()([h, L.Conv1D(3, 1)(g), h])),
        STEPS,
    ),
    "multiply_masked_and_not": (
        "    Multiply()(h, Conv1D(3, 1)(g)) |> Dense(2)",
        lambda h, g: L.Dense(2)(L.Multiply()([h, L.Conv1D(3, 1)(g)])),
        STEPS,
    ),
    "multiply_of_two_masks": (
        "    Multiply()(h, g) |> GRU(2, return_sequences=true)",
        lambda h, g: L.GRU(2, return_sequences=True)(L.Multiply()([h, g])),
        STEPS,
    ),
    "concatenate_time_axis": (
        "    Concatenate(axis=1)(h, Conv1D(3, 1)(g), g) |> LSTM(3, return_sequences=true)",
        lambda h, g: L.LSTM(3, return_sequences=True)(
            L.Concatenate(axis=1)([h, L.Conv1D(3, 1)(g), g])
        ),
        4,
    ),
    "concatenate_features": (
        "    Concatenate()(h, g) |> SimpleRNN(2, return_sequences=true)",
        lambda h, g: L.SimpleRNN(2, return_sequences=True)(L.Concatenate()([h, g])),
        STEPS,
    ),
    # an expression is a keras.ops call in Keras: its result carries no mask
    "expression_drops_the_mask": (
        "    y = h * 2.0\n    y |> LSTM(2, return_sequences=true)",
        lambda h, g: L.LSTM(2, return_sequences=True)(h * 2.0),
        STEPS,
    ),
    # attention: query, value and key masks
    "self_attention": (
        "    MultiHeadAttention(2, 3)(h, h)",
        lambda h, g: L.MultiHeadAttention(2, 3)(h, h),
        STEPS,
    ),
    "self_attention_explicit_softmax": (  # dropout > 0: Keras's other path
        "    MultiHeadAttention(2, 3, dropout=0.2)(h, h) |> LSTM(2)",
        lambda h, g: L.LSTM(2)(L.MultiHeadAttention(2, 3, dropout=0.2)(h, h)),
        STEPS,
    ),
    "cross_attention_with_key": (
        "    MultiHeadAttention(2, 3, sliding_window=2)(h, g, Dense(3)(g)) |> LSTM(2)",
        lambda h, g: L.LSTM(2)(L.MultiHeadAttention(2, 3, sliding_window=2)(h, g, L.Dense(3)(g))),
        STEPS,
    ),
    "cross_attention_unmasked_query": (
        "    MultiHeadAttention(1, 2)(Conv1D(3, 1)(h), g) |> LSTM(2)",
        lambda h, g: L.LSTM(2)(L.MultiHeadAttention(1, 2)(L.Conv1D(3, 1)(h), g)),
        4,
    ),
    "transformer_block": (
        "    a = MultiHeadAttention(2, 3)(h, h)\n"
        "    Add()(h, a) |> LayerNormalization() |> GlobalAveragePooling1D() |> Dense(2)",
        lambda h, g: L.Dense(2)(
            L.GlobalAveragePooling1D()(
                L.LayerNormalization()(L.Add()([h, L.MultiHeadAttention(2, 3)(h, h)]))
            )
        ),
        STEPS,
    ),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_masked_graphs_match_keras(tmp_path, case):
    body, make, steps_b = GRAPHS[case]
    two_inputs(tmp_path, body, make, steps_b)


# ---------------------------------------------------------------- more recurrent cases


def test_dynamic_time_axis(tmp_path):
    """`?` timesteps: the ONNX ops over the compacted sequence need no static length."""

    def make():
        inp = keras.Input((None,), dtype="int64")
        h = L.Embedding(VOCAB, 3, mask_zero=True)(inp)
        h = L.Bidirectional(L.GRU(3, return_sequences=True, go_backwards=False))(h)
        return keras.Model(inp, L.LSTM(2, go_backwards=True, return_sequences=True)(h))

    body = (
        "    h |> Bidirectional(GRU(3, return_sequences=true))"
        " |> LSTM(2, go_backwards=true, return_sequences=true)"
    )
    run(tmp_path, body, make(), time="?")


def test_returned_states(tmp_path):
    """return_state: the states of the last kept step (the initial ones, zeros, for a
    sample with none), the last output likewise."""

    def make():
        inp, h = embedded()
        return keras.Model(inp, L.LSTM(4, return_state=True, go_backwards=True)(h))

    run(tmp_path, "    h |> LSTM(4, return_state=true, go_backwards=true)", make())


def test_initial_states_leave_the_mask_unused(tmp_path):
    """Keras hands a recurrent layer the mask only when the sequence is its one tensor
    argument: with initial states it runs over every step, and its returned sequence
    still carries the mask to the next layer."""
    kdl = (
        "model M {\n"
        f"    input x: int64[{STEPS}]\n    input s: float32[4]\n"
        f"    h = x |> Embedding({VOCAB}, 3, mask_zero=true)\n"
        "    y = LSTM(4, return_sequences=true)(h, s, s)\n"
        "    y |> GRU(2)\n}\n"
    )
    x, s = keras.Input((STEPS,), dtype="int64"), keras.Input((4,))
    h = L.Embedding(VOCAB, 3, mask_zero=True)(x)
    y = L.LSTM(4, return_sequences=True)(h, initial_state=[s, s])
    model = keras.Model([x, s], L.GRU(2)(y))
    states = np.random.default_rng(1).normal(size=(len(IDS), 4)).astype(np.float32)
    compare(kdl, model, {"x": IDS, "s": states}, tmp_path)


# ---------------------------------------------------------------- errors and no change


def build(kdl: str):
    import tempfile
    from pathlib import Path

    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "m.kdl"
        src.write_text(kdl)
        _, graphs = load(str(src))
    return build_model(next(iter(graphs.values())))


def masked_model(body: str) -> str:
    return (
        f"model M {{\n    input x: int64[{STEPS}]\n"
        f"    Embedding({VOCAB}, 3, mask_zero=true)\n{body}\n}}\n"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    Softmax()", r"Softmax \('softmax'\).*Keras mask.*Activation\(softmax\)"),
        (
            "    TimeDistributed(Softmax())",
            r"TimeDistributed.*one time slice at a time, to the wrapped Softmax",
        ),
    ],
)
def test_masks_keras_uses_otherwise_are_errors(body, message):
    from transpiler.errors import KdlErrors

    with pytest.raises(KdlErrors, match=message):
        build(masked_model(body))


def test_no_mask_no_extra_nodes():
    """mask_zero=false lowers the same graph as before: no mask op anywhere."""
    body = "    Bidirectional(LSTM(3, return_sequences=true))\n    GlobalAveragePooling1D()"
    plain = build(masked_model(body).replace(", mask_zero=true", ""))
    ops = {n.op_type for n in plain.graph.node}
    assert not ops & {"Not", "Equal", "ScatterElements", "CumSum", "Where"}, ops
    masked = {n.op_type for n in build(masked_model(body)).graph.node}
    assert {"Not", "ScatterElements", "CumSum", "Where"} <= masked


def test_generated_keras_code_keeps_mask_zero(tmp_path):
    """`ktrans codegen --target keras` writes mask_zero=True, and the module it writes
    computes what our ONNX model computes."""
    from tests.emit.test_codegen_keras import import_path
    from transpiler.emit.code.keras import generate_keras
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load
    from transpiler.runtime.session import create_session

    src = tmp_path / "m.kdl"
    src.write_text(masked_model("    LSTM(4, return_sequences=true)\n    GRU(2)"))
    program, graphs = load(src)
    graph = graphs["M"]
    code = generate_keras(graph, program, str(src))
    assert "mask_zero=True" in code
    out = tmp_path / "m_keras.py"
    out.write_text(code)
    model = import_path(out).build_model()
    rng = np.random.default_rng(0)
    weights = {
        layer.name: {w.name: rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.weights}
        for layer in graph.layers
    }
    for layer in graph.layers:
        model.get_layer(layer.name).set_weights(
            [weights[layer.name][w.name] for w in layer.weights]
        )
    (ours,) = create_session(build_model(graph, weights=weights)).run(None, {"x": IDS})
    theirs = model.predict(IDS, verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
