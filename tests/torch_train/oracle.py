"""Keras 3 as the oracle for the torch engine's training pieces: the same train block in
Keras (train_on_batch) and in PyTorch (the bundle runtime's torch_losses and
torch_optim on a small Keras-exact module), from the same weights and batch."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

from tests.emit.train.keras_oracle import compile_like
from tests.emit.train.keras_step import (
    keras_weights_now,
    ktrans_graph,
    set_keras_weights,
)

ACTIVATIONS = {
    "linear": lambda t, x: x,
    "tanh": lambda t, x: t.tanh(x),
    "relu": lambda t, x: t.relu(x),
    "sigmoid": lambda t, x: t.sigmoid(x),
    "softmax": lambda t, x: t.softmax(x, dim=-1),
    "softplus": lambda t, x: t.nn.functional.softplus(x),
}


def dense_stack(sizes: list[int], activations: list[str]):
    """A torch module computing Keras Dense layers `dense`, `dense_1`, ... in turn,
    with parameters named as Keras names them and held in torch's layout."""
    import torch

    class Stack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.names = ["dense" if i == 0 else f"dense_{i}" for i in range(len(activations))]
            for name, n_in, n_out in zip(self.names, sizes, sizes[1:]):
                self.add_module(name, torch.nn.Linear(n_in, n_out))

        def forward(self, x):
            for name, activation in zip(self.names, activations):
                x = ACTIVATIONS[activation](torch, getattr(self, name)(x))
            return x

        def params(self) -> dict:
            """{"<layer>/<weight>": parameter}, in the model's order."""
            out = {}
            for name in self.names:
                out[f"{name}/kernel"] = getattr(self, name).weight
                out[f"{name}/bias"] = getattr(self, name).bias
            return out

        def load_keras(self, weights: dict) -> None:
            with torch.no_grad():
                for name in self.names:
                    getattr(self, name).weight.copy_(torch.tensor(weights[name]["kernel"]).T)
                    getattr(self, name).bias.copy_(torch.tensor(weights[name]["bias"]))

        def keras(self) -> dict:
            return {
                name: {
                    "kernel": getattr(self, name).weight.detach().numpy().T.copy(),
                    "bias": getattr(self, name).bias.detach().numpy().copy(),
                }
                for name in self.names
            }

    return Stack()


def train_both(kdl, tmp_path, keras_model, module, x, y, steps=3, seed=3):
    """`steps` train_on_batch calls in Keras, and as many steps of the runtime's torch
    loss and optimizer on `module`, from the same weights. Returns .keras_logs,
    .expected (Keras's weights after each step), .losses, .weights (ours after each
    step), .optimizer, .module, .km."""
    import torch

    from transpiler.emit.code.torch_train import loss_specs, optimizer_spec, regularizer_specs
    from transpiler.emit.onnx import initial_weights
    from transpiler.templates.ktrans_runtime.torch_losses import Counts, TrainingLoss
    from transpiler.templates.ktrans_runtime.torch_optim import KerasOptimizer

    graph = ktrans_graph(kdl, tmp_path)
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=seed)
    km = keras_model()
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    keras_logs, expected = [], []
    for _ in range(steps):
        keras_logs.append(km.train_on_batch(x, y, return_dict=True))
        expected.append(keras_weights_now(km, graph))

    module.load_keras(weights)
    params = module.params()
    optimizer = KerasOptimizer(optimizer_spec(config), params)
    loss_fn = TrainingLoss(loss_specs(config), regularizer_specs(graph))
    lr = config.optimizer.kwargs["learning_rate"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses, ours = [], []
    for step in range(steps):
        for p in params.values():
            p.grad = None
        out = module(xt)
        loss, _ = loss_fn({"output": out}, {"output": yt}, {}, params, Counts())
        loss.backward()
        optimizer.apply({k: p.grad for k, p in params.items()}, step, lr)
        losses.append(float(loss.detach()))
        ours.append(module.keras())
    return SimpleNamespace(
        keras_logs=keras_logs,
        expected=expected,
        losses=losses,
        weights=ours,
        optimizer=optimizer,
        module=module,
        km=km,
        graph=graph,
    )


def assert_close(ours: dict, theirs: dict, rtol=1e-5, atol=1e-6, what=""):
    """Nested {layer: {weight: array}} agreement, the absolute tolerance scaled by the
    tensor's largest entry."""
    for layer, weights in theirs.items():
        for name, value in weights.items():
            scale = max(1.0, float(np.max(np.abs(value)))) if np.size(value) else 1.0
            np.testing.assert_allclose(
                ours[layer][name],
                value,
                rtol=rtol,
                atol=atol * scale,
                err_msg=f"{what}{layer}/{name}",
            )


def assert_every_step(run, rtol=1e-5, atol=1e-6):
    for i, (ours, theirs) in enumerate(zip(run.weights, run.expected)):
        assert_close(ours, theirs, rtol, atol, f"after step {i + 1}: ")
        np.testing.assert_allclose(run.losses[i], run.keras_logs[i]["loss"], rtol=1e-5)
