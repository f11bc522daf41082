"""Keras 3 as the oracle for the training vocabulary: the same train block compiled into a
Keras model (its optimizer, losses and metrics built from the checked specs), trained
with train_on_batch or evaluated, against ktrans's training model run in onnxruntime."""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace
from unittest import mock

import numpy as np

from transpiler.emit.train.names import LOSS_OUTPUT, LR_INPUT, STEP_INPUT

os.environ.setdefault("KERAS_BACKEND", "torch")

from tests.emit.train.keras_step import (
    keras_weights_now,
    ktrans_graph,
    onnx_layout,
    set_keras_weights,
)


def keras_optimizer(spec):
    import keras

    return getattr(keras.optimizers, spec.name)(**spec.kwargs)


def keras_loss(spec):
    import keras

    return getattr(keras.losses, spec.keras_class)(**spec.kwargs)


def keras_metric(spec):
    import keras

    return getattr(keras.metrics, spec.keras_class)(name=spec.log_name, **spec.kwargs)


def compile_like(km, config) -> None:
    """model.compile with the train block's optimizer, losses, weights and metrics."""
    outputs = config.outputs
    losses = [keras_loss(config.loss[o]) if o in config.loss else None for o in outputs]
    metrics = [[keras_metric(m) for m in config.metrics.get(o, [])] for o in outputs]
    weighted = [[keras_metric(m) for m in config.weighted_metrics.get(o, [])] for o in outputs]
    single = len(outputs) == 1
    km.compile(
        optimizer=keras_optimizer(config.optimizer),
        loss=losses[0] if single else losses,
        loss_weights=None if single else [config.loss_weights.get(o, 1.0) for o in outputs],
        metrics=metrics[0] if single else metrics,
        weighted_metrics=(weighted[0] if single else weighted) if config.weighted_metrics else None,
    )


@contextlib.contextmanager
def typed_targets(config):
    """Declares `target:<output>` as losses.target_type says (what model.py should do)."""
    import transpiler.emit.train.model as model_module
    from transpiler.emit.train.losses import target_type

    original = model_module.value_info

    def value_info(name, t):
        if name.startswith("target:"):
            t = target_type(config.loss[name[len("target:") :]], t)
        return original(name, t)

    with mock.patch.object(model_module, "value_info", value_info):
        yield


def build(graph, config, weights):
    from transpiler.emit.train.model import build_training_model

    with typed_targets(config):
        return build_training_model(graph, config, weights=weights)


def run_ktrans(tm, feeds: list[dict], lr: float | None = None):
    """One training step per feed dict (inputs and `target:` values), from tm's initial
    state; returns (outputs of each step, final state)."""
    from transpiler.runtime.session import create_session

    session = create_session(tm.proto)
    names = [o.name for o in session.get_outputs()]
    state = {**tm.params, **tm.buffers, **tm.slots}
    history = []
    for step, feed in enumerate(feeds):
        run = {**feed, **state, STEP_INPUT: np.array(step, np.int64)}
        run[LR_INPUT] = np.array(lr, np.float32)
        out = dict(zip(names, session.run(None, run)))
        history.append(out)
        state = {k: out[f"new:{k}"] for k in state}
    return history, state


def train_both(kdl: str, tmp_path, keras_model, x, y, steps: int = 3, seed: int = 3):
    """`steps` train_on_batch calls on the same batch, in Keras and in ktrans. Returns
    .keras_logs, .history (ktrans outputs per step), .expected (Keras's parameters in ONNX
    layout; .expected_steps after each step), .state (ktrans's final state), .config,
    .tm, .km (the Keras model), .graph."""
    from transpiler.emit.onnx import initial_weights

    graph = ktrans_graph(kdl, tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=seed)
    km = keras_model()
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    keras_logs, expected_steps = [], []
    for _ in range(steps):
        keras_logs.append(km.train_on_batch(x, y, return_dict=True))
        expected_steps.append(onnx_layout(graph, keras_weights_now(km, graph)))
    tm = build(graph, config, weights)
    out = config.outputs[0]
    feeds = [{"x": x, f"target:{out}": y}] * steps
    lr = config.optimizer.kwargs["learning_rate"]
    history, state = run_ktrans(tm, feeds, lr)
    return SimpleNamespace(
        keras_logs=keras_logs,
        history=history,
        expected=expected_steps[-1],
        expected_steps=expected_steps,
        state=state,
        config=config,
        tm=tm,
        km=km,
        graph=graph,
    )


def assert_params(state, expected, rtol=1e-5, atol=1e-6):
    """float32 agreement: the absolute tolerance scales with the tensor's largest entry
    (an update's rounding error is relative to the values it adds up)."""
    for name, value in expected.items():
        scale = max(1.0, float(np.max(np.abs(value)))) if np.size(value) else 1.0
        np.testing.assert_allclose(state[name], value, rtol=rtol, atol=atol * scale, err_msg=name)


def assert_every_step(run, rtol=1e-5, atol=1e-6):
    """The parameters after each step, and each step's logged loss, equal Keras's."""
    for i, (out, expected) in enumerate(zip(run.history, run.expected_steps)):
        new = {name: out[f"new:{name}"] for name in expected if f"new:{name}" in out}
        try:
            assert_params(new, expected, rtol, atol)
        except AssertionError as e:
            raise AssertionError(f"after step {i + 1}: {e}") from None
        np.testing.assert_allclose(out[LOSS_OUTPUT], run.keras_logs[i]["loss"], rtol=1e-5)


def keras_slots(km, graph) -> dict[str, np.ndarray]:
    """Keras's optimizer variables as ktrans slots: `slot:<param>:<name>` in ONNX layout
    (Keras names them `<variable path with _>_<name>`), `slot:optimizer:u_product`."""
    opt = km.optimizer
    by_name = {v.name: np.asarray(v.numpy()) for v in opt.variables}
    ours = [layer for layer in graph.layers if layer.weights]
    theirs = [layer for layer in km.layers if layer.weights]
    layouts: dict[str, dict] = {}  # slot name -> Keras-layout weights
    for mine, kl in zip(ours, theirs):
        for w, v in zip(mine.weights, kl.weights):
            prefix = v.path.replace("/", "_") + "_"
            for name, value in by_name.items():
                if name.startswith(prefix):
                    slot = name[len(prefix) :]
                    layouts.setdefault(slot, {}).setdefault(mine.name, {})[w.name] = value
    out = {}
    for slot, layout in layouts.items():
        for name, value in onnx_layout(graph, layout).items():
            out[f"slot:{name}:{slot}"] = value
    if hasattr(opt, "_u_product"):
        out["slot:optimizer:u_product"] = np.asarray(opt._u_product.numpy())
    return out


def assert_slots(run, rtol=1e-5, atol=1e-6):
    """Every ktrans slot equals the Keras optimizer variable it stands for."""
    expected = keras_slots(run.km, run.graph)
    slots = {k: v for k, v in run.state.items() if k.startswith("slot:")}
    assert set(slots) == set(expected), (sorted(slots), sorted(expected))
    for name, value in slots.items():
        assert name in expected, f"{name} has no Keras counterpart ({sorted(expected)[:8]})"
        np.testing.assert_allclose(value, expected[name], rtol=rtol, atol=atol, err_msg=name)
