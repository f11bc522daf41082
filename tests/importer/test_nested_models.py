"""Models nested in a Keras model, through import and `codegen --target keras` (issue 13
§2): the import writes each nested model as a block with no parameters, and the Keras
code writes that block back as a nested model (a Sequential for a chain, a functional
model where it branches), so the written-back model has the original's config layer for
layer, nesting included, and importing it gives the same .kdl text. A 1-epoch
`ktrans train` writes a `.weights.h5` in the nested layout, which the generated model
loads and then predicts what the trained ONNX model predicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.importer.roundtrip import keras_module
from transpiler.importer import import_keras

keras = pytest.importorskip("keras")
layers = keras.layers


def nested_keras_model():
    """features -> stem (a Sequential) -> branch (functional: two paths, one of them a
    Sequential nested in it, concatenated) -> head."""
    stem = keras.Sequential(
        [layers.Dense(16, activation="relu", name="stem_dense"), layers.LayerNormalization()],
        name="stem",
    )
    branch_in = keras.Input((16,), name="branch_in")
    left = layers.Dense(8, name="left")(branch_in)
    path = keras.Sequential(
        [layers.Dense(8, activation="tanh", name="right"), layers.Dropout(0.1)], name="path"
    )
    joined = layers.Concatenate(name="join")([left, path(branch_in)])
    branch = keras.Model(branch_in, joined, name="branch")
    x = keras.Input((6,), name="features")
    out = layers.Dense(3, activation="softmax", name="head")(branch(stem(x)))
    model = keras.Model(x, out, name="Nested")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    return model


def comparable(config):
    """A model config without Keras's per-session object ids."""
    if isinstance(config, dict):
        return {k: comparable(v) for k, v in config.items() if k != "shared_object_id"}
    if isinstance(config, list):
        return [comparable(v) for v in config]
    return config


def structure(model) -> list:
    """The model's layers by name and class, nested models opened."""
    return [
        (la.name, type(la).__name__, structure(la) if isinstance(la, keras.Model) else None)
        for la in model.layers
    ]


def body(text: str) -> str:
    """The .kdl text after the header comment (which names the file)."""
    return text.split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """(the Keras model, the import of its .keras, a folder)."""
    root = tmp_path_factory.mktemp("nested")
    model = nested_keras_model()
    path = root / "Nested.keras"
    model.save(str(path))
    return model, import_keras(path), root


def rebuilt(imported_model, root):
    from tests.importer.roundtrip import load_text

    program, graph = load_text(imported_model.text)
    return keras_module(graph, program, root)


def test_import_writes_blocks_and_codegen_writes_nested_models(imported):
    _, result, root = imported
    assert "block Stem() {" in result.text and "block Branch() {" in result.text
    from tests.importer.roundtrip import load_text
    from transpiler.emit.code.keras import generate_keras

    program, graph = load_text(result.text)
    source = generate_keras(graph, program, "nested.kdl")
    assert "def build_stem() -> keras.Sequential:" in source
    assert "def build_branch() -> keras.Model:" in source
    assert "def build_path() -> keras.Sequential:" in source
    assert "x = build_stem()(features)" in source


def test_the_written_back_model_has_the_original_config_and_imports_the_same(imported):
    model, result, root = imported
    again = rebuilt(result, root)
    twin = again.build_model()
    again.compile_model(twin)
    assert structure(twin) == structure(model)
    assert structure(twin)[1][2] is not None  # the nesting is there to compare
    assert comparable(twin.get_config()) == comparable(model.get_config())
    path = root / "again.keras"
    twin.save(str(path))
    second = import_keras(path)
    assert body(second.text) == body(result.text)


def test_trained_weights_load_into_the_generated_model(imported):
    import onnx

    from transpiler.cli import main
    from transpiler.runtime.session import create_session

    _, result, root = imported
    kdl = root / "nested.kdl"
    kdl.write_text(result.text)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    data = root / "data.npz"
    np.savez(data, x_train=x, y_train=np.eye(3, dtype=np.float32)[y])
    run = root / "run"
    args = ["train", str(kdl), "--data", str(data), "--out", str(run), "--epochs", "1"]
    assert main([*args, "--verbose", "0"]) == 0
    weights = run / "Nested.weights.h5"
    twin = rebuilt(result, root).build_model()
    before = twin.get_layer("head").get_weights()[0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weight Keras skips would only be a warning
        twin.load_weights(str(weights))
    assert not np.array_equal(twin.get_layer("head").get_weights()[0], before)
    session = create_session(onnx.load(str(run / "Nested.trained.onnx")))
    ours = session.run(None, {"features": x[:8]})[0]
    theirs = np.asarray(twin.predict(x[:8], verbose=0))
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
