"""Preprocessing layers in training: a model that starts with them trains as Keras's
train_on_batch does (the loss and every parameter after each step)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_oracle import assert_every_step, train_both

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TRAIN = """
train M {
    loss = categorical_crossentropy
    optimizer = SGD(learning_rate=0.1)
}
"""


def check(run) -> None:
    """assert_every_step on the parameters (the inference model's other initializers,
    such as a Rescaling's constants, are no parameters)."""
    run.expected_steps = [
        {k: v for k, v in e.items() if k in run.state} for e in run.expected_steps
    ]
    assert run.expected_steps[0]
    assert_every_step(run)


def onehot(n, classes, seed):
    rng = np.random.default_rng(seed)
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


def test_rescaling_of_uint8_images_trains_as_keras(tmp_path):
    kdl = (
        "model M {\n input x: uint8[4, 4, 3]\n"
        " Rescaling([1 / 255, 2 / 255, 0.5 / 255], offset=-0.5)\n"
        " Conv2D(4, 3, activation=relu)\n Flatten()\n Dense(3, activation=softmax)\n}\n" + TRAIN
    )

    def keras_model():
        inp = keras.Input((4, 4, 3), dtype="uint8")
        y = L.Rescaling([1 / 255, 2 / 255, 0.5 / 255], offset=-0.5)(inp)
        y = L.Flatten()(L.Conv2D(4, 3, activation="relu")(y))
        return keras.Model(inp, L.Dense(3, activation="softmax")(y))

    x = np.random.default_rng(0).integers(0, 256, size=(6, 4, 4, 3)).astype(np.uint8)
    check(train_both(kdl, tmp_path, keras_model, x, onehot(6, 3, 1)))
