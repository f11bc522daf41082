"""Trained weights leave a run in Keras's formats (issue 10 §2), for the 11 examples: one
epoch of `ktrans train` on a few rows of generated data, then

- the run's `<Model>.weights.h5`, loaded with `load_weights` into the model of
  `ktrans codegen --target keras`, predicts what the trained `.onnx` predicts (1e-5);
- `ktrans build --weights` of the run's Keras-layout `<Model>.weights.npz`, of its
  `<Model>.weights.h5`, and of its `checkpoint.npz` (ONNX-layout state), gives that
  `.onnx`'s outputs again.

ResNet50 and MobileNetV2 have no train block and take 224x224 images: the test gives them
one (SGD, categorical crossentropy) and 32x32 images (the same layers and weights, global
pooling before the classifier), and one step of a batch of 2. TweetPair reads tweets of
280 characters with an LSTM, which trains unrolled over the timesteps: the test gives it
6 (the same layers and weights); Seq2Seq's `?` sequence axes get 3 steps from the data.
DigitsCNN and WineMLP train on an .npz here, not on their image folder and CSV table:
their `data { }` sections (which only those sources take) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.emit.keras_twin import keras_model, load_graph, predict
from transpiler.cli import main
from transpiler.runtime.session import create_session

ROOT = Path(__file__).resolve().parents[3]
BIG = ("resnet50", "mobilenet_v2")
NAMES = [
    "mnist_mlp",
    "mnist_cnn",
    "toy_resnet",
    "tweet_pair",
    "ticket_triage",
    "addition_rnn",
    "digits_cnn",
    "wine_mlp",
    "lstm_seq2seq",
    *(pytest.param(n, marks=pytest.mark.slow) for n in BIG),
]


def example_text(name: str) -> str:
    text = (ROOT / "examples" / f"{name}.kdl").read_text()
    # DigitsCNN's and WineMLP's data sections read an image folder and a CSV table: the
    # test gives every example an .npz, so the section goes (the model stays as written)
    text = re.sub(r"\n    data \{.*?\n    \}", "", text, flags=re.S)
    if name == "tweet_pair":
        text = text.replace("float32[280, 256]", "float32[6, 256]")
    if name in BIG:
        model = "ResNet50" if name == "resnet50" else "MobileNetV2"
        text = text.replace("float32[224, 224, 3]", "float32[32, 32, 3]")
        text += (
            f"\ntrain {model} {{\n    loss = categorical_crossentropy\n    optimizer = sgd\n}}\n"
        )
    return text


def generated_data(graph, rows: int, rng, length: int) -> tuple[dict, dict]:
    """(model inputs, the .npz arrays: inputs and one target per trained output). A `?`
    axis (lstm_seq2seq's sequences) gets `length`, in inputs and targets alike."""
    config = graph.trains["default"]

    def fixed(dims) -> list[int]:
        return [rows] + [d if isinstance(d, int) else length for d in dims[1:]]

    inputs = {}
    for v in graph.inputs:
        shape = fixed(v.type.shape)
        if v.type.dtype.startswith("int"):
            inputs[v.name] = rng.integers(0, 10, size=shape).astype(v.type.dtype)
        else:
            inputs[v.name] = rng.normal(0, 1, size=shape).astype(np.float32)
    arrays = dict(inputs)
    for name, spec in config.loss.items():
        shape = fixed(graph.outputs[name].type.shape)
        classes = shape[-1]
        if spec.name.startswith("categorical"):
            hot = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, size=shape[:-1])]
            arrays[name] = hot
        elif spec.name.startswith("sparse_categorical"):
            arrays[name] = rng.integers(0, classes, size=shape[:-1]).astype(np.int64)
        else:
            arrays[name] = rng.integers(0, 2, size=shape).astype(np.float32)
    return inputs, arrays


def ktrans(capfd, *args) -> str:
    """Runs ktrans in this process (`train` runs its script in a child); its stdout."""
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert code == 0, out + err
    return out


def onnx_run(path, feeds) -> list[np.ndarray]:
    return create_session(str(path)).run(None, feeds)


@pytest.mark.parametrize("name", NAMES)
def test_trained_weights_reach_keras_and_come_back(name, tmp_path, capfd):
    text = example_text(name)
    program, graph = load_graph(text, tmp_path, name)
    rng = np.random.default_rng(0)
    rows, batch = (2, 2) if name in BIG else (6, 3)
    inputs, arrays = generated_data(graph, rows, rng, length=3)
    np.savez(tmp_path / "data.npz", **arrays)
    run = tmp_path / "run"
    src = tmp_path / f"{name}.kdl"
    printed = ktrans(
        capfd,
        "train",
        src,
        "--data",
        tmp_path / "data.npz",
        "--epochs",
        1,
        "--batch-size",
        batch,
        "--validation-split",
        0,
        "--out",
        run,
        "--verbose",
        0,
    )
    model_name = graph.name
    h5, npz = run / f"{model_name}.weights.h5", run / f"{model_name}.weights.npz"
    assert f"wrote {h5}" in printed and f"wrote {npz}" in printed
    trained = onnx_run(run / f"{model_name}.trained.onnx", inputs)

    keras = keras_model(program, graph, tmp_path)
    keras.load_weights(str(h5))
    for got, want in zip(predict(keras, graph, inputs), trained):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    for weights in (npz, h5, run / "checkpoint.npz"):
        out = tmp_path / f"from_{weights.stem}.onnx"
        ktrans(capfd, "build", src, "--weights", weights, "-o", out)
        for got, want in zip(onnx_run(out, inputs), trained):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
