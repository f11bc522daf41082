"""Keyword call arguments in training, against Keras 3's train_on_batch from the same
weights (parameters after each of 3 steps, and the logged loss): an encoder-decoder whose
decoder starts from the encoder's states (`initial_state=[h, c]`, the unrolled cells take
them), attention under an attention_mask and a causal mask, and an explicit mask= that
the loss then leaves the masked steps out by (Keras's output mask)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.test_recurrent_training import (
    assert_inference_agrees,
    assert_matches_keras,
    kdl_model,
    train_pair,
)

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def one_hot(rng, shape, classes) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, shape)]


def test_encoder_decoder_matches_keras(tmp_path):
    """lstm_seq2seq in small: the decoder's initial states are the encoder's final ones."""
    kdl = kdl_model(
        "    input enc: float32[5, 6]\n    input dec: float32[4, 7]",
        "    _, h, c = LSTM(8, return_state=true)(enc)\n"
        "    y, _, _ = LSTM(8, return_sequences=true, return_state=true)(dec,\n"
        "                                                    initial_state=[h, c])\n"
        "    output probs = Dense(7, activation=softmax)(y)",
        "Adam(learning_rate=0.01)",
    )

    def keras_model():
        enc, dec = keras.Input((5, 6)), keras.Input((4, 7))
        _, h, c = L.LSTM(8, return_state=True)(enc)
        y, _, _ = L.LSTM(8, return_sequences=True, return_state=True)(dec, initial_state=[h, c])
        return keras.Model([enc, dec], L.Dense(7, activation="softmax")(y))

    rng = np.random.default_rng(0)
    feeds = {"enc": one_hot(rng, (6, 5), 6), "dec": one_hot(rng, (6, 4), 7)}
    y = one_hot(rng, (6, 4), 7)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_model, feeds, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
    assert_inference_agrees(graph, state, feeds, km)


def test_attention_masks_match_keras(tmp_path):
    """attention_mask (a bool model input) and use_causal_mask through the training graph.
    SGD: the key projection's bias gets a gradient of zero in exact arithmetic (softmax
    ignores a shift shared by a row), which Adam would blow up from rounding noise."""
    kdl = kdl_model(
        "    input q: float32[4, 6]\n    input v: float32[5, 6]\n    input m: bool[4, 5]",
        "    a = MultiHeadAttention(num_heads=2, key_dim=3)(query=q, value=v, attention_mask=m)\n"
        "    b = MultiHeadAttention(num_heads=2, key_dim=3)(a, a, use_causal_mask=true)\n"
        "    output probs = Dense(3, activation=softmax)(GlobalAveragePooling1D()(b))",
        "SGD(learning_rate=0.5)",
    )

    def keras_model():
        q, v = keras.Input((4, 6)), keras.Input((5, 6))
        m = keras.Input((4, 5), dtype="bool")
        a = L.MultiHeadAttention(2, 3)(q, v, attention_mask=m)
        b = L.MultiHeadAttention(2, 3)(a, a, use_causal_mask=True)
        return keras.Model(
            [q, v, m], L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(b))
        )

    rng = np.random.default_rng(1)
    mask = rng.random((6, 4, 5)) < 0.6
    mask[..., 0] = True
    feeds = {
        "q": rng.normal(size=(6, 4, 6)).astype(np.float32),
        "v": rng.normal(size=(6, 5, 6)).astype(np.float32),
        "m": mask,
    }
    y = one_hot(rng, (6,), 3)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_model, feeds, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)


def test_explicit_mask_matches_keras(tmp_path):
    """mask= skips steps in the unrolled cells, and the returned sequence carries it into
    the loss (Keras masks the loss by the output's mask)."""
    kdl = kdl_model(
        "    input x: float32[5, 3]\n    input steps: bool[5]\n    input h: float32[4]",
        "    y = GRU(4, return_sequences=true)(x, initial_state=h, mask=steps)\n"
        "    output probs = Dense(3, activation=softmax)(y)",
        "SGD(learning_rate=0.5)",
    )

    def keras_model():
        x, steps, h = keras.Input((5, 3)), keras.Input((5,), dtype="bool"), keras.Input((4,))
        y = L.GRU(4, return_sequences=True)(x, initial_state=h, mask=steps)
        return keras.Model([x, steps, h], L.Dense(3, activation="softmax")(y))

    rng = np.random.default_rng(2)
    steps = rng.random((6, 5)) < 0.7
    steps[:, 0] = True
    feeds = {
        "x": rng.normal(size=(6, 5, 3)).astype(np.float32),
        "steps": steps,
        "h": rng.normal(size=(6, 4)).astype(np.float32),
    }
    y = one_hot(rng, (6, 5), 3)
    graph, tm, history, state, expected, logs, km = train_pair(
        kdl, tmp_path, keras_model, feeds, y, steps=3
    )
    assert_matches_keras(tm, history, expected, logs)
