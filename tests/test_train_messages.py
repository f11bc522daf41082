"""Messages a user meets when training (issue 10, section 4): wrong or missing array names
read the same for `?`-axis and fixed-shape models, codegen of a `?`-axis model without
--data says to pass it, a two-input model given x_train/y_train hears what it expected,
and a model with a default and a named train block trains the default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

TOKENS = """
model Tok {{
    input tokens: float32[{length}, 4]
    Conv1D(8, 3, activation=relu)
    GlobalAveragePooling1D()
    Dense(3, activation=softmax)
}}
train Tok {{
    loss = categorical_crossentropy
    optimizer = Adam(0.01)
    batch_size = 16
    epochs = 1
}}
"""

PAIR = """
model Pair {
    input a: float32[4]
    input b: float32[4]
    h = concatenate([a, b])
    Dense(2, activation=softmax)(h)
}
train Pair {
    loss = categorical_crossentropy
    optimizer = Adam(0.01)
    batch_size = 16
    epochs = 1
}
train Pair as fast {
    loss = categorical_crossentropy
    optimizer = SGD(0.1)
    epochs = 2
}
"""


def ktrans(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transpiler", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=300,
    )


@pytest.fixture
def wrong_names(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "wrong.npz"
    x = rng.normal(size=(32, 10, 4)).astype(np.float32)
    np.savez(path, x_tr=x, y=np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)])
    return path


@pytest.mark.parametrize("length", ["?", "10"])
def test_missing_arrays_read_the_same_with_or_without_dynamic_axes(tmp_path, wrong_names, length):
    kdl = tmp_path / "tok.kdl"
    kdl.write_text(TOKENS.format(length=length))
    result = ktrans("train", kdl, "--data", wrong_names, "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "the train data has no array 'tokens'" in result.stderr
    assert "it holds: x_tr, y" in result.stderr
    assert "dynamic spatial size" not in result.stderr and "Traceback" not in result.stderr


def test_codegen_of_a_dynamic_axis_model_without_data_says_to_pass_it(tmp_path):
    kdl = tmp_path / "tok.kdl"
    kdl.write_text(TOKENS.format(length="?"))
    result = ktrans("codegen", kdl, "--target", "train", "-o", tmp_path / "bundle")
    assert result.returncode == 1
    assert "tok.kdl:3:5: error: Tok has inputs with dynamic axes (tokens: float32[?, 4])" in (
        result.stderr
    )
    assert "pass --data D.npz" in result.stderr
    # only the hint: not the Conv1D gradient failure the dynamic axis causes
    assert "dynamic spatial size" not in result.stderr and "gap in ktrans" not in result.stderr
    assert "1 error" in result.stderr
    assert not (tmp_path / "bundle").exists()


def test_two_inputs_given_keras_names_hear_what_was_expected(tmp_path):
    kdl = tmp_path / "pair.kdl"
    kdl.write_text(PAIR)
    data = tmp_path / "xy.npz"
    np.savez(data, x_train=np.zeros((8, 4), np.float32), y_train=np.zeros((8, 2), np.float32))
    result = ktrans("train", kdl, "--data", data, "--out", tmp_path / "out")
    assert result.returncode == 1
    message = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert message.startswith(
        f"error: --data {data}: the train data has no arrays 'a', 'b' and 'output'; "
        "it holds: x_train, y_train. Keras's names (x_train, y_train) serve a model "
        "with one input and one trained output; this one has the input(s) a, b"
    )
    assert "or x_train" not in message  # it does not offer what it then refuses


def test_the_default_train_block_trains_without_train(tmp_path):
    kdl = tmp_path / "pair.kdl"
    kdl.write_text(PAIR)
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(
        data,
        a=rng.normal(size=(32, 4)).astype(np.float32),
        b=rng.normal(size=(32, 4)).astype(np.float32),
        output=np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)],
    )
    result = ktrans("train", kdl, "--data", data, "--out", tmp_path / "out", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["train_block"] == "default" and results["epochs"] == 1
    fast = ktrans("train", kdl, "--data", data, "--train", "fast", "--out", tmp_path / "fast")
    assert fast.returncode == 0, fast.stderr
    assert json.loads((tmp_path / "fast" / "results.json").read_text())["epochs"] == 2
