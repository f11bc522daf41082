"""Every optimizer, and the options every optimizer shares, against Keras 3's
train_on_batch: parameters after one and three steps from the same weights and batch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_oracle import (
    assert_every_step,
    assert_params,
    assert_slots,
    train_both,
)

keras = pytest.importorskip("keras")
L = keras.layers

MLP = """
model M {{
    input x: float32[6]
    Dense(8, activation=tanh)
    Dense(4, activation=softmax)
}}
train M {{
    loss = categorical_crossentropy
    optimizer = {optimizer}
}}
"""


def keras_mlp():
    inp = keras.Input((6,))
    y = L.Dense(8, activation="tanh")(inp)
    return keras.Model(inp, L.Dense(4, activation="softmax")(y))


def batch(seed=0, n=16):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    return x, y


OPTIMIZERS = [
    "SGD(learning_rate=0.1)",
    "SGD(learning_rate=0.1, momentum=0.9, nesterov=true)",
    "RMSprop",
    "RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, epsilon=1e-5, centered=true)",
    "RMSprop(learning_rate=0.01, centered=true)",
    "Adam",
    "Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-4, amsgrad=true)",
    "AdamW",
    "AdamW(learning_rate=0.01, weight_decay=0.1, beta_1=0.85, amsgrad=true)",
    "Adagrad",
    "Adagrad(learning_rate=0.05, initial_accumulator_value=0.5, epsilon=1e-4)",
    "Adadelta",
    "Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-5)",
    "Adamax",
    "Adamax(learning_rate=0.01, beta_1=0.7, beta_2=0.9, epsilon=1e-4)",
    "Nadam",
    "Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-4)",
    "Lion",
    "Lion(learning_rate=0.01, beta_1=0.8, beta_2=0.9)",
]

COMMON = [
    "SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.05)",
    "Adam(learning_rate=0.01, weight_decay=0.1)",
    "Nadam(learning_rate=0.01, weight_decay=0.1, clipnorm=0.05)",
    "SGD(learning_rate=0.5, clipnorm=0.1)",
    "RMSprop(learning_rate=0.01, clipvalue=0.01)",
    "Adam(learning_rate=0.01, clipvalue=0.005)",
    "SGD(learning_rate=0.5, global_clipnorm=0.1)",
    "Adagrad(learning_rate=0.05, global_clipnorm=0.02)",
    "Adam(learning_rate=0.01, use_ema=true, ema_momentum=0.5)",
    "SGD(learning_rate=0.1, use_ema=true, ema_momentum=0.5, ema_overwrite_frequency=2)",
    "Adam(learning_rate=0.01, gradient_accumulation_steps=2)",
    "Nadam(learning_rate=0.01, gradient_accumulation_steps=2, weight_decay=0.1)",
    "SGD(learning_rate=0.1, loss_scale_factor=128.0)",
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS + COMMON)
def test_optimizer_matches_keras(tmp_path, optimizer):
    """Parameters after one and after three steps (four with accumulation over 2: two
    updates), every slot after the last, the logged losses."""
    x, y = batch()
    steps = 4 if "gradient_accumulation_steps" in optimizer else 3
    run = train_both(MLP.format(optimizer=optimizer), tmp_path, keras_mlp, x, y, steps)
    assert_every_step(run)
    assert_params(run.state, run.expected)
    assert_slots(run)


def test_slots_start_as_keras_does(tmp_path):
    from tests.emit.train.keras_oracle import build, ktrans_graph
    from transpiler.emit.onnx import initial_weights

    graph = ktrans_graph(MLP.format(optimizer="Adagrad(initial_accumulator_value=0.25)"), tmp_path)
    tm = build(graph, graph.trains["default"], initial_weights(graph, seed=0))
    assert set(tm.slots) == {f"slot:{p}:accumulator" for p in tm.params}
    for value in tm.slots.values():
        assert np.all(value == np.float32(0.25))

    graph = ktrans_graph(MLP.format(optimizer="Nadam"), tmp_path)
    tm = build(graph, graph.trains["default"], initial_weights(graph, seed=0))
    assert tm.slots["slot:optimizer:u_product"].shape == ()
    assert tm.slots["slot:optimizer:u_product"] == np.float32(1.0)
    assert "new:slot:optimizer:u_product" in {o.name for o in tm.proto.graph.output}


def test_accumulation_steps_leave_parameters_alone(tmp_path):
    from tests.emit.train.keras_oracle import build, ktrans_graph, run_ktrans
    from transpiler.emit.onnx import initial_weights

    graph = ktrans_graph(
        MLP.format(optimizer="Adam(learning_rate=0.01, gradient_accumulation_steps=3)"), tmp_path
    )
    config = graph.trains["default"]
    tm = build(graph, config, initial_weights(graph, seed=0))
    x, y = batch()
    history, _ = run_ktrans(tm, [{"x": x, "target:output": y}] * 3, 0.01)
    for name, value in tm.params.items():
        np.testing.assert_array_equal(history[0][f"new:{name}"], value)
        np.testing.assert_array_equal(history[1][f"new:{name}"], value)
        assert not np.array_equal(history[2][f"new:{name}"], value)
        acc = f"new:slot:{name}:gradient_accumulator"
        assert np.any(history[1][acc] != 0) and np.all(history[2][acc] == 0)


def test_unknown_optimizer_is_not_implemented():
    from types import SimpleNamespace

    from transpiler.emit.onnx.builder import OpBuilder
    from transpiler.emit.train.optimizers import apply_optimizer

    config = SimpleNamespace(optimizer=SimpleNamespace(name="Ftrl", kwargs={}))
    with pytest.raises(NotImplementedError, match="Ftrl"):
        apply_optimizer(OpBuilder(), config, {}, {})


TWO = """
model Two {
    input x: float32[6]
    h = Dense(8, activation=tanh)(x)
    output a = Dense(1, activation=sigmoid)(h)
    output b = Dense(4, activation=softmax)(h)
}
train Two {
    loss = {a: binary_crossentropy, b: none}
    optimizer = Adam(learning_rate=0.01, weight_decay=0.1, global_clipnorm=0.1)
}
"""


def test_parameters_the_loss_does_not_reach_are_left_alone(tmp_path):
    """Keras gets no gradient for them: no update, no weight decay, slots untouched."""
    from tests.emit.train.keras_oracle import (
        build,
        compile_like,
        keras_slots,
        keras_weights_now,
        ktrans_graph,
        onnx_layout,
        run_ktrans,
        set_keras_weights,
    )
    from transpiler.emit.onnx import initial_weights

    graph = ktrans_graph(TWO, tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=1)
    x, _ = batch()
    ya = np.random.default_rng(4).integers(0, 2, (16, 1)).astype(np.float32)

    inp = keras.Input((6,))
    h = L.Dense(8, activation="tanh")(inp)
    km = keras.Model(
        inp, [L.Dense(1, activation="sigmoid")(h), L.Dense(4, activation="softmax")(h)]
    )
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    for _ in range(2):
        km.train_on_batch(x, ya)

    tm = build(graph, config, weights)
    _, state = run_ktrans(tm, [{"x": x, "target:a": ya}] * 2, 0.01)
    expected = onnx_layout(graph, keras_weights_now(km, graph))
    assert_params(state, expected)
    for name in ("dense_2/kernel", "dense_2/bias"):  # output b
        np.testing.assert_array_equal(state[name], tm.params[name])
    theirs = keras_slots(km, graph)
    slots = {k: v for k, v in state.items() if k.startswith("slot:")}
    assert slots and not any(k.startswith("slot:dense_2/") for k in slots)
    for name, value in slots.items():
        np.testing.assert_allclose(value, theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
