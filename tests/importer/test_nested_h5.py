"""Legacy whole-model `.h5` files (Keras 3's `model.save("m.h5")`) with nested models.

Keras writes a nested model's weights in one group, named by their variables' paths
(`stage/conv2d/kernel`, `outer/inner/dense_5/kernel`), trainable weights first: `ktrans
import --weights-out`, and `ktrans build --weights model.h5`, split them per layer and
give Keras's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.cli import main

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def functional_in_functional():
    """A functional block (Conv2D, BatchNormalization, Dense: the legacy order puts the
    Dense kernel before the BatchNormalization statistics) inside a functional model."""
    x = keras.Input((6, 6, 3))
    y = layers.Conv2D(4, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Dense(5, activation="relu")(y)
    stage = keras.Model(x, y, name="stage")
    image = keras.Input((6, 6, 3), name="image")
    z = layers.GlobalAveragePooling2D()(stage(image))
    model = keras.Model(image, layers.Dense(2)(z), name="Toy")
    feed = np.random.default_rng(1).normal(size=(3, 6, 6, 3)).astype(np.float32)
    return model, feed


def sequential_in_sequential():
    inner = keras.Sequential(
        [keras.Input((5,)), layers.Dense(4), layers.BatchNormalization(), layers.Dense(3)],
        name="inner",
    )
    model = keras.Sequential([keras.Input((5,)), inner, layers.Dense(2)], name="outer")
    feed = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    return model, feed


def sequential_in_functional():
    stage = keras.Sequential(
        [layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()],
        name="stage",
    )
    image = keras.Input((6, 6, 3), name="image")
    z = layers.GlobalAveragePooling2D()(stage(image))
    model = keras.Model(image, layers.Dense(2)(z), name="Toy")
    feed = np.random.default_rng(3).normal(size=(2, 6, 6, 3)).astype(np.float32)
    return model, feed


@pytest.mark.parametrize(
    "make", [functional_in_functional, sequential_in_sequential, sequential_in_functional]
)
def test_import_and_build_weights_from_nested_h5(make, tmp_path, capsys):
    from tests.importer.roundtrip import randomize
    from transpiler.runtime.session import create_session

    model, feed = make()
    randomize(model)
    path = tmp_path / "model.h5"
    model.save(str(path))
    expected = model.predict(feed, verbose=0)
    kdl, npz = tmp_path / "model.kdl", tmp_path / "model.npz"
    assert main(["import", str(path), "-o", str(kdl), "--weights-out", str(npz)]) == 0
    assert "model nested in the Keras model" in kdl.read_text()
    for weights in (npz, path):
        onnx_path = tmp_path / f"{weights.suffix[1:]}.onnx"
        assert main(["build", str(kdl), "--weights", str(weights), "-o", str(onnx_path)]) == 0
        session = create_session(str(onnx_path))
        (out,) = session.run(None, {session.get_inputs()[0].name: feed})
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    capsys.readouterr()


HAND_WRITTEN = """
block Stage() {
    input x
    Conv2D(4, 3, padding=same, name=conv)
    BatchNormalization(name=bn)
    ReLU()
}

model Toy {
    input image: float32[6, 6, 3]

    Stage()
    GlobalAveragePooling2D()
    Dense(2, name=head)
}
"""


def test_build_weights_from_nested_h5_with_other_layer_names(tmp_path, capsys):
    """Names that are not Keras's: the file's model_config says which layers the nested
    group holds, and the layers match by position."""
    from tests.importer.roundtrip import randomize
    from transpiler.runtime.session import create_session

    model, feed = sequential_in_functional()
    randomize(model, seed=4)
    path = tmp_path / "model.h5"
    model.save(str(path))
    kdl, onnx_path = tmp_path / "hand.kdl", tmp_path / "hand.onnx"
    kdl.write_text(HAND_WRITTEN)
    assert main(["build", str(kdl), "--weights", str(path), "-o", str(onnx_path)]) == 0
    (out,) = create_session(str(onnx_path)).run(None, {"image": feed})
    np.testing.assert_allclose(out, model.predict(feed, verbose=0), rtol=1e-5, atol=1e-5)
    capsys.readouterr()
