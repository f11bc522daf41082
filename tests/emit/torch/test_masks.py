"""Keras masks in the generated module: graphs with two masked inputs (merges, attention,
a transformer block) equal Keras on the same weights, and forward(...,
return_masks=True) hands back the masks Keras attaches to the outputs (what a loss over
a masked output needs)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.torch.harness import assert_close, load_graph, run_torch, torch_model

keras = pytest.importorskip("keras")
pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def two_inputs(tmp_path, body: str, make, steps_b: int):
    """tests/emit/test_lower_masking.py's two-input cases, against the generated module."""
    from tests.emit.parity import randomize_keras
    from tests.emit.test_lower_masking import keras_weights_by_shape, two_input_case

    kdl, model, feeds = two_input_case(body, make, steps_b)
    program, graph, src = load_graph(kdl, tmp_path)
    randomize_keras(model)
    weights = keras_weights_by_shape(graph, model)
    net, _ = torch_model(graph, program, str(src))
    net.load_keras_weights({f"{la}/{w}": a for la, ws in weights.items() for w, a in ws.items()})
    net.eval()
    ours = run_torch(net, graph, feeds)
    theirs = model.predict(list(feeds.values()), verbose=0)
    assert_close(ours, [np.asarray(theirs)])


def _graph_cases():
    from tests.emit.test_lower_masking import GRAPHS

    return list(GRAPHS)


@pytest.mark.parametrize("case", _graph_cases())
def test_masked_graphs_match_keras(tmp_path, case):
    from tests.emit.test_lower_masking import GRAPHS

    body, make, steps_b = GRAPHS[case]
    two_inputs(tmp_path, body, make, steps_b)


def test_return_masks_gives_the_keras_masks(tmp_path):
    """An output that still carries the mask hands it back; one that does not gives
    None; masks mirror the outputs (a tuple for several)."""
    from keras.src.backend import get_keras_mask

    from tests.emit.test_lower_masking import IDS, VOCAB

    kdl = (
        "model M {\n    input x: int64[6]\n"
        f"    h = x |> Embedding({VOCAB}, 3, mask_zero=true)\n"
        "    output seq = h |> LSTM(4, return_sequences=true, go_backwards=true) |> Dense(2)\n"
        "    output last = GRU(3)(h)\n}\n"
    )
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    net.eval()
    outputs, masks = run_torch(net, graph, {"x": IDS}, return_masks=True)
    assert len(outputs) == len(masks) == 2
    assert masks[1] is None

    x = keras.Input((6,), dtype="int64")
    h = keras.layers.Embedding(VOCAB, 3, mask_zero=True)(x)
    seq = keras.layers.Dense(2)(keras.layers.LSTM(4, return_sequences=True, go_backwards=True)(h))
    model = keras.Model(x, [seq, keras.layers.GRU(3)(h)])
    theirs = model(IDS, training=False)
    np.testing.assert_array_equal(masks[0].numpy(), get_keras_mask(theirs[0]).numpy())
    assert get_keras_mask(theirs[1]) is None
    np.testing.assert_array_equal(masks[0].numpy(), IDS != 0)


def test_one_output_returns_its_mask_alone(tmp_path):
    kdl = "model M {\n    input x: int64[4]\n    Embedding(5, 2, mask_zero=true)\n}\n"
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    ids = np.array([[1, 0, 2, 0]], np.int64)
    out, mask = run_torch(net, graph, {"x": ids}, return_masks=True)
    assert tuple(out.shape) == (1, 4, 2)
    np.testing.assert_array_equal(mask.numpy(), ids != 0)
