"""Training with Keras masks (Embedding(mask_zero=true)) against Keras 3's train_on_batch:
recurrent layers skip masked timesteps in their unrolled training form (Where on the mask),
and the loss of an output that still carries the mask (a per-timestep output) weights
timesteps by it, as Keras's Loss does. Parameters after each step, the logged loss, and
afterwards the inference model (ONNX's recurrent ops over the compacted sequence) equal the
training-mode forward pass and Keras.

Also: BatchNormalization's masked batch statistics, and the errors for what ktrans does
not reproduce (a mask-weighted metric, a masked Softmax layer).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.test_recurrent_training import (
    SGD,
    assert_inference_agrees,
    assert_matches_keras,
    kdl_model,
    train_pair,
)
from transpiler.emit.train.names import LOSS_OUTPUT

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

VOCAB, STEPS, CLASSES = 10, 5, 3
IDS = np.array(
    [
        [1, 2, 0, 3, 0],  # right padding and a gap
        [0, 0, 4, 5, 6],  # left padding
        [7, 8, 9, 1, 2],  # whole
        [0, 0, 0, 0, 0],  # empty
        [0, 3, 0, 0, 5],  # scattered
        [6, 0, 0, 0, 0],  # one token
    ],
    np.int64,
)
FULL = IDS[[0, 1, 2, 4, 5]]  # no empty sample: a mean over no step is nan, in Keras too
INPUT = f"    input x: int64[{STEPS}]"
EMBED = f"    Embedding({VOCAB}, 4, mask_zero=true)\n"


def keras_model(layers):
    def make():
        inp = keras.Input((STEPS,), dtype="int64")
        h = L.Embedding(VOCAB, 4, mask_zero=True)(inp)
        for layer in layers():
            h = layer(h)
        return keras.Model(inp, h)

    return make


def one_hot(shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, shape)]


SOFTMAX = f"Dense({CLASSES}, activation=softmax)"
# (kdl body, Keras layers after the Embedding, per-timestep output, optimizer, ids)
CASES = {
    "lstm_sequences_masked_loss": (
        f"    LSTM(4, return_sequences=true)\n    {SOFTMAX}",
        lambda: [L.LSTM(4, return_sequences=True), L.Dense(CLASSES, activation="softmax")],
        True,
        SGD,
        IDS,
    ),
    "lstm_last_output": (
        f"    LSTM(4)\n    {SOFTMAX}",
        lambda: [L.LSTM(4), L.Dense(CLASSES, activation="softmax")],
        False,
        SGD,
        IDS,
    ),
    "bidirectional_gru_backwards_then_simple_rnn": (
        "    Bidirectional(GRU(3, return_sequences=true))\n"
        f"    SimpleRNN(3, go_backwards=true, return_sequences=true)\n    {SOFTMAX}",
        lambda: [
            L.Bidirectional(L.GRU(3, return_sequences=True)),
            L.SimpleRNN(3, go_backwards=True, return_sequences=True),
            L.Dense(CLASSES, activation="softmax"),
        ],
        True,
        "Adam(learning_rate=0.01)",
        IDS,
    ),
    "attention_pooling": (
        "    h = x |> Embedding(10, 4, mask_zero=true)\n"
        "    MultiHeadAttention(2, 2)(h, h) |> GlobalAveragePooling1D() |> " + SOFTMAX,
        lambda: None,
        False,
        SGD,
        FULL,
    ),
}


def attention_pooling():
    inp = keras.Input((STEPS,), dtype="int64")
    h = L.Embedding(VOCAB, 4, mask_zero=True)(inp)
    h = L.GlobalAveragePooling1D()(L.MultiHeadAttention(2, 2)(h, h))
    return keras.Model(inp, L.Dense(CLASSES, activation="softmax")(h))


@pytest.mark.parametrize("case", list(CASES))
def test_masked_training_matches_keras(tmp_path, case):
    body, layers, per_step, optimizer, ids = CASES[case]
    if case == "attention_pooling":
        kdl = kdl_model(INPUT, body, optimizer)
        make = attention_pooling
    else:
        kdl = kdl_model(INPUT, EMBED + body, optimizer)
        make = keras_model(layers)
    y = one_hot((len(ids), STEPS) if per_step else (len(ids),))
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, make, {"x": ids}, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
    assert_inference_agrees(graph, state, {"x": ids}, km)


def test_the_mask_changes_the_loss(tmp_path):
    """The per-timestep loss leaves the masked steps out: the same model with the mask
    ending before the output (Conv1D drops it) logs another loss."""
    y = one_hot((len(IDS), STEPS))
    losses = []
    for extra, layers in (
        ("", []),
        ("    Conv1D(4, 1)\n", [L.Conv1D]),
    ):
        body = EMBED + extra + f"    LSTM(4, return_sequences=true)\n    {SOFTMAX}"
        make = keras_model(
            lambda layers=layers: [
                *(cls(4, 1) for cls in layers),
                L.LSTM(4, return_sequences=True),
                L.Dense(CLASSES, activation="softmax"),
            ]
        )
        _, tm, history, _, expected, logs, _ = train_pair(
            kdl_model(INPUT, body, SGD), tmp_path, make, {"x": IDS}, y, 1
        )
        assert_matches_keras(tm, history, expected, logs)
        losses.append(float(history[0][LOSS_OUTPUT]))
    assert abs(losses[0] - losses[1]) > 1e-3


# ---------------------------------------------------------------- errors


def test_mask_weighted_metric_is_an_error(tmp_path):
    """`check` reports it at the metric (tests/test_train_check.py has the span)."""
    from tests.emit.train.keras_step import ktrans_graph
    from transpiler.errors import KdlErrors

    kdl = kdl_model(INPUT, EMBED + f"    LSTM(4, return_sequences=true)\n    {SOFTMAX}", SGD)
    kdl = kdl.replace("optimizer =", "metrics = [accuracy]\n    optimizer =")
    with pytest.raises(KdlErrors) as info:
        ktrans_graph(kdl, tmp_path)
    message = str(info.value)
    assert "carries a Keras mask" in message and "categorical_accuracy" in message


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "time_distributed"])
def test_masked_batch_normalization_trains_on_the_unmasked_steps(tmp_path, wrapped):
    """Keras's BatchNormalization computes its batch statistics (and so its new moving
    statistics) over the unmasked steps only; TimeDistributed hands it each step's mask."""
    bn = "BatchNormalization(momentum=0.9)"
    call = f"TimeDistributed({bn})" if wrapped else bn
    body = EMBED + f"    {call}\n    LSTM(4)\n    {SOFTMAX}"

    def layers():
        bn_layer = L.BatchNormalization(momentum=0.9)
        return [
            L.TimeDistributed(bn_layer) if wrapped else bn_layer,
            L.LSTM(4),
            L.Dense(CLASSES, activation="softmax"),
        ]

    _, tm, history, state, expected, logs, _ = train_pair(
        kdl_model(INPUT, body, SGD), tmp_path, keras_model(layers), {"x": IDS}, one_hot(6), 2
    )
    assert_matches_keras(tm, history, expected, logs)
    for name in tm.buffers:  # the moving statistics
        np.testing.assert_allclose(state[name], expected[-1][name], rtol=1e-5, err_msg=name)
