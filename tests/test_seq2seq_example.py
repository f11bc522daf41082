"""examples/lstm_seq2seq.kdl beyond its structure (tests/test_examples.py compares that
with the Keras twin): the same outputs as the twin on the same weights, at sequence
lengths chosen at run time; the generated data set it trains on
(tools/make_seq2seq_data.py); and `ktrans train` on that data for a couple of steps."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from transpiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lstm_seq2seq.kdl"


def data_tool():
    spec = importlib.util.spec_from_file_location(
        "make_seq2seq_data", ROOT / "tools/make_seq2seq_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("len_in", "len_out"), [(7, 5), (3, 9)])
def test_outputs_match_the_keras_twin(tmp_path, len_in, len_out):
    pytest.importorskip("keras")
    from tests.emit.parity import compare
    from tests.test_examples import keras_lstm_seq2seq

    rng = np.random.default_rng(len_in)
    inputs = {
        "encoder_inputs": np.eye(71, dtype=np.float32)[rng.integers(0, 71, (2, len_in))],
        "decoder_inputs": np.eye(93, dtype=np.float32)[rng.integers(0, 93, (2, len_out))],
    }
    ours, _ = compare(EXAMPLE.read_text(), keras_lstm_seq2seq(), inputs, tmp_path)
    assert ours[0].shape == (2, len_out, 93)
    np.testing.assert_allclose(ours[0].sum(-1), 1.0, rtol=1e-5)  # a softmax per step


def test_generated_data_is_encoded_as_the_keras_example_encodes():
    tool = data_tool()
    arrays = tool.make(samples=50, digits=3, seed=1)
    enc, dec_in, dec_out = (
        arrays[k] for k in ("encoder_inputs", "decoder_inputs", "decoder_outputs")
    )
    assert enc.shape[0] == dec_in.shape[0] == 50 and enc.shape[2] == 71 and dec_in.shape[2] == 93
    assert dec_out.shape == dec_in.shape
    for array in arrays.values():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array.sum(-1), 1.0)  # one character per step
    np.testing.assert_array_equal(dec_out[:, :-1], dec_in[:, 1:])  # teacher forcing
    texts = tool.pairs(50, 3, 1)
    chars = sorted(set("\t\n ") | set("".join(b for _, b in texts)))  # sorted, as Keras's
    first = texts[0]
    decoded = "".join(chars[i] for i in dec_in[0].argmax(-1)).rstrip(" ")
    assert decoded == "\t" + first[1] + "\n"
    in_chars = sorted({" "} | set("".join(a for a, _ in texts)))
    assert "".join(in_chars[i] for i in enc[0].argmax(-1)).rstrip(" ") == first[0]


def test_ktrans_train_runs_on_generated_data(tmp_path, capfd):
    tool = data_tool()
    data = tmp_path / "seq2seq.npz"
    np.savez_compressed(data, **tool.make(samples=40, digits=2, seed=0))
    out = tmp_path / "run"
    argv = ["train", str(EXAMPLE), "--data", str(data), "--epochs", "1", "--batch-size", "16"]
    assert main([*argv, "--out", str(out)]) == 0, capfd.readouterr().err
    printed = capfd.readouterr().out  # the training script runs in its own process
    assert "Seq2Seq: 1 epochs, 2 steps" in printed  # 32 training samples (validation 0.2)
    history = json.loads(next(out.glob("*history*.json")).read_text())
    losses = history["loss"] if isinstance(history, dict) else [e["loss"] for e in history]
    assert np.isfinite(losses).all()
    assert (out / "Seq2Seq.trained.onnx").exists()
