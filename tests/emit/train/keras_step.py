"""The Keras oracle for training: one optimizer step from identical weights and batch,
through Keras 3's train_on_batch, against one run of ktrans's training model."""

from __future__ import annotations

import os

import numpy as np

from transpiler.emit.train.names import LR_INPUT, STEP_INPUT

os.environ.setdefault("KERAS_BACKEND", "torch")


def ktrans_graph(kdl_text: str, tmp_path, model: str | None = None):
    from transpiler.graph import load

    path = tmp_path / "model.kdl"
    path.write_text(kdl_text)
    _, graphs = load(str(path))
    return graphs[model] if model else next(iter(graphs.values()))


def onnx_layout(graph, keras_layout: dict) -> dict[str, np.ndarray]:
    """Weights in ONNX layout, named `<layer>/<weight>`: what the inference emitter makes
    of Keras-layout weights (the training model's parameters use the same layout)."""
    from onnx import numpy_helper

    from transpiler.emit.onnx import build_model

    proto = build_model(graph, weights=keras_layout)
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def set_keras_weights(keras_model, graph, weights: dict) -> None:
    """Our (Keras-layout) weights into the Keras model, pairing layers in order."""
    ours = [layer for layer in graph.layers if layer.weights]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    assert len(ours) == len(theirs)
    for mine, keras_layer in zip(ours, theirs):
        for w, variable in zip(mine.weights, keras_layer.weights):
            variable.assign(weights[mine.name][w.name])


def keras_weights_now(keras_model, graph) -> dict:
    ours = [layer for layer in graph.layers if layer.weights]
    theirs = [layer for layer in keras_model.layers if layer.weights]
    return {
        mine.name: {w.name: np.asarray(v.numpy()) for w, v in zip(mine.weights, kl.weights)}
        for mine, kl in zip(ours, theirs)
    }


def run_step(graph, config, weights, feeds: dict, targets: dict, steps: int = 1):
    """`steps` ktrans training steps on the same batch; returns (losses, metrics, params)."""
    from transpiler.emit.train.model import build_training_model
    from transpiler.runtime.session import create_session

    tm = build_training_model(graph, config, weights=weights)
    session = create_session(tm.proto)
    names = [o.name for o in session.get_outputs()]
    state = {**tm.params, **tm.buffers, **tm.slots}
    lr = config.optimizer.kwargs["learning_rate"]
    history = []
    for step in range(steps):
        run_feeds = {**feeds, **{f"target:{k}": v for k, v in targets.items()}, **state}
        run_feeds[STEP_INPUT] = np.array(step, np.int64)
        run_feeds[LR_INPUT] = np.array(lr, np.float32)
        out = dict(zip(names, session.run(None, run_feeds)))
        history.append(out)
        state = {k: out[f"new:{k}"] for k in state}
    return history, state
