"""Convergence on the bundled MNIST subset (4,000 train / 1,000 test): each example
trained by `ktrans train` (the generated script) and by Keras 3 fit (torch backend) with
the same hyperparameters from the example's train block; test accuracy of both.

Run: .venv/bin/python bench/convergence.py [--models mnist_mlp mnist_cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples/data/mnist_5k.npz"
SHAPES = {"mnist_mlp": (784,), "mnist_cnn": (28, 28, 1)}


def ktrans_accuracy(name: str, out: Path, epochs: int | None) -> tuple[float, float]:
    start = time.perf_counter()
    extra = ["--epochs", str(epochs)] if epochs else []
    subprocess.run(
        [sys.executable, "-m", "transpiler", "train", str(ROOT / f"examples/{name}.kdl"),
         "--data", str(DATA), "--out", str(out), "--verbose", "0", *extra],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    return float(results["test"]["accuracy"]), time.perf_counter() - start


def keras_accuracy(name: str, epochs: int | None) -> tuple[float, float]:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    sys.path.insert(0, str(ROOT / "tests"))
    from test_examples import KERAS_TWINS

    from transpiler.graph import load_one

    _, graph = load_one(str(ROOT / f"examples/{name}.kdl"))
    config = graph.trains["default"]
    spec = config.optimizer
    optimizer = getattr(keras.optimizers, spec.name)(
        **{k: v for k, v in spec.kwargs.items() if v is not None}
    )
    data = np.load(DATA)
    x = (data["x_train"].astype(np.float32) / 255).reshape(-1, *SHAPES[name])
    xt = (data["x_test"].astype(np.float32) / 255).reshape(-1, *SHAPES[name])
    y, yt = np.eye(10)[data["y_train"]], np.eye(10)[data["y_test"]]
    keras.utils.set_random_seed(0)
    model = KERAS_TWINS[name]()
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_split=config.validation_split,
        verbose=0,
    )
    elapsed = time.perf_counter() - start
    return float(model.evaluate(xt, yt, verbose=0)[1]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(SHAPES))
    parser.add_argument("--epochs", type=int, help="instead of the train block's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            ours, t_ours = ktrans_accuracy(name, Path(tmp) / name, args.epochs)
            theirs, t_theirs = keras_accuracy(name, args.epochs)
            print(
                f"{name:10s} ktrans test accuracy {ours:.4f} ({t_ours:.0f} s)   "
                f"Keras {theirs:.4f} ({t_theirs:.0f} s)   difference "
                f"{100 * (ours - theirs):+.1f} points"
            )


if __name__ == "__main__":
    main()
