"""Convergence on the bundled MNIST subset (4,000 train / 1,000 test): each example
trained by `ktrans train` (the generated script) and by Keras 3 fit (torch backend) with
the same hyperparameters from the example's train block; test accuracy of both. Both
get the raw 0..255 pixels: each model's first layer is Rescaling(1 / 255).

Run: .venv/bin/python bench/convergence.py [--models mnist_mlp mnist_cnn] [--epochs N]
       [--seeds 0 1 2]

With several seeds, each framework trains once per seed (initial weights, shuffling and
dropout differ) and the mean is compared: 1,000 test images make one run's accuracy
uncertain by about half a point.
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


def ktrans_accuracy(name: str, out: Path, epochs: int | None, seed: int) -> tuple[float, float]:
    start = time.perf_counter()
    extra = (["--epochs", str(epochs)] if epochs else []) + ["--seed", str(seed)]
    subprocess.run(
        [sys.executable, "-m", "transpiler", "train", str(ROOT / f"examples/{name}.kdl"),
         "--data", str(DATA), "--out", str(out), "--verbose", "0", *extra],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    return float(results["test"]["accuracy"]), time.perf_counter() - start


def keras_accuracy(name: str, epochs: int | None, seed: int) -> tuple[float, float]:
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
    # the raw 0..255 pixels, as ktrans gets them: both models scale with their Rescaling
    x = data["x_train"].astype(np.float32).reshape(-1, *SHAPES[name])
    xt = data["x_test"].astype(np.float32).reshape(-1, *SHAPES[name])
    y, yt = np.eye(10)[data["y_train"]], np.eye(10)[data["y_test"]]
    keras.utils.set_random_seed(seed)
    model = KERAS_TWINS[name]()
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=epochs or config.epochs,
        validation_split=config.validation_split,
        verbose=0,
    )
    elapsed = time.perf_counter() - start
    return float(model.evaluate(xt, yt, verbose=0)[1]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(SHAPES))
    parser.add_argument("--epochs", type=int, help="instead of the train block's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            ours, theirs = [], []
            for seed in args.seeds:
                acc, t_ours = ktrans_accuracy(name, Path(tmp) / f"{name}_{seed}", args.epochs, seed)
                ours.append(acc)
                acc, t_theirs = keras_accuracy(name, args.epochs, seed)
                theirs.append(acc)
                print(
                    f"{name:10s} seed {seed}: ktrans test accuracy {ours[-1]:.4f} "
                    f"({t_ours:.0f} s)   Keras {theirs[-1]:.4f} ({t_theirs:.0f} s)",
                    flush=True,
                )
            mean_ours, mean_theirs = float(np.mean(ours)), float(np.mean(theirs))
            print(
                f"{name:10s} mean of {len(args.seeds)}: ktrans {mean_ours:.4f}   Keras "
                f"{mean_theirs:.4f}   difference {100 * (mean_ours - mean_theirs):+.2f} points"
            )


if __name__ == "__main__":
    main()
