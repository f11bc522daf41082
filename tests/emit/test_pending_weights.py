"""Initial weights drawn on worker threads (transpiler/emit/onnx/pending.py) are the values
the main thread would draw, wherever they are used: streamed while still in flight, read in
Keras layout, or after a failed build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from transpiler.emit.onnx import build_model_parts, save_model_parts
from transpiler.emit.onnx.model import LazyWeights
from transpiler.emit.onnx.pending import MIN_PREFETCH_SIZE, PendingArray
from transpiler.graph import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# weights big enough for the worker threads: a conv kernel (drawn into ONNX layout) and a
# Dense kernel (read in Keras layout); the small ones are drawn on the main thread
SOURCE = """
model M {
  input x: float32[32, 32, 16]
  Conv2D(64, 5, padding="same", activation="relu")
  Conv2D(64, 5, padding="same")
  Flatten()
  Dense(48, name="head")
}
"""


def graph_of(text: str):
    _, graphs = load("m.kdl", text)
    return graphs["M"]


def test_worker_draws_equal_main_thread_draws():
    graph = graph_of(SOURCE)
    threaded = LazyWeights(graph, seed=7, prefetch=True)
    plain = LazyWeights(graph, seed=7)
    assert threaded.pool is not None
    big = [
        (layer.name, w.name)
        for layer in graph.layers
        for w in layer.weights
        if np.prod(w.shape) >= MIN_PREFETCH_SIZE
    ]
    assert len(big) >= 2  # the test exercises the worker threads
    for layer in graph.layers:
        for name, value in plain[layer.name].items():
            np.testing.assert_array_equal(threaded[layer.name][name], value)


def test_pending_initializers_stream_the_same_bytes(tmp_path):
    graph = graph_of(SOURCE)
    proto, pending = build_model_parts(graph, seed=3, pending=True)
    assert any(isinstance(a, PendingArray) for a in pending.values())
    _, ready = build_model_parts(graph, seed=3)
    assert not any(isinstance(a, PendingArray) for a in ready.values())
    save_model_parts(proto, pending, tmp_path / "a.onnx")
    save_model_parts(proto, ready, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    loaded = onnx.load(tmp_path / "a.onnx")
    for t in loaded.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(t), ready[t.name])


def test_failed_build_cancels_draws(monkeypatch):
    graph = graph_of(SOURCE)
    from transpiler.emit.onnx import model as model_module

    cancelled = []
    real_cancel = LazyWeights.cancel

    def spy(self):
        cancelled.append(True)
        real_cancel(self)

    def broken(*args, **kwargs):
        raise RuntimeError("lowering failed")

    monkeypatch.setattr(LazyWeights, "cancel", spy)
    monkeypatch.setattr(model_module, "_lower_graph", broken)
    with pytest.raises(RuntimeError):
        build_model_parts(graph, seed=0)
    assert cancelled == [True]
