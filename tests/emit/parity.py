"""The Keras oracle for lowering tests: the same model in Keras 3 and in ktrans, the same
weights (moved through the `.npz` --weights path users use), the same inputs."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

ATOL, RTOL = 1e-5, 1e-4


def keras_weights_for(graph, keras_model) -> dict[str, np.ndarray]:
    """Pairs Keras layers with weights to ours, in order, as `<layer>/<weight>` arrays."""
    ours = [layer for layer in graph.layers if layer.weights]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    assert len(ours) == len(theirs), (
        [layer.name for layer in ours],
        [layer.name for layer in theirs],
    )
    arrays = {}
    for mine, keras_layer in zip(ours, theirs):
        values = [np.asarray(w.numpy()) for w in keras_layer.weights]
        assert len(values) == len(mine.weights), (mine.name, keras_layer.name)
        for w, value in zip(mine.weights, values):
            assert tuple(value.shape) == w.shape, (mine.name, w.name, value.shape, w.shape)
            arrays[f"{mine.name}/{w.name}"] = value
    return arrays


def randomize_keras(keras_model, seed: int = 0) -> None:
    """Non-trivial weights everywhere (zero biases and unit BN statistics hide bugs)."""
    rng = np.random.default_rng(seed)
    for w in keras_model.weights:
        shape = tuple(w.shape)
        value = rng.normal(0, 0.5, size=shape).astype(np.float32)
        if "variance" in w.path:
            value = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        w.assign(value)


def compare(
    kdl_text: str,
    keras_model,
    inputs: dict[str, np.ndarray],
    tmp_path,
    model=None,
    randomize: bool = True,
    runtime: str = "ort",
):
    """Builds both, runs both, asserts outputs match; returns (ours, theirs) lists."""
    from transpiler.emit.onnx import build_model
    from transpiler.emit.onnx.weights import load_weights
    from transpiler.graph import load

    src = tmp_path / "model.kdl"
    src.write_text(kdl_text)
    _, graphs = load(str(src))
    graph = graphs[model] if model else next(iter(graphs.values()))
    if randomize:
        randomize_keras(keras_model)
    npz = tmp_path / "weights.npz"
    np.savez(npz, **keras_weights_for(graph, keras_model))
    proto = build_model(graph, weights=load_weights(npz, graph))
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    names = [v.name for v in graph.inputs]
    if runtime == "ort":
        from transpiler.runtime.session import create_session

        session = create_session(proto)
        ours = session.run(None, {n: inputs[n] for n in names})
    else:
        from onnx.reference import ReferenceEvaluator

        ours = ReferenceEvaluator(proto).run(None, {n: inputs[n] for n in names})
    theirs = keras_model.predict([inputs[n] for n in names], verbose=0)
    if not isinstance(theirs, (list, tuple)):
        theirs = [theirs]
    if isinstance(theirs, dict):
        theirs = list(theirs.values())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        b = np.asarray(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        diff = np.abs(a - b)
        bound = ATOL + RTOL * np.abs(b)
        assert (diff <= bound).all(), f"max |diff| {diff.max():.3g}"
    return ours, theirs
