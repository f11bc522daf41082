"""The proof of `ktrans import` (issue 13 §2): twelve keras.applications models
(weights=None, default input size, weights randomized so that every layer matters),
saved as .keras by Keras and imported without it. For each:

- the imported file checks (`ktrans check`), and `ktrans summary` has Keras's total,
  trainable and non-trainable counts, and each layer's output shape and parameters;
- `ktrans build --weights MODEL.keras` computes Keras's outputs on random images
  (within 1e-4 of the largest output);
- `codegen --target keras` on the imported file rebuilds the model with the same config,
  layer for layer (class and every config value; keras.ops nodes by count, Keras numbers
  their automatic names afresh);
- import, write back, import again gives the same .kdl text. ConvNeXt nests Sequential
  models, which the import writes as blocks and the Keras code writes back as nested
  models: the same nesting (checked), so the same text after one round too.

One Keras model at a time (one test per model), batch 2: about 3 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from tests.importer.roundtrip import keras_module, randomize
from transpiler.importer import import_keras

keras = pytest.importorskip("keras")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
]

APPLICATIONS = [
    "ResNet50", "ResNet101V2", "VGG16", "MobileNet", "MobileNetV2", "MobileNetV3Small",
    "DenseNet121", "EfficientNetB0", "EfficientNetV2B0", "InceptionV3", "Xception",
    "ConvNeXtTiny",
]  # fmt: skip


def keras_layers(model):
    """The model's layers with nested models opened, InputLayers left out."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from keras_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


def nesting(model) -> list:
    """The nested models by name and class, each with its own."""
    return [
        (la.name, type(la).__name__, nesting(la))
        for la in model.layers
        if isinstance(la, keras.Model)
    ]


def flat_configs(serialized: dict, out: dict) -> dict:
    """name -> (class, config) of every layer of a serialized model, nested ones opened;
    keras.ops nodes counted under None."""

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "shared_object_id"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    for entry in serialized["config"]["layers"]:
        cls = entry["class_name"]
        if cls in ("Functional", "Sequential"):
            flat_configs(entry, out)
        elif (entry.get("module") or "").startswith("keras.src.ops"):
            out[None] = out.get(None, 0) + 1
        elif cls != "InputLayer":
            out[entry["config"]["name"]] = (cls, json.dumps(strip(entry["config"]), sort_keys=True))
    return out


def check_summary(graph, model) -> None:
    from transpiler.graph.types import format_shape
    from transpiler.summary import render_summary, summary_rows

    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    text = render_summary(graph)
    assert f"Total params: {total:,} " in text
    assert f"Trainable params: {trainable:,} " in text
    assert f"Non-trainable params: {total - trainable:,} " in text
    rows = {r[0]: r for r in summary_rows(graph)}
    for layer in keras_layers(model):
        row = rows[f"{layer.name} ({type(layer).__name__})"]
        shape = format_shape(("batch", *layer.output.shape[1:]))
        ours = re.sub(r"\b(?!None\b)[A-Za-z_]\w*", "None", row[1])  # a named dynamic axis
        assert (ours, row[2]) == (shape, f"{layer.count_params():,}"), layer.name


def check_outputs(graph, path, model) -> None:
    from transpiler.emit.onnx import build_model
    from transpiler.emit.onnx.weights import load_weights
    from transpiler.runtime.session import create_session

    proto = build_model(graph, weights=load_weights(path, graph))
    (x_in,) = graph.inputs
    shape = [d if isinstance(d, int) else 224 for d in x_in.type.shape[1:]]
    x = np.random.default_rng(1).uniform(0, 255, size=(2, *shape)).astype(np.float32)
    (ours,) = create_session(proto).run(None, {x_in.name: x})
    theirs = np.asarray(model.predict(x, verbose=0))
    assert ours.shape == theirs.shape
    scale = float(np.abs(theirs).max())
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale)
    assert theirs.std() > 1e-6  # the outputs differ: the comparison means something


def rebuilt(imported, tmp_path):
    """The Keras model that `codegen --target keras` writes for the imported file."""
    from transpiler.graph import load

    program, graphs = load("imported.kdl", text=imported.text)
    return keras_module(graphs[imported.model_name], program, tmp_path).build_model()


def import_config(model, tmp_path, name: str):
    """Imports a Keras model's config as JSON (the same text as from a .keras file, but
    for the header's file name)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(keras.saving.serialize_keras_object(model)))
    return import_keras(path)


def body(text: str) -> str:
    """The .kdl text after the header comment."""
    return text.split("\n\n", 1)[1]


@pytest.mark.parametrize("name", APPLICATIONS)
def test_application(name, tmp_path):
    from transpiler.cli import main

    model = getattr(keras.applications, name)(weights=None)
    randomize(model)
    path = tmp_path / f"{name}.keras"
    model.save(str(path))

    imported = import_keras(path)
    graph = imported.graph
    kdl = tmp_path / f"{name}.kdl"
    kdl.write_text(imported.text)
    assert main(["check", str(kdl)]) == 0
    check_summary(graph, model)
    check_outputs(graph, path, model)

    again = rebuilt(imported, tmp_path)
    original = flat_configs(json.loads(json.dumps(keras.saving.serialize_keras_object(model))), {})
    rebuilt_configs = flat_configs(
        json.loads(json.dumps(keras.saving.serialize_keras_object(again))), {}
    )
    assert rebuilt_configs.keys() == original.keys()
    for key, value in original.items():
        assert rebuilt_configs[key] == value, key

    assert nesting(again) == nesting(model)
    second = import_config(again, tmp_path, name)
    assert body(second.text) == body(imported.text)
    os.remove(path)
