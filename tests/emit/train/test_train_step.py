"""One optimizer step: ktrans's training model against Keras 3's train_on_batch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_step import (
    keras_weights_now,
    ktrans_graph,
    onnx_layout,
    run_step,
    set_keras_weights,
)
from transpiler.emit.onnx import initial_weights
from transpiler.emit.train.names import LOSS_OUTPUT

keras = pytest.importorskip("keras")
L = keras.layers

MLP = """
model M {{
    input x: float32[6]
    Dense(8, activation=relu, kernel_regularizer=l2(0.01))
    Dense(4, activation=softmax)
}}
train M {{
    loss = categorical_crossentropy
    optimizer = {optimizer}
    metrics = [accuracy]
}}
"""


def keras_mlp():
    inp = keras.Input((6,))
    y = L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01))(inp)
    return keras.Model(inp, L.Dense(4, activation="softmax")(y))


@pytest.mark.parametrize(
    ("optimizer", "keras_optimizer"),
    [
        ("SGD(learning_rate=0.1)", lambda: keras.optimizers.SGD(0.1)),
        ("SGD(learning_rate=0.1, momentum=0.9)", lambda: keras.optimizers.SGD(0.1, 0.9)),
        (
            "SGD(learning_rate=0.1, momentum=0.9, nesterov=true)",
            lambda: keras.optimizers.SGD(0.1, 0.9, nesterov=True),
        ),
    ],
)
def test_one_and_three_steps_match_keras(tmp_path, optimizer, keras_optimizer):
    graph = ktrans_graph(MLP.format(optimizer=optimizer), tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]

    km = keras_mlp()
    set_keras_weights(km, graph, weights)
    km.compile(optimizer=keras_optimizer(), loss="categorical_crossentropy", metrics=["accuracy"])
    keras_logs = [km.train_on_batch(x, y, return_dict=True) for _ in range(3)]

    history, state = run_step(graph, config, weights, {"x": x}, {"output": y}, steps=3)
    expected = onnx_layout(graph, keras_weights_now(km, graph))
    for name, value in expected.items():
        np.testing.assert_allclose(state[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    # Keras logs the loss before the step's update (regularization included)
    np.testing.assert_allclose(history[0][LOSS_OUTPUT], keras_logs[0]["loss"], rtol=1e-5)
    assert history[0]["metric:output:accuracy"] == pytest.approx(keras_logs[0]["accuracy"])
