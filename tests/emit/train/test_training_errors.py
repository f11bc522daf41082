"""Training graphs that ktrans hands out are valid, and what goes wrong while building one
is reported at the .kdl layer (issue 10, sections 1 and 5).

- The three failures the issue saw: an UpSampling2D/PReLU autoencoder, BatchNormalization
  first on an image input, and Embedding on int32 ids now train through `ktrans train`,
  and `codegen --target train` writes graphs that onnx's full checker accepts.
- A missing VJP rule, a rule that does not cover a case, and a graph the checker rejects
  name the layer and its line:col (`Scopes`, transpiler/emit/train/graph_errors.py), and
  nothing is written.
- A layer that cannot train as configured is a `ktrans check` error at its call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from transpiler.errors import KdlErrors

ROOT = Path(__file__).resolve().parents[3]

AUTOENCODER = """\
model AutoEncoder {
    input image: float32[8, 8, 1]
    BatchNormalization()
    Conv2D(4, 3, padding=same, activation=relu)
    MaxPooling2D(2)
    Conv2D(4, 3, padding=same)
    PReLU()
    UpSampling2D((2, 2))
    Conv2D(1, 3, padding=same, activation=sigmoid)
}
train AutoEncoder {
    loss = mse
    optimizer = Adam(learning_rate=0.01)
    batch_size = 16
    epochs = 2
}
"""

IDS = """\
model Ids {
    input ids: int32[4]
    Embedding(10, 3)
    Flatten()
    Dense(2)
}
train Ids {
    loss = mse
    optimizer = SGD(learning_rate=0.1)
    batch_size = 8
}
"""

UPSAMPLE = """\
model Up {
    input x: float32[3, 3, 2]
    Dense(2)
    UpSampling2D()
    Flatten()
    Dense(1)
}
train Up {
    loss = mse
}
"""


def _ktrans(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "transpiler", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _cli(capsys, *args) -> tuple[int, str]:
    from transpiler.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _graph(tmp_path, text: str):
    from transpiler.graph import load

    path = tmp_path / "model.kdl"
    path.write_text(text)
    _, graphs = load(str(path))
    return path, next(iter(graphs.values()))


# ------------------------------------------------------------------ the three models


@pytest.mark.parametrize("text", [AUTOENCODER, IDS], ids=["autoencoder", "int32_ids"])
def test_codegen_writes_graphs_the_checker_accepts(tmp_path, capsys, text):
    path = tmp_path / "model.kdl"
    path.write_text(text)
    code, output = _cli(capsys, "codegen", path, "--target", "train", "-o", tmp_path / "b")
    assert code == 0, output
    written = sorted((tmp_path / "b").glob("*.onnx"))
    assert {p.name.split(".")[1] for p in written} >= {"train", "eval"}
    for model in written:
        onnx.checker.check_model(onnx.load(str(model)), full_check=True)


def test_autoencoder_and_int32_ids_train(tmp_path):
    """`ktrans train` runs both to the end: the UpSampling2D and PReLU gradients, a
    BatchNormalization first on an image, and Embedding's gradient for int32 ids."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(64, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "ae.npz", x_train=images, y_train=images)
    ids = rng.integers(0, 10, size=(40, 4)).astype(np.int32)
    targets = rng.normal(size=(40, 2)).astype(np.float32)
    np.savez(tmp_path / "ids.npz", x_train=ids, y_train=targets)
    for name, text in (("ae", AUTOENCODER), ("ids", IDS)):
        (tmp_path / f"{name}.kdl").write_text(text)
        run = _ktrans("train", f"{name}.kdl", "--data", f"{name}.npz", "--out", name, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert np.isfinite(results["final"]["loss"]), results


# ------------------------------------------------------------------ errors at the layer


def test_missing_gradient_rule_names_the_layer(tmp_path, monkeypatch, capsys):
    from transpiler.emit.train import grad
    from transpiler.emit.train.model import build_training_model

    grad.load_rules()
    monkeypatch.delitem(grad.RULES, "Resize")
    path, graph = _graph(tmp_path, UPSAMPLE)
    with pytest.raises(KdlErrors) as info:
        build_training_model(graph, graph.trains["default"])
    assert str(info.value.errors[0]) == (
        f"{path}:4:5: error: UpSampling2D ('up_sampling2d') cannot be trained: ktrans has no "
        "gradient rule for the ONNX op Resize ('up_sampling2d/Resize') that it lowers to"
    )
    out = tmp_path / "bundle"
    code, output = _cli(capsys, "codegen", path, "--target", "train", "-o", out)
    assert code == 1 and "4:5: error: UpSampling2D ('up_sampling2d') cannot be trained" in output
    assert "please report it" in output
    assert not out.exists()


def test_a_case_a_rule_does_not_cover_names_the_layer(tmp_path):
    """Bilinear upsampling of an axis of unknown size (`?`, fixed only by --data)."""
    from transpiler.emit.train.model import build_training_model

    text = UPSAMPLE.replace("float32[3, 3, 2]", "float32[?, 3, 2]")
    text = text.replace("UpSampling2D()", "UpSampling2D(interpolation=bilinear)")
    text = text.replace("    Flatten()\n", "    GlobalAveragePooling2D()\n")
    path, graph = _graph(tmp_path, text)
    with pytest.raises(KdlErrors) as info:
        build_training_model(graph, graph.trains["default"])
    assert str(info.value.errors[0]) == (
        f"{path}:4:5: error: UpSampling2D ('up_sampling2d') cannot be trained: the gradient "
        "rule of the ONNX op Resize ('up_sampling2d/Resize') does not support it: linear "
        "Resize of an axis of dynamic size"
    )


def _gather_without_cast(g, node, grads):
    """Embedding's gradient as it was before issue 10: ScatterND gets the ids as they
    come, int32 ones included, which onnx's checker rejects."""
    (dy,) = grads
    data, indices = node.input
    rows = g.shape(data)
    flat_idx = g.op("Reshape", [indices, g.ints([-1, 1], "shape")])
    flat_dy = g.op("Reshape", [dy, g.ints([-1, *rows[1:]], "shape")])
    zeros = g.op("Mul", [data, g.const(0.0)])
    return [g.op("ScatterND", [zeros, flat_idx, flat_dy], reduction="add"), None]


def test_a_graph_the_checker_rejects_names_the_layer_and_is_not_written(
    tmp_path, monkeypatch, capsys
):
    from transpiler.emit.train import grad
    from transpiler.emit.train.model import build_training_model

    grad.load_rules()
    monkeypatch.setitem(grad.RULES, "Gather", _gather_without_cast)
    path, graph = _graph(tmp_path, IDS)
    with pytest.raises(KdlErrors) as info:
        build_training_model(graph, graph.trains["default"])
    message = str(info.value.errors[0])
    assert message.startswith(
        f"{path}:3:5: error: Embedding ('embedding') cannot be trained: the training graph "
        "ktrans built is rejected by onnx's checker:"
    ), message
    assert "ScatterND" in message and "tensor(int32)" in message
    out = tmp_path / "bundle"
    code, output = _cli(capsys, "codegen", path, "--target", "train", "-o", out)
    assert code == 1 and "3:5: error: Embedding ('embedding') cannot be trained" in output
    assert not out.exists()


def test_untrainable_layer_is_a_check_error_at_its_call(tmp_path, capsys):
    body = """\
model M {
    input x: float32[3, 4, 2]
    TimeDistributed(Bidirectional(LSTM(2, activity_regularizer=l2(0.01))))
    Flatten()
    Dense(1)
}
"""
    path = tmp_path / "m.kdl"
    path.write_text(body)
    assert _cli(capsys, "check", path)[0] == 0  # no train block: it only has to run
    path.write_text(body + "train M {\n    loss = mse\n}\n")
    code, output = _cli(capsys, "check", path)
    assert code == 1
    assert (
        f"{path}:3:5: error: TimeDistributed ('time_distributed') cannot be trained: an "
        "activity_regularizer on a layer of a Bidirectional inside TimeDistributed (which "
        "Keras applies once per time step) is not applied in training"
    ) in output
    assert "docs/training.md lists what cannot train" in output
    # Keras's SimpleRNN drops its activity_regularizer: nothing to apply, so it trains
    path.write_text(body.replace("LSTM", "SimpleRNN") + "train M {\n    loss = mse\n}\n")
    assert _cli(capsys, "check", path)[0] == 0


def test_weights_stored_differently_for_inference_are_reported_at_the_layer(tmp_path, monkeypatch):
    """A layer whose inference form would hold its weights other than the training model
    does (BatchNormalization first on an image did, before issue 10) is named at its call."""
    from transpiler.emit.code.train_script import pick_train, write_training_bundle
    from transpiler.layers import normalization

    lower = normalization.BatchNormalization.lower

    def folded(self, ctx, inputs):
        if not ctx.training:  # as the old fold did: a transformed copy of a weight
            ctx.weight("moving_variance", lambda v: v * 1.0, "scale0")
        return lower(self, ctx, inputs)

    monkeypatch.setattr(normalization.BatchNormalization, "lower", folded)
    path, graph = _graph(tmp_path, AUTOENCODER)
    with pytest.raises(KdlErrors) as info:
        write_training_bundle(graph, pick_train(graph), tmp_path / "bundle")
    assert str(info.value.errors[0]).startswith(
        f"{path}:3:5: error: cannot generate a training script for AutoEncoder: the layer "
        "'batch_normalization' stores its weights differently for inference "
        "(batch_normalization/moving_variance_scale0)"
    ), str(info.value.errors[0])
    assert not (tmp_path / "bundle").exists()
