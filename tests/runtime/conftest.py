"""A small trained run folder, shared by the report, evaluate and predict tests."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.cli import main

TINY = """
model Tiny {
    input features: float32[6]
    Dense(8, activation=relu)
    Dropout(0.2)
    Dense(3, activation=softmax)
}

train Tiny {
    loss = categorical_crossentropy
    optimizer = Adam(learning_rate=0.01)
    metrics = [accuracy]
    batch_size = 16
    epochs = 3
    validation_split = 0.2
}
"""


def tiny_data(rows: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(the .kdl file, the .npz data, the run folder) of 3 epochs of Tiny."""
    root = tmp_path_factory.mktemp("tiny")
    kdl = root / "tiny.kdl"
    kdl.write_text(TINY)
    x, y = tiny_data()
    data = root / "tiny.npz"
    np.savez(data, x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    run = root / "run"
    code = main(["train", str(kdl), "--data", str(data), "--out", str(run), "--verbose", "0"])
    assert code == 0
    return kdl, data, run
