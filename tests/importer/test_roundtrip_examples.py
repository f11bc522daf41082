"""Every example through Keras and back: codegen keras, build, compile, save as .keras,
`ktrans import`: the same graph (layers, configs, connections, outputs), the same
weights, and the train block's optimizer, losses and metrics from the compile config."""

from __future__ import annotations

import numpy as np
import pytest

from tests.importer.roundtrip import assert_same_graph, load_text, save_generated
from tests.test_examples import EXAMPLES

pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SLOW = {"resnet50", "mobilenet_v2"}
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.kdl"))
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES]


def compiled(config) -> dict:
    """What a Keras compile config keeps of a train block (per output, in output order:
    Keras names a single output after its layer)."""
    from transpiler.emit.code.keras_args import normalized

    def spec(s):
        return None if s is None else (s.name, normalized(tuple(sorted(s.kwargs.items()))))

    outputs = list(config.outputs)
    return {
        "optimizer": spec(config.optimizer),
        "loss": [spec(config.loss.get(o)) for o in outputs],
        "loss_weights": [config.loss_weights.get(o, 1.0) for o in outputs],
        "metrics": [[m.name for m in config.metrics.get(o, [])] for o in outputs],
    }


@pytest.mark.parametrize("name", PARAMS)
def test_example_round_trips_through_keras(name, tmp_path):
    from transpiler.importer import import_keras

    program, graph = load_text((EXAMPLES / f"{name}.kdl").read_text(), f"{name}.kdl")
    model, path = save_generated(graph, program, tmp_path)
    imported = import_keras(path)
    assert_same_graph(graph, imported.graph)
    arrays = imported.weights()
    for layer in graph.layers:
        for w, variable in zip(layer.weights or [], model.get_layer(layer.name).weights):
            np.testing.assert_array_equal(arrays[f"{layer.name}/{w.name}"], np.asarray(variable))
    original = graph.trains.get("default")
    if original is not None:
        again = imported.graph.trains["default"]
        assert compiled(again) == compiled(original)
        assert imported.text.count("\ntrain ") == 1
