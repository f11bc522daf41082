"""Every loss against Keras 3's train_on_batch: the logged loss of each step and the
parameters after two SGD steps (so the gradient of the loss is checked too)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_oracle import assert_every_step, train_both
from transpiler.emit.train.names import LOSS_OUTPUT

keras = pytest.importorskip("keras")
L = keras.layers

KDL = """
model M {{
    input x: float32[6]
    Dense(8, activation=tanh)
    Dense({units}, activation={activation})
}}
train M {{
    loss = {loss}
    optimizer = SGD(learning_rate=0.1)
}}
"""


def keras_mlp(units, activation):
    def make():
        inp = keras.Input((6,))
        y = L.Dense(8, activation="tanh")(inp)
        return keras.Model(inp, L.Dense(units, activation=activation)(y))

    return make


def targets(kind: str, n: int, units: int, rng):
    if kind == "onehot":
        return np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
    if kind == "ids":
        return rng.integers(0, units, n).astype(np.int64)
    if kind == "ids_ignored":
        ids = rng.integers(0, units, n).astype(np.int64)
        ids[::3] = 1  # class 1 is the ignored one
        return ids
    if kind == "binary":
        return rng.integers(0, 2, (n, units)).astype(np.float32)
    if kind == "signs":
        return (2 * rng.integers(0, 2, (n, units)) - 1).astype(np.float32)
    if kind == "mixed":  # not all 0/1: hinge keeps them as they are
        return rng.choice([0.0, 1.0, 0.5], (n, units)).astype(np.float32)
    if kind == "distribution":
        p = rng.random((n, units)).astype(np.float32) + 0.05
        return p / p.sum(-1, keepdims=True)
    if kind == "positive":
        return rng.random((n, units)).astype(np.float32) * 3
    if kind == "real":
        return rng.normal(size=(n, units)).astype(np.float32) * 2
    if kind == "away":  # real, but not near zero (MAPE divides by the target)
        signs = 2 * rng.integers(0, 2, (n, units)) - 1
        return (signs * rng.uniform(0.5, 2.5, (n, units))).astype(np.float32)
    raise ValueError(kind)


CASES = [
    # loss, units, activation, target kind
    ("binary_crossentropy", 3, "sigmoid", "binary"),
    ("binary_crossentropy(from_logits=true)", 3, "linear", "binary"),
    ("binary_crossentropy(label_smoothing=0.2)", 1, "sigmoid", "binary"),
    ("binary_crossentropy(from_logits=true, label_smoothing=0.1)", 3, "linear", "binary"),
    ("binary_crossentropy(reduction=sum)", 3, "sigmoid", "binary"),
    ("categorical_crossentropy", 4, "softmax", "onehot"),
    ("categorical_crossentropy(from_logits=true)", 4, "linear", "onehot"),
    ("categorical_crossentropy(label_smoothing=0.1)", 4, "softmax", "onehot"),
    (
        "categorical_crossentropy(from_logits=true, label_smoothing=0.2, reduction=sum)",
        4,
        "linear",
        "onehot",
    ),
    ("sparse_categorical_crossentropy", 4, "softmax", "ids"),
    ("sparse_categorical_crossentropy(from_logits=true)", 4, "linear", "ids"),
    ("sparse_categorical_crossentropy(ignore_class=1)", 4, "softmax", "ids_ignored"),
    (
        "sparse_categorical_crossentropy(from_logits=true, ignore_class=1)",
        4,
        "linear",
        "ids_ignored",
    ),
    ("sparse_categorical_crossentropy(ignore_class=1, reduction=sum)", 4, "softmax", "ids_ignored"),
    (
        "sparse_categorical_crossentropy(ignore_class=1, reduction=mean_with_sample_weight)",
        4,
        "softmax",
        "ids_ignored",
    ),
    ("binary_focal_crossentropy", 3, "sigmoid", "binary"),
    (
        "binary_focal_crossentropy(apply_class_balancing=true, alpha=0.4, gamma=1.5, "
        "from_logits=true, label_smoothing=0.1)",
        3,
        "linear",
        "binary",
    ),
    ("categorical_focal_crossentropy", 4, "softmax", "onehot"),
    (
        "categorical_focal_crossentropy(alpha=0.5, gamma=3.0, from_logits=true, "
        "label_smoothing=0.1)",
        4,
        "linear",
        "onehot",
    ),
    ("mean_squared_error", 3, "linear", "real"),
    ("mse(reduction=sum)", 3, "linear", "real"),
    ("mean_absolute_error", 3, "linear", "real"),
    ("mean_absolute_percentage_error", 3, "linear", "away"),
    ("mean_squared_logarithmic_error", 3, "softplus", "positive"),
    ("huber", 3, "linear", "real"),
    ("huber(delta=0.3)", 3, "linear", "real"),
    ("log_cosh", 3, "linear", "real"),
    ("kl_divergence", 4, "softmax", "distribution"),
    ("poisson", 3, "softplus", "positive"),
    ("hinge", 3, "linear", "binary"),
    ("hinge", 3, "linear", "signs"),
    ("hinge", 3, "linear", "mixed"),
    ("squared_hinge", 3, "linear", "binary"),
    ("categorical_hinge", 4, "linear", "onehot"),
    ("cosine_similarity", 3, "linear", "real"),
]


@pytest.mark.parametrize(("loss", "units", "activation", "kind"), CASES)
def test_loss_matches_keras(tmp_path, loss, units, activation, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = targets(kind, 16, units, rng)
    kdl = KDL.format(units=units, activation=activation, loss=loss)
    run = train_both(kdl, tmp_path, keras_mlp(units, activation), x, y, steps=2)
    for log, out in zip(run.keras_logs, run.history):
        np.testing.assert_allclose(out[LOSS_OUTPUT], log["loss"], rtol=2e-6, atol=1e-7)
    assert_every_step(run)


def test_sparse_targets_are_int64_class_ids():
    from transpiler.emit.train.losses import target_type
    from transpiler.graph.types import TensorType
    from transpiler.training.config import LossSpec

    out = TensorType("float32", ("batch", 10))
    sparse = LossSpec("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", {})
    assert target_type(sparse, out) == TensorType("int64", ("batch",))
    dense = LossSpec("categorical_crossentropy", "CategoricalCrossentropy", {})
    assert target_type(dense, out) == out


def test_unsupported_loss_names_itself():
    from types import SimpleNamespace

    from transpiler.emit.onnx.builder import OpBuilder
    from transpiler.emit.train.losses import total_loss

    config = SimpleNamespace(loss={"y": SimpleNamespace(name="ctc", kwargs={})}, loss_weights={})
    graph = SimpleNamespace(outputs={"y": SimpleNamespace(type=SimpleNamespace(shape=(1, 2)))})
    with pytest.raises(NotImplementedError, match="ctc"):
        total_loss(OpBuilder(), config, graph, {"y": "y"}, {"y": "t"}, {})
