"""Training a model whose sequence axis is dynamic (`?`): `ktrans train` and `codegen
--target train --data` fix the axis to the data's length (a training step unrolls the
recurrent layers), train exactly as the model declared with that length would, and keep
the axis dynamic in the trained inference model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load
from transpiler.graph.fixed_axes import (
    AxisMismatch,
    dynamic_input_shapes,
    fix_dynamic_axes,
    npz_shapes,
)
from transpiler.graph.types import TensorType

ROOT = Path(__file__).resolve().parents[1]

SEQ = """
model Seq {{
    input words: int64[{length}]
    Embedding(50, 8)
    LSTM(6)
    Dense(3, activation=softmax)
}}
train Seq {{
    loss = categorical_crossentropy
    optimizer = Adam(0.01)
    batch_size = 16
    epochs = 2
}}
"""


def seq_data(path: Path, length: int = 7, n: int = 48) -> Path:
    rng = np.random.default_rng(0)
    words = rng.integers(0, 50, (n, length))
    labels = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    np.savez(path, words=words, output=labels)
    return path


def ktrans(*args):
    return subprocess.run(
        [sys.executable, "-m", "transpiler", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_fix_dynamic_axes_sets_lengths_and_checks_the_rest():
    t = TensorType("float32", ("batch", "x_1", 8))
    assert fix_dynamic_axes("x", t, (5, 8), {}).shape == ("batch", 5, 8)
    with pytest.raises(AxisMismatch, match="axis 2 is declared 8; the data's 'x' has 9"):
        fix_dynamic_axes("x", t, (5, 9), {})
    with pytest.raises(AxisMismatch, match="has 2 axes besides the batch"):
        fix_dynamic_axes("x", t, (5,), {})
    named = {}
    shared = TensorType("float32", ("batch", "T", 8))
    fix_dynamic_axes("a", shared, (5, 8), named)
    with pytest.raises(AxisMismatch, match="'T' is 5 long"):
        fix_dynamic_axes("b", shared, (6, 8), named)


def test_data_that_does_not_fit_is_an_error_at_the_input():
    text = SEQ.format(length="?, 3")
    with pytest.raises(KdlErrors) as e:
        load("seq.kdl", text, input_shapes={"words": (7, 4)})
    message = str(e.value)
    assert "seq.kdl:3:11" in message and "declared 3; the data's 'words' has 4" in message


def test_shapes_come_from_the_npz_headers(tmp_path):
    data = seq_data(tmp_path / "d.npz", length=11)
    assert npz_shapes(data) == {"words": (48, 11), "output": (48, 3)}
    _, graphs = load("seq.kdl", SEQ.format(length="?"))
    assert dynamic_input_shapes(graphs["Seq"], data) == {"words": (11,)}
    assert dynamic_input_shapes(graphs["Seq"], tmp_path / "d.csv") == {}
    _, fixed = load("seq.kdl", SEQ.format(length="11"))
    assert dynamic_input_shapes(fixed["Seq"], data) == {}


def test_codegen_without_data_says_what_to_do(tmp_path):
    kdl = tmp_path / "seq.kdl"
    kdl.write_text(SEQ.format(length="?"))
    result = ktrans("codegen", kdl, "--target", "train", "-o", tmp_path / "b")
    assert result.returncode == 1
    assert "declare the time axis with a number" in result.stderr
    assert "--data" in result.stderr
    assert not (tmp_path / "b").exists()


def test_training_a_dynamic_axis_equals_training_the_declared_length(tmp_path):
    data = seq_data(tmp_path / "d.npz")
    results = {}
    for length in ("?", "7"):
        kdl = tmp_path / f"seq_{length != '?'}.kdl"
        kdl.write_text(SEQ.format(length=length))
        out = tmp_path / f"run_{length != '?'}"
        run = ktrans("train", kdl, "--data", data, "--out", out, "--verbose", "0")
        assert run.returncode == 0, run.stderr
        results[length] = out
    dynamic, static = results["?"], results["7"]
    train = onnx.load(dynamic / "Seq.train.onnx", load_external_data=False)
    assert dims(next(i for i in train.graph.input if i.name == "words")) == ["batch", 7]
    trained = onnx.load(dynamic / "Seq.trained.onnx")
    assert dims(trained.graph.input[0]) == ["batch", "words_1"]  # dynamic, as declared
    history = [json.loads((out / "history.json").read_text()) for out in (dynamic, static)]
    assert history[0] == history[1]
    ours = {t.name: onnx.numpy_helper.to_array(t) for t in trained.graph.initializer}
    reference = onnx.load(static / "Seq.trained.onnx")
    for t in reference.graph.initializer:
        np.testing.assert_array_equal(ours[t.name], onnx.numpy_helper.to_array(t))
    # the trained model runs on sequences of other lengths
    import onnxruntime as ort

    session = ort.InferenceSession(str(dynamic / "Seq.trained.onnx"))
    (probs,) = session.run(None, {"words": np.zeros((2, 12), np.int64)})
    assert probs.shape == (2, 3)


def test_codegen_with_data_fixes_the_axis(tmp_path):
    kdl = tmp_path / "seq.kdl"
    kdl.write_text(SEQ.format(length="?"))
    data = seq_data(tmp_path / "d.npz", length=5)
    result = ktrans("codegen", kdl, "--target", "train", "--data", data, "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    train = onnx.load(tmp_path / "b" / "Seq.train.onnx")
    assert dims(next(i for i in train.graph.input if i.name == "words")) == ["batch", 5]
