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


def test_normalization_layer_scale_and_custom_scale_layer_train_as_keras(tmp_path):
    """Normalization's adapted statistics stay as they are (non-trainable, no update);
    LayerScale's gamma trains; CustomScaleLayer passes gradients to both inputs."""
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    kdl = (
        "model M {\n input x: float32[5]\n"
        " n = x |> Normalization() |> Normalization(mean=[1.0, 2.0, 0.0, -1.0, 3.0],"
        " variance=[1.0, 4.0, 2.0, 0.5, 9.0], invert=true)\n"
        " h = n |> Dense(4, activation=tanh)\n"
        " s = h |> LayerScale(0.5, 4)\n"
        " CustomScaleLayer(0.3)(h, s)\n Dense(3, activation=softmax)\n}\n" + TRAIN
    )

    class FinalizedNormalization(L.Normalization):
        """Keras reads the statistics it computed from its weights in finalize_state;
        the oracle assigns the weights directly, so read them at each call."""

        def call(self, inputs):
            self.finalize_state()
            return super().call(inputs)

    def keras_model():
        inp = keras.Input((5,))
        n = FinalizedNormalization()(inp)
        n = L.Normalization(
            mean=[1.0, 2.0, 0.0, -1.0, 3.0], variance=[1.0, 4.0, 2.0, 0.5, 9.0], invert=True
        )(n)
        h = L.Dense(4, activation="tanh")(n)
        y = CustomScaleLayer(0.3)([h, LayerScale(0.5, 4)(h)])
        return keras.Model(inp, L.Dense(3, activation="softmax")(y))

    x = np.random.default_rng(2).normal(size=(6, 5)).astype(np.float32) * 3
    run = train_both(kdl, tmp_path, keras_model, x, onehot(6, 3, 4))
    check(run)
    assert "layer_scale/gamma" in run.state
