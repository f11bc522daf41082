"""activity_regularizer in training and evaluation, against Keras 3: every output of a
regularized layer call adds regularizer(output) / batch size to the loss (Layer.__call__).
The step's loss and parameters after each of three steps equal train_on_batch's; the
evaluation model's loss equals evaluate()'s (inference mode: Dropout off)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_oracle import (
    assert_every_step,
    compile_like,
    set_keras_weights,
    train_both,
)
from tests.emit.train.keras_step import ktrans_graph, onnx_layout
from transpiler.emit.train.names import LOSS_OUTPUT

keras = pytest.importorskip("keras")
L = keras.layers
R = keras.regularizers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

REGULARIZERS = {
    "l1(0.05)": lambda: R.L1(0.05),
    "l2(0.1)": lambda: R.L2(0.1),
    "l1_l2(l1=0.02, l2=0.05)": lambda: R.L1L2(l1=0.02, l2=0.05),
}


def kdl(inputs: str, body: str, optimizer="SGD(learning_rate=0.5)") -> str:
    return (
        f"model M {{\n    input x: {inputs}\n{body}\n}}\n"
        f"train M {{\n    loss = categorical_crossentropy\n    optimizer = {optimizer}\n}}\n"
    )


def batch(shape, classes=3, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


def check(kdl_text, tmp_path, keras_model, shape, steps=3, rtol=1e-5, atol=1e-6):
    """`steps` steps in both; every step's parameters and logged loss equal Keras's."""
    x, y = batch(shape)
    run = train_both(kdl_text, tmp_path, keras_model, x, y, steps=steps)
    # the inference model's other initializers (axes, shapes) are not parameters
    run.expected_steps = [{n: p[n] for n in run.tm.params} for p in run.expected_steps]
    assert_every_step(run, rtol, atol)
    return run


# ---------------------------------------------------------------- training steps


@pytest.mark.parametrize("reg", list(REGULARIZERS))
def test_dense_activity_regularizer_matches_keras(tmp_path, reg):
    """On the relu output (after the activation), l1, l2 and l1_l2."""
    text = kdl(
        "float32[5]",
        f"    Dense(6, activation=relu, activity_regularizer={reg})\n"
        "    Dense(3, activation=softmax)",
    )

    def keras_model():
        inp = keras.Input((5,))
        h = L.Dense(6, activation="relu", activity_regularizer=REGULARIZERS[reg]())(inp)
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    check(text, tmp_path, keras_model, (5,))


def test_conv2d_channels_last_activity_regularizer_matches_keras(tmp_path):
    """A channels_last Conv2D's output is stored channels-first: the penalty reads it as
    stored, the batch axis is still found."""
    text = kdl(
        "float32[5, 5, 2]",
        "    Conv2D(3, 3, padding=same, activation=tanh, activity_regularizer=l1_l2(0.01, 0.05))\n"
        "    Conv2D(2, 3, activity_regularizer=l2(0.05))\n"
        "    Flatten()\n"
        "    Dense(3, activation=softmax)",
    )

    def keras_model():
        inp = keras.Input((5, 5, 2))
        h = L.Conv2D(
            3,
            3,
            padding="same",
            activation="tanh",
            activity_regularizer=R.L1L2(0.01, 0.05),
        )(inp)
        h = L.Flatten()(L.Conv2D(2, 3, activity_regularizer=R.L2(0.05))(h))
        return keras.Model(inp, L.Dense(3, activation="softmax")(h))

    check(text, tmp_path, keras_model, (5, 5, 2), rtol=1e-4, atol=1e-5)


def test_recurrent_activity_regularizer_matches_keras(tmp_path):
    """A sequence (GRU, return_sequences) and every output of an LSTM with return_state,
    the unused h included, as Keras regularizes each returned tensor."""
    text = kdl(
        "float32[4, 3]",
        "    s = GRU(3, return_sequences=true, activity_regularizer=l1(0.05))(x)\n"
        "    y, h, c = LSTM(4, return_state=true, activity_regularizer=l2(0.1))(s)\n"
        "    z = Concatenate()(y, c)\n"
        "    Dense(3, activation=softmax)(z)",
    )

    def keras_model():
        inp = keras.Input((4, 3))
        s = L.GRU(3, return_sequences=True, activity_regularizer=R.L1(0.05))(inp)
        y, _, c = L.LSTM(4, return_state=True, activity_regularizer=R.L2(0.1))(s)
        out = L.Dense(3, activation="softmax")(L.Concatenate()([y, c]))
        return keras.Model(inp, out)

    check(text, tmp_path, keras_model, (4, 3))


@pytest.mark.parametrize("merge_mode", ["concat", "ave"])
def test_bidirectional_inner_activity_regularizers_match_keras(tmp_path, merge_mode):
    """Bidirectional calls its forward and backward layers: each regularizes its own
    output (before the merge) with its own regularizer."""
    text = kdl(
        "float32[4, 3]",
        "    Bidirectional(LSTM(3, return_sequences=true, activity_regularizer=l2(0.1)),\n"
        f"                  merge_mode={merge_mode},\n"
        "                  backward_layer=LSTM(3, return_sequences=true, go_backwards=true,\n"
        "                                      activity_regularizer=l1(0.05)))\n"
        "    Flatten()\n"
        "    Dense(3, activation=softmax)",
    )

    def keras_model():
        inp = keras.Input((4, 3))
        fwd = L.LSTM(3, return_sequences=True, activity_regularizer=R.L2(0.1))
        bwd = L.LSTM(3, return_sequences=True, go_backwards=True, activity_regularizer=R.L1(0.05))
        h = L.Bidirectional(fwd, merge_mode=merge_mode, backward_layer=bwd)(inp)
        return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(h)))

    check(text, tmp_path, keras_model, (4, 3))


def test_bidirectional_unmerged_with_states_matches_keras(tmp_path):
    """merge_mode=none and return_state: the forward layer regularizes its output and its
    states, the backward copy (same regularizer) its own."""
    text = kdl(
        "float32[4, 3]",
        "    f, b, hf, cf, hb, cb = Bidirectional(\n"
        "        LSTM(3, return_state=true, activity_regularizer=l1_l2(0.02, 0.1)),\n"
        "        merge_mode=none)(x)\n"
        "    z = Concatenate()(f, b, cb)\n"
        "    Dense(3, activation=softmax)(z)",
    )

    def keras_model():
        inp = keras.Input((4, 3))
        lstm = L.LSTM(3, return_state=True, activity_regularizer=R.L1L2(0.02, 0.1))
        f, b, _, _, _, cb = L.Bidirectional(lstm, merge_mode=None)(inp)
        out = L.Dense(3, activation="softmax")(L.Concatenate()([f, b, cb]))
        return keras.Model(inp, out)

    check(text, tmp_path, keras_model, (4, 3))


def test_bidirectional_inside_time_distributed_is_an_error(tmp_path):
    """Keras applies the inner layers' penalties once per time step there; not emitted:
    a clear error rather than a different loss, from `ktrans check` already (the model
    has a train block)."""
    from transpiler.errors import KdlErrors

    text = kdl(
        "float32[2, 4, 3]",
        "    TimeDistributed(Bidirectional(LSTM(3, activity_regularizer=l2(0.1))))\n"
        "    Flatten()\n"
        "    Dense(3, activation=softmax)",
    )
    with pytest.raises(KdlErrors, match=r"model.kdl:\d+:5: error: TimeDistributed .* inside"):
        ktrans_graph(text, tmp_path)


NO_PENALTY = {
    # TimeDistributed runs its layer's `call`, which skips activity regularization
    "time_distributed": (
        "    TimeDistributed(Dense(2, activation=tanh, activity_regularizer=l2(0.5)))",
        lambda: L.TimeDistributed(L.Dense(2, activation="tanh", activity_regularizer=R.L2(0.5))),
    ),
    # Keras 3's SimpleRNN never hands activity_regularizer to its base layer
    "simple_rnn": (
        "    SimpleRNN(2, return_sequences=true, activity_regularizer=l2(0.5))",
        lambda: L.SimpleRNN(2, return_sequences=True, activity_regularizer=R.L2(0.5)),
    ),
}


@pytest.mark.parametrize("case", list(NO_PENALTY))
def test_layers_keras_does_not_regularize_add_no_penalty(tmp_path, case):
    """Where Keras accepts activity_regularizer but adds no penalty, neither does ktrans:
    the loss is Keras's (and the penalty would be large)."""
    body, layer = NO_PENALTY[case]
    text = kdl("float32[4, 3]", f"{body}\n    Flatten()\n    Dense(3, activation=softmax)")

    def keras_model():
        inp = keras.Input((4, 3))
        return keras.Model(inp, L.Dense(3, activation="softmax")(L.Flatten()(layer()(inp))))

    run = check(text, tmp_path, keras_model, (4, 3), steps=1)
    assert not run.km.losses


def test_kernel_and_activity_regularizers_together_match_keras(tmp_path):
    """Weight and activity penalties add up, with Adam (3 steps, slots follow)."""
    text = kdl(
        "float32[5]",
        "    Dense(6, activation=sigmoid, kernel_regularizer=l2(0.02),\n"
        "          bias_regularizer=l1(0.01), activity_regularizer=l1(0.05))\n"
        "    Dense(3, activation=softmax, activity_regularizer=l2(0.2))",
        optimizer="Adam(learning_rate=0.05)",
    )

    def keras_model():
        inp = keras.Input((5,))
        h = L.Dense(
            6,
            activation="sigmoid",
            kernel_regularizer=R.L2(0.02),
            bias_regularizer=R.L1(0.01),
            activity_regularizer=R.L1(0.05),
        )(inp)
        out = L.Dense(3, activation="softmax", activity_regularizer=R.L2(0.2))(h)
        return keras.Model(inp, out)

    check(text, tmp_path, keras_model, (5,))


# ---------------------------------------------------------------- evaluation


def test_eval_model_loss_matches_keras_evaluate(tmp_path):
    """The evaluation model (inference mode: Dropout off) adds the activity penalties of
    each batch; batch means weighted by batch size are Keras's evaluate() loss, the last
    batch short. Also a Conv2D (channels-first storage)."""
    from transpiler.emit.code.train_eval import build_eval_model
    from transpiler.emit.onnx import initial_weights
    from transpiler.runtime.session import create_session

    text = kdl(
        "float32[4, 4, 2]",
        "    Conv2D(3, 3, padding=same, activation=relu, activity_regularizer=l2(0.05))\n"
        "    Flatten()\n"
        "    Dropout(0.5)\n"
        "    Dense(6, activation=tanh, kernel_regularizer=l2(0.01),\n"
        "          activity_regularizer=l1_l2(0.02, 0.1))\n"
        "    Dense(3, activation=softmax)",
    )
    graph = ktrans_graph(text, tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=4)

    inp = keras.Input((4, 4, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", activity_regularizer=R.L2(0.05))(inp)
    h = L.Dropout(0.5)(L.Flatten()(h))
    h = L.Dense(
        6,
        activation="tanh",
        kernel_regularizer=R.L2(0.01),
        activity_regularizer=R.L1L2(0.02, 0.1),
    )(h)
    km = keras.Model(inp, L.Dense(3, activation="softmax")(h))
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    x, y = batch((4, 4, 2), n=11)
    expected = km.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["loss"]

    proto = build_eval_model(graph, config, weights)
    session = create_session(proto)
    onnx_weights = onnx_layout(graph, weights)
    data = ("x", "target:output")
    state = {i.name: onnx_weights[i.name] for i in proto.graph.input if i.name not in data}
    losses, sizes = [], []
    for start in (0, 8):
        feed = {"x": x[start : start + 8], "target:output": y[start : start + 8], **state}
        (loss,) = session.run([LOSS_OUTPUT], feed)
        losses.append(float(loss))
        sizes.append(len(feed["x"]))
    assert np.average(losses, weights=sizes) == pytest.approx(expected, rel=1e-5)
