"""The whole torch engine (TorchEngine.step and commit on the generated module: layouts,
BatchNormalization's moving statistics in training, regularizers, masks) against Keras
3's train_on_batch on the `codegen --target keras` model: three steps, the same weights
(Keras layout), the same logged loss."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tests.emit.keras_twin import keras_model, load_graph
from tests.emit.torch.harness import import_code, model_class
from transpiler.emit.code.torch_bundle import script_settings
from transpiler.emit.code.train_script import pick_train
from transpiler.emit.onnx.model import initial_weights

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

CNN = """
model Cnn {
    input image: float32[8, 8, 2]
    Conv2D(4, 3, padding=same, use_bias=false, kernel_regularizer=l2(0.01))  # a bias before
    # BatchNormalization has no gradient but rounding noise, which RMSprop would magnify
    BatchNormalization()
    Activation(relu)
    MaxPooling2D(2)
    Flatten()
    Dense(3, activation=softmax, bias_regularizer=l1_l2(l1=0.01, l2=0.02))
}
train Cnn {
    loss = categorical_crossentropy(label_smoothing=0.1)
    optimizer = RMSprop(learning_rate=0.01, momentum=0.5, centered=true)
    metrics = [accuracy]
}
"""

SEQ = """
model Seq {
    input ids: int64[6]
    Embedding(12, 5, mask_zero=true)
    LSTM(4, return_sequences=true)
    Dense(3, activation=softmax)
}
train Seq {
    loss = sparse_categorical_crossentropy
    optimizer = Adam(learning_rate=0.02)
}
"""


def _engine(graph, program):
    from transpiler.emit.torch import generate_torch
    from transpiler.templates.ktrans_runtime.torch_engine import TorchEngine

    config = pick_train(graph)
    module = import_code(generate_torch(graph, program), graph.name)
    sys.modules[module.__name__] = module  # the engine finds keras_weight_places there
    model = model_class(module)()
    files = {"script": "s.py", "module": "m.py", "init": "i.npz", "keras": "k.json"}
    s = script_settings(graph, config, 0, files, graph.name)["s"]
    compiled = {
        "loss": s["LOSS"],
        "regularizers": s["REGULARIZERS"],
        "optimizer": s["OPTIMIZER"],
        "losses": s["LOSSES"],
        "metric_plan": s["METRIC_PLAN"],
    }
    args = SimpleNamespace(device="cpu", precision="float32", threads=None)
    return TorchEngine(model, compiled, args), config, s


def _set_keras(km, graph, weights) -> None:
    for layer in graph.layers:
        if layer.weights:
            theirs = km.get_layer(layer.name).weights
            for w, variable in zip(layer.weights, theirs, strict=True):
                variable.assign(weights[layer.name][w.name])


def _keras_now(km, graph) -> dict:
    out = {}
    for layer in graph.layers:
        for w, variable in zip(layer.weights, km.get_layer(layer.name).weights):
            out[f"{layer.name}/{w.name}"] = np.asarray(variable.numpy())
    return out


@pytest.mark.parametrize(
    ("text", "batch"),
    [
        (CNN, lambda rng: (rng.normal(size=(10, 8, 8, 2)), np.eye(3)[rng.integers(0, 3, 10)])),
        (
            SEQ,
            lambda rng: (
                rng.integers(1, 12, (10, 6)) * (np.arange(6) < rng.integers(2, 7, (10, 1))),
                rng.integers(0, 3, (10, 6)),
            ),
        ),
    ],
    ids=["conv-batchnorm-regularizers", "masked-lstm"],
)
def test_three_engine_steps_equal_keras_train_on_batch(tmp_path, text, batch):
    program, graph = load_graph(text, tmp_path)
    weights = initial_weights(graph, 3)
    x, y = batch(np.random.default_rng(0))
    x = x.astype(np.int64 if "ids" in text else np.float32)
    y = y.astype(np.int64 if "sparse" in text else np.float32)

    km = keras_model(program, graph, tmp_path)
    _set_keras(km, graph, weights)
    engine, config, s = _engine(graph, program)
    engine.load({f"{k}/{n}": v for k, ws in weights.items() for n, v in ws.items()})
    feed = {graph.inputs[0].name: x, "target:output": y}
    lr = config.optimizer.kwargs["learning_rate"]
    for step in range(3):
        logs = km.train_on_batch(x, y, return_dict=True)
        values = engine.step(feed, step, lr)
        engine.commit()
        np.testing.assert_allclose(values[s["LOSSES"]["loss"]], logs["loss"], rtol=1e-5)
        theirs, ours = _keras_now(km, graph), engine.weights()
        assert set(ours) == set(theirs)
        for name, value in theirs.items():
            scale = max(1.0, float(np.max(np.abs(value))))
            np.testing.assert_allclose(
                ours[name], value, rtol=1e-5, atol=1e-6 * scale, err_msg=f"step {step}: {name}"
            )
