"""The Keras config of a graph (transpiler.emit.code.keras_config) in a `.keras` archive
(the runtime's write_keras_archive): `keras.saving.load_model` opens it, for every example
and every catalogue layer on its own, and the loaded model is the `codegen --target keras`
model: the same config layer for layer (classes, arguments, calls), the same compile
settings, and the same outputs on the same weights, which are our ONNX model's."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.emit.catalogue_models import CASES
from tests.emit.keras_twin import (
    flat,
    keras_model,
    load_graph,
    onnx_outputs,
    predict,
    random_feeds,
    random_weights,
)
from tests.emit.test_codegen_keras import CHANNELS_FIRST, KITCHEN_SINK, TRAINED
from tests.emit.test_codegen_keras_nested import NESTED_BLOCKS, find_layer
from transpiler.emit.code.keras_config import keras_model_config
from transpiler.emit.onnx import build_model
from transpiler.emit.onnx.keras_layout import keras3_layout
from transpiler.templates.ktrans_runtime.keras_export import write_keras_archive

keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.kdl"))
BIG = {"resnet50", "mobilenet_v2"}
MODELS = {
    **{f"example-{n}": (ROOT / "examples" / f"{n}.kdl").read_text() for n in EXAMPLES},
    **{f"layer-{n}": text for n, text in CASES.items()},
    "sink": KITCHEN_SINK,
    "channels-first": CHANNELS_FIRST,
    "trained": TRAINED,
    "nested": NESTED_BLOCKS,
    "tour": (ROOT / "tests" / "fixtures" / "valid" / "language_tour.kdl").read_text(),
}
PARAMS = [
    pytest.param(n, marks=pytest.mark.slow) if n.removeprefix("example-") in BIG else n
    for n in MODELS
]


def comparable(config: dict) -> dict:
    """A functional config with the operations' automatic names (which depend on what
    Keras built before) replaced by their positions, in nested functional models too."""
    index = {layer["name"]: i for i, layer in enumerate(config["layers"])}

    def renamed(value):
        if isinstance(value, dict):
            if "keras_history" in value:
                name, node, tensor = value["keras_history"]
                return {**value, "keras_history": [index[name], node, tensor]}
            return {k: renamed(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            if len(value) == 3 and isinstance(value[0], str) and value[0] in index:
                return [index[value[0]], value[1], value[2]]
            return [renamed(v) for v in value]
        return value

    layers = []
    for layer in config["layers"]:
        settings = dict(layer["config"])
        if layer["class_name"] == "Functional":
            settings = {**comparable(settings), "name": settings["name"]}
        elif layer["module"] != "keras.layers":
            settings.pop("name")
        layers.append([layer["class_name"], settings, renamed(layer["inbound_nodes"])])
    ends = {k: renamed(config[k]) for k in ("input_layers", "output_layers")}
    return json.loads(json.dumps({"layers": layers, **ends}, default=str))


def without_names(compile_config: dict | None):
    text = json.dumps(compile_config, sort_keys=True, default=str)
    value = json.loads(text)
    if value and value.get("optimizer"):
        value["optimizer"]["config"].pop("name")
    return value


@pytest.mark.parametrize("name", PARAMS)
def test_archive_loads_as_the_codegen_model(name, tmp_path):
    program, graph = load_graph(MODELS[name], tmp_path)
    rng = np.random.default_rng(5)
    weights = random_weights(graph, rng)
    arrays = flat(weights)
    path = tmp_path / "model.keras"
    write_keras_archive(arrays, keras3_layout(graph), keras_model_config(graph), path)
    # first: the generated module registers the classes it defines (ktrans>LayerScale)
    twin = keras_model(program, graph, tmp_path)
    with warnings.catch_warnings():
        # no optimizer state in the archive: Keras notes that the optimizer starts fresh
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        loaded = keras.saving.load_model(path)
    assert comparable(loaded.get_config()) == comparable(twin.get_config())
    assert without_names(loaded.get_compile_config()) == without_names(twin.get_compile_config())
    for layer in graph.layers:
        if layer.weights:
            values = [weights[layer.name][w.name] for w in layer.weights]
            find_layer(twin, layer.name).set_weights(values)
    feeds = random_feeds(graph, rng, batch=2)
    expected = onnx_outputs(build_model(graph, weights=weights), feeds)
    for ours, theirs, onnx_out in zip(
        predict(loaded, graph, feeds), predict(twin, graph, feeds), expected
    ):
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_allclose(ours, onnx_out, rtol=1e-4, atol=1e-5)
