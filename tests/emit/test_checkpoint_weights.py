"""`ktrans build --weights checkpoint.npz`: a training checkpoint (ONNX-layout state and
its JSON meta) is read through the Keras-layout recipes; one of another model, or of the
model as it was before a change, is a clear error (exit 1), never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import numpy_helper

from tests.emit.keras_twin import flat, load_graph, random_weights
from transpiler.cli import main
from transpiler.emit.onnx import build_model
from transpiler.emit.onnx.weights import load_weights
from transpiler.errors import KdlErrors

MODEL = """model M {
    input x: float32[5, 4]
    LSTM(3, return_sequences=true)
    GRU(2, reset_after=false)
    Dense(2)
}
"""


def checkpoint(path, graph, weights, model="M", drop=(), meta=None) -> None:
    """A checkpoint as a training run writes it: `meta`, then `state/<tensor>`."""
    proto = build_model(graph, weights=weights)
    arrays = {
        f"state/{t.name}": numpy_helper.to_array(t)
        for t in proto.graph.initializer
        if "/" in t.name and t.name not in drop and t.data_type == 1
    }
    text = json.dumps({"format": 2, "model": model}) if meta is None else meta
    np.savez(path, meta=np.array(text), **arrays)


def test_a_checkpoint_gives_the_keras_weights_back(tmp_path):
    _, graph = load_graph(MODEL, tmp_path)
    weights = random_weights(graph, np.random.default_rng(0))
    checkpoint(tmp_path / "checkpoint.npz", graph, weights)
    loaded = flat(load_weights(tmp_path / "checkpoint.npz", graph))
    for key, value in flat(weights).items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"model": "Other"},
            "checkpoint.npz is a training checkpoint of model 'Other', not of model 'M'",
        ),
        (
            {"drop": ("lstm/bias_onnx",)},
            "does not hold the weights of model 'M' as defined now: the state has no "
            "'lstm/bias_onnx', which holds the weight 'lstm/bias'",
        ),
        ({"meta": "{not json"}, "checkpoint.npz is not a readable training checkpoint"),
    ],
    ids=["other-model", "missing-tensor", "broken-meta"],
)
def test_a_checkpoint_that_does_not_fit_is_an_error(tmp_path, kwargs, message):
    _, graph = load_graph(MODEL, tmp_path)
    weights = random_weights(graph, np.random.default_rng(0))
    checkpoint(tmp_path / "checkpoint.npz", graph, weights, **kwargs)
    with pytest.raises(KdlErrors, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_weights(tmp_path / "checkpoint.npz", graph)


def test_a_checkpoint_of_a_changed_model_fails_at_the_cli(tmp_path, capsys):
    _, graph = load_graph(MODEL, tmp_path)
    checkpoint(tmp_path / "checkpoint.npz", graph, random_weights(graph, np.random.default_rng(1)))
    changed = tmp_path / "changed.kdl"
    changed.write_text(MODEL.replace("LSTM(3", "LSTM(4"))
    code = main(["build", str(changed), "--weights", str(tmp_path / "checkpoint.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert "does not hold the weights of model 'M' as defined now" in err
    assert "train it again" in err
