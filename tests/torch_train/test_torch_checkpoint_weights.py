"""`ktrans build --weights RUN/checkpoint.npz` of a PyTorch-engine run (issue 10 §2): its
checkpoint holds the weights in Keras layout, beside the optimizer's slots; the model
built from it predicts what the run's trained `.onnx` predicts."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.cli import main
from transpiler.runtime.session import create_session

pytest.importorskip("torch")

TRAIN = """
train {name} {{
    loss = categorical_crossentropy
    optimizer = adam
    batch_size = 4
    epochs = 1
    validation_split = 0.0
}}
"""
MODELS = {
    "lstm": ("Seq", "input x: float32[5, 3]\n    LSTM(4)", (5, 3)),
    "conv": ("Img", "input x: float32[6, 6, 1]\n    Conv2D(4, 3, activation=relu)\n    Flatten()",
             (6, 6, 1)),
}  # fmt: skip


def model_text(name: str, layers: str) -> str:
    body = f"model {name} {{\n    {layers}\n    Dense(2, activation=softmax)\n}}\n"
    return body + TRAIN.format(name=name)


def ktrans(capfd, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out + err


@pytest.fixture(scope="module", params=sorted(MODELS))
def torch_run(request, tmp_path_factory):
    """(the .kdl, the run folder, the inputs, the model's name) of one epoch on 8 rows."""
    name, layers, shape = MODELS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    kdl = tmp / f"{request.param}.kdl"
    kdl.write_text(model_text(name, layers))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, *shape)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 8)]
    np.savez(tmp / "data.npz", x=x, y=y)
    run = tmp / "run"
    code = main(["train", str(kdl), "--data", str(tmp / "data.npz"), "--engine", "torch",
                 "--out", str(run), "--verbose", "0"])  # fmt: skip
    assert code == 0
    return kdl, run, x, name


def test_a_torch_checkpoint_builds_the_trained_model(torch_run, tmp_path, capfd):
    kdl, run, x, name = torch_run
    out = tmp_path / "from_checkpoint.onnx"
    code, printed = ktrans(capfd, "build", kdl, "--weights", run / "checkpoint.npz", "-o", out)
    assert code == 0, printed
    got = create_session(str(out)).run(None, {"x": x})
    want = create_session(str(run / f"{name}.trained.onnx")).run(None, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_a_torch_checkpoint_of_a_changed_model_names_the_weight(torch_run, tmp_path, capfd):
    kdl, run, _, name = torch_run
    changed = tmp_path / "changed.kdl"
    changed.write_text(kdl.read_text().replace("Dense(2,", "Dense(3,"))
    code, printed = ktrans(
        capfd, "build", changed, "--weights", run / "checkpoint.npz", "-o", tmp_path / "m.onnx"
    )
    assert code == 1
    assert "'dense/kernel' has shape (" in printed
    assert "in the checkpoint, but the model needs" in printed
    assert "the model changed since the checkpoint was written" in printed
    assert not (tmp_path / "m.onnx").exists()
