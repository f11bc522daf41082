"""Core layers and expressions: ONNX on onnxruntime equals Keras 3 on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers
ops = keras.ops
RNG = np.random.default_rng(0)


def x(*shape):
    return RNG.normal(size=(4, *shape)).astype(np.float32)


ACTIVATIONS = [
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_dense_activations(tmp_path, act):
    kdl = f"model M {{\n input x: float32[6]\n Dense(5, activation={act})\n}}\n"
    inp = keras.Input((6,))
    km = keras.Model(inp, layers.Dense(5, activation=act)(inp))
    compare(kdl, km, {"x": x(6)}, tmp_path)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_rank3_and_dropout(tmp_path, use_bias):
    kdl = (
        f"model M {{\n input x: float32[3, 6]\n Dense(5, use_bias={str(use_bias).lower()})\n"
        " Dropout(0.5)\n Activation(tanh)\n}\n"
    )
    inp = keras.Input((3, 6))
    y = layers.Dense(5, use_bias=use_bias)(inp)
    y = layers.Activation("tanh")(layers.Dropout(0.5)(y))
    compare(kdl, keras.Model(inp, y), {"x": x(3, 6)}, tmp_path)


def test_embedding(tmp_path):
    kdl = "model M {\n input t: int64[7]\n Embedding(50, 4)\n}\n"
    inp = keras.Input((7,), dtype="int64")
    km = keras.Model(inp, layers.Embedding(50, 4)(inp))
    ids = RNG.integers(0, 50, size=(4, 7)).astype(np.int64)
    compare(kdl, km, {"t": ids}, tmp_path)


def test_shared_dense(tmp_path):
    kdl = (
        "model M {\n input a: float32[6]\n input b: float32[6]\n enc = Dense(3)\n"
        " output o = enc(a) * enc(b)\n}\n"
    )
    a, b = keras.Input((6,)), keras.Input((6,))
    enc = layers.Dense(3)
    km = keras.Model([a, b], enc(a) * enc(b))
    compare(kdl, km, {"a": x(6), "b": x(6)}, tmp_path)


EXPRESSIONS = [
    ("(v - 0.5) * 2.0 / 3", lambda v: (v - 0.5) * 2.0 / 3),
    ("1.0 - v", lambda v: 1.0 - v),
    ("v ** 2 + abs(v)", lambda v: v**2 + ops.abs(v)),
    (
        "sigmoid(v) * tanh(v) + mean(v, axis=-1, keepdims=true)",
        lambda v: ops.sigmoid(v) * ops.tanh(v) + ops.mean(v, axis=-1, keepdims=True),
    ),
    ("sum(v, axis=1)", lambda v: ops.sum(v, axis=1)),
    ("max(v, axis=[1, 2])", lambda v: ops.max(v, axis=[1, 2])),
    ("softmax(v, axis=1)", lambda v: ops.softmax(v, axis=1)),
    ("log_softmax(v)", lambda v: ops.log_softmax(v)),
    ("exp(-square(v))", lambda v: ops.exp(-ops.square(v))),
    (
        "sqrt(abs(v)) + log(abs(v) + 1.0)",
        lambda v: ops.sqrt(ops.abs(v)) + ops.log(ops.abs(v) + 1.0),
    ),
    ("reshape(v, [12, 2])", lambda v: ops.reshape(v, (-1, 12, 2))),
    ("transpose(v, [0, 2, 1])", lambda v: ops.transpose(v, (0, 2, 1))),
    ("v[:, 1]", lambda v: v[:, 1]),
    ("v[:, 1:3, ::2]", lambda v: v[:, 1:3, ::2]),
    ("v[..., -1]", lambda v: v[..., -1]),
    ("concat(v, relu(v), axis=1)", lambda v: ops.concatenate([v, ops.relu(v)], axis=1)),
    ("maximum(v, 0.1) + minimum(v, v * 2)", lambda v: ops.maximum(v, 0.1) + ops.minimum(v, v * 2)),
    ("clip(v, -0.5, 0.5)", lambda v: ops.clip(v, -0.5, 0.5)),
    ("expand_dims(v, 1)", lambda v: ops.expand_dims(v, 1)),
    ("v @ transpose(v, [0, 2, 1])", lambda v: ops.matmul(v, ops.transpose(v, (0, 2, 1)))),
    (
        "gelu(v) + silu(v) + elu(v) + selu(v)",
        lambda v: ops.gelu(v, approximate=False) + ops.silu(v) + ops.elu(v) + ops.selu(v),
    ),
]


@pytest.mark.parametrize(("expr", "fn"), EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_expressions(tmp_path, expr, fn):
    kdl = f"model M {{\n input v: float32[4, 6]\n output y = {expr}\n}}\n"
    inp = keras.Input((4, 6))
    km = keras.Model(inp, fn(inp))
    compare(kdl, km, {"v": x(4, 6)}, tmp_path, randomize=False)


def test_reference_evaluator_agrees(tmp_path):
    """A second, independent ONNX runtime gives the same answer."""
    kdl = (
        "model M {\n input x: float32[6]\n Dense(5, activation=relu)\n"
        " Dense(3, activation=softmax)\n}\n"
    )
    inp = keras.Input((6,))
    km = keras.Model(
        inp, layers.Dense(3, activation="softmax")(layers.Dense(5, activation="relu")(inp))
    )
    compare(kdl, km, {"x": x(6)}, tmp_path, runtime="reference")
