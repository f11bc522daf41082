"""Models whose inputs are a dict (Keras matches them by key when called) or a nested
list: the .kdl inputs are named by the keys, and the built model gives Keras's outputs
when fed by those names."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.cli import main

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def two_inputs():
    title = keras.Input((4,), name="title_in")  # a key that is not the tensor's name
    meta = keras.Input((3,), name="meta")
    h = layers.Concatenate()([layers.Dense(5, name="ta")(title), meta])
    return title, meta, h


def import_and_build(model, tmp_path):
    from tests.importer.roundtrip import randomize
    from transpiler.runtime.session import create_session

    randomize(model)
    path = tmp_path / "model.keras"
    model.save(str(path))
    kdl, onnx_path = tmp_path / "model.kdl", tmp_path / "model.onnx"
    assert main(["import", str(path), "-o", str(kdl)]) == 0
    assert main(["build", str(kdl), "--weights", str(path), "-o", str(onnx_path)]) == 0
    return kdl.read_text(), create_session(str(onnx_path))


def test_dict_inputs_are_named_by_their_keys(tmp_path, capsys):
    title, meta, h = two_inputs()
    outputs = {"score": layers.Dense(1, name="s")(h), "cls": layers.Dense(2, name="c")(h)}
    model = keras.Model({"title": title, "meta": meta}, outputs, name="tri")
    text, session = import_and_build(model, tmp_path)
    assert "input title: float32[4]" in text and "input meta: float32[3]" in text
    rng = np.random.default_rng(0)
    feeds = {
        "title": rng.normal(size=(3, 4)).astype(np.float32),
        "meta": rng.normal(size=(3, 3)).astype(np.float32),
    }
    expected = model.predict(feeds, verbose=0)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert sorted(got) == ["cls", "score"]
    for key in got:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)
    capsys.readouterr()


def test_nested_list_inputs(tmp_path, capsys):
    title, meta, h = two_inputs()
    model = keras.Model([title, [meta]], layers.Dense(2, name="out")(h), name="nested")
    text, session = import_and_build(model, tmp_path)
    assert "input title_in: float32[4]" in text and "input meta: float32[3]" in text
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 4)).astype(np.float32)
    b = rng.normal(size=(2, 3)).astype(np.float32)
    (out,) = session.run(None, {"title_in": a, "meta": b})
    np.testing.assert_allclose(out, model.predict([a, [b]], verbose=0), rtol=1e-5, atol=1e-6)
    capsys.readouterr()
