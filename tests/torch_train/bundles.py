"""Writing and running PyTorch training bundles in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HOOKS = ("KTRANS_TEST_INTERRUPT_AFTER_STEPS", "KTRANS_TEST_KILL_AFTER_STEPS")

# A small classifier without Dropout: its runs are the same in any number of processes
# and on both engines.
TINY = """
model {name} {{
    input x: float32[6]
    Dense(16, activation=tanh)
    Dense(3, activation=softmax)
}}
train {name} {{
    loss = categorical_crossentropy
    optimizer = {optimizer}
    metrics = [accuracy, precision]
    batch_size = {batch}
    epochs = {epochs}
    validation_split = 0.2
    {extra}
}}
"""


def tiny(name="Tiny", optimizer="Adam(learning_rate=0.01)", batch=16, epochs=3, extra=""):
    return TINY.format(name=name, optimizer=optimizer, batch=batch, epochs=epochs, extra=extra)


def graph_of(folder: Path, text: str, name: str = "model"):
    from transpiler.graph import load

    kdl = folder / f"{name}.kdl"
    kdl.write_text(text)
    program, graphs = load(str(kdl))
    return program, next(iter(graphs.values())), kdl


def torch_bundle(folder: Path, text: str, name: str = "bundle", seed: int = 0) -> Path:
    """Writes the .kdl text and its PyTorch bundle; returns the script's path."""
    from transpiler.emit.code.torch_bundle import write_torch_bundle
    from transpiler.emit.code.train_script import pick_train

    program, graph, kdl = graph_of(folder, text, name)
    paths = write_torch_bundle(graph, pick_train(graph), folder / name, seed, program, str(kdl))
    return paths[0]


def onnx_bundle(folder: Path, text: str, name: str = "onnx", seed: int = 0) -> Path:
    from transpiler.emit.code.train_script import pick_train, write_training_bundle

    _, graph, _ = graph_of(folder, text, name)
    return write_training_bundle(graph, pick_train(graph), folder / name, seed=seed)[0]


def tiny_data(path: Path, rows: int = 120, test_rows: int = 30) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(rows + test_rows, 6)).astype(np.float32)
    y = (x @ w).argmax(1)
    np.savez(path, x_train=x[:rows], y_train=y[:rows], x_test=x[rows:], y_test=y[rows:])
    return path


def environment(env: dict | None = None) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in HOOKS}
    full.update(env or {})
    full.setdefault("OMP_NUM_THREADS", "1")
    return full


def run(script: Path, *args, env: dict | None = None, timeout: int = 180):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(env),
        timeout=timeout,
    )


def torchrun(script: Path, processes: int, *args, env=None, timeout: int = 240):
    """The script under torchrun (standalone: a rendezvous on this machine)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes), "--monitor-interval", "0.2",
        str(script), *map(str, args),
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, env=environment(env), timeout=timeout
    )


def ktrans(*args, env: dict | None = None, timeout: int = 240):
    """The ktrans command line in a fresh Python (as a user runs it)."""
    code = "import sys\nfrom transpiler.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(env),
        timeout=timeout,
    )


def ok(result) -> None:
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])


def checkpoint_state(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {n: archive[n] for n in archive.files if n != "meta"}


def trained_weights(path: Path) -> dict[str, np.ndarray]:
    """The trained state_dict (<Model>.trained.pt) as numpy arrays."""
    import torch

    return {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}
