"""Every example in examples/*.kdl: the torch.nn.Module `codegen --target torch` writes
computes what Keras computes, on the same weights.

The Keras model is the one `codegen --target keras` writes for the same file (so layer
names agree, and weights pair by name); its weights are random but keep a deep
network's activations in range (tests/emit/test_lower_examples.py's `randomize`); the
module loads them through its own load_keras_weights. ResNet50 and MobileNetV2 run at a
batch of one and two.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.torch.harness import (
    assert_close,
    assert_round_trip,
    import_code,
    keras_outputs,
    run_torch,
)

keras = pytest.importorskip("keras")
pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

BATCH = {"resnet50": 1, "mobilenet_v2": 2, "tweet_pair": 2}
SLOW = {"resnet50", "mobilenet_v2", "tweet_pair"}  # 160 layers; 280 LSTM steps
EXAMPLES = [
    "addition_rnn",
    "mnist_cnn",
    "mnist_mlp",
    "mobilenet_v2",
    "resnet50",
    "ticket_triage",
    "toy_resnet",
    "tweet_pair",
]
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXAMPLES]


def keras_model_of(program, graph, source):
    """The Keras model `codegen --target keras` writes for the graph."""
    from transpiler.emit.code.keras import generate_keras

    keras.utils.set_random_seed(0)  # Keras's initializers: the same kernels every run
    return import_code(generate_keras(graph, program, source), "keras").build_model()


def keras_arrays(graph, model) -> dict[str, np.ndarray]:
    """The Keras model's weights as `<layer>/<weight>`, paired with ours by layer name."""
    arrays = {}
    for layer in graph.layers:
        if not layer.weights:
            continue
        values = model.get_layer(layer.name).weights
        assert [tuple(v.shape) for v in values] == [w.shape for w in layer.weights]
        for w, v in zip(layer.weights, values):
            arrays[f"{layer.name}/{w.name}"] = np.asarray(keras.ops.convert_to_numpy(v))
    return arrays


def example_inputs(graph, batch: int, rng) -> dict[str, np.ndarray]:
    """Random inputs: token ids below every Embedding's vocabulary for integer inputs
    (a `?` length becomes 9), uniform floats in [-1, 1) otherwise."""
    vocab = min(
        (la.input_dim for la in graph.layers if la.keras_class() == "Embedding"), default=10
    )
    feeds = {}
    for v in graph.inputs:
        shape = (batch, *(d if isinstance(d, int) else 9 for d in v.type.shape[1:]))
        if v.type.dtype.startswith("int"):
            feeds[v.name] = rng.integers(0, vocab, size=shape).astype(v.type.dtype)
        else:
            feeds[v.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", PARAMS)
def test_example_matches_keras(name):
    from tests.emit.test_lower_examples import randomize
    from tests.emit.torch.harness import torch_model
    from tests.test_examples import EXAMPLES as FOLDER
    from tests.test_examples import kdl

    program, graph = kdl(name)
    source = str(FOLDER / f"{name}.kdl")
    model = keras_model_of(program, graph, source)
    randomize(model)
    net, _ = torch_model(graph, program, source)
    arrays = keras_arrays(graph, model)
    net.load_keras_weights(arrays)
    assert_round_trip(net, arrays)
    net.eval()
    feeds = example_inputs(graph, BATCH.get(name, 3), np.random.default_rng(1))
    ours = run_torch(net, graph, feeds)
    theirs = keras_outputs(model, [feeds[v.name] for v in graph.inputs], list(graph.outputs))
    assert_close(ours, theirs)
    assert all(np.std(t) > 1e-4 for t in theirs), "the random weights give a constant output"
