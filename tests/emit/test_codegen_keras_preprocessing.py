"""`ktrans codegen --target keras` for the preprocessing and keras.applications layers:
the generated module builds the same model in Keras 3 (structure, shapes, counts), passes
ruff, and computes what ktrans's ONNX model computes on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.test_codegen_keras import (
    check_ruff,
    check_structure,
    generate_file,
    import_path,
    predict,
    random_weights,
)
from transpiler.graph import load

keras = pytest.importorskip("keras")

MODEL = """
model Pre {
    input img: uint8[8, 8, 3]
    input x: float32[6]
    a = img |> Rescaling(1 / 255) |> Rescaling([0.5, 2.0, 1.0], offset=[[0.0, 1.0, 2.0]])
            |> Conv2D(4, 3) |> GlobalAveragePooling2D()
    b = x |> Rescaling(2.0, offset=-1) |> Normalization()
          |> Normalization(axis=none, mean=0.5, variance=4.0, invert=true)
    c = img |> Normalization(mean=[120.0, 110.0, 100.0], variance=[3000.0, 2900.0, 2800.0])
            |> Conv2D(6, 3, padding=same)
    s = c |> LayerScale(1e-6, 6)
    d = CustomScaleLayer(0.17)(c, s) |> GlobalAveragePooling2D()
    output y = Concatenate()(a, b, d) |> Dense(2)
}
"""


def feeds_for(graph, rng) -> dict[str, np.ndarray]:
    feeds = {}
    for v in graph.inputs:
        shape = [3] + list(v.type.shape[1:])
        if v.type.dtype == "uint8":
            feeds[v.name] = rng.integers(0, 256, size=shape).astype(np.uint8)
        else:
            feeds[v.name] = rng.normal(size=shape).astype(np.float32)
    return feeds


def test_generated_keras_matches(tmp_path, monkeypatch):
    from transpiler.emit.onnx import build_model
    from transpiler.runtime.session import create_session

    src = tmp_path / "pre.kdl"
    src.write_text(MODEL)
    _, graphs = load(src)
    graph = graphs["Pre"]
    out = generate_file(src, tmp_path, monkeypatch)
    code = out.read_text()
    assert "layers.Rescaling(0.00392156862745098" in code
    assert "[0.5, 2.0, 1.0],\n        offset=[[0.0, 1.0, 2.0]]," in code  # lists, as Keras
    assert "class LayerScale(layers.Layer):" in code and "= LayerScale(1e-06, 6, name=" in code
    assert 'CustomScaleLayer(0.17, name="custom_scale_layer")([' in code
    check_ruff(out)
    model = import_path(out).build_model()
    check_structure(graph, model)
    rng = np.random.default_rng(0)
    weights = random_weights(graph, rng)
    for layer in graph.layers:
        if layer.weights:
            if layer.name.startswith("normalization"):  # count is an integer, variance > 0
                weights[layer.name]["count"] = np.zeros((), np.float32) + 16
                weights[layer.name]["variance"] = np.abs(weights[layer.name]["variance"]) + 0.5
            model.get_layer(layer.name).set_weights(
                [weights[layer.name][w.name] for w in layer.weights]
            )
    for la in model.layers:
        if isinstance(la, keras.layers.Normalization):
            la.finalize_state()  # Keras reads its statistics from the weights here
    feeds = feeds_for(graph, rng)
    ours = create_session(build_model(graph, weights=weights)).run(None, feeds)
    for a, b in zip(ours, predict(model, graph, feeds)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
