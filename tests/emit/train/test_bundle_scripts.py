"""The generated train_<Model>.py of every example: short (a line budget), compiles, passes
ruff; and a model whose inputs are named like the training graph's own names trains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from transpiler.emit.code.train_script import pick_train, render_script, script_settings
from transpiler.emit.onnx.model import initial_weights
from transpiler.emit.train.model import build_training_model
from transpiler.emit.train.names import LOSS_OUTPUT, LR_INPUT, STEP_INPUT
from transpiler.graph import load, load_one

ROOT = Path(__file__).resolve().parents[3]
BUDGET = 150  # lines of train_<Model>.py (issue 11: mnist_cnn's under 150)
# examples without a train block get one, as a user training them would write it
TRAIN_BLOCK = """
train {model} {{
    loss = categorical_crossentropy
    optimizer = Adam(learning_rate=1e-3)
    metrics = [accuracy]
}}
"""
# lengths for the `?` axes (ktrans train takes them from --data): short ones, since a
# training step unrolls the recurrent layers over them
AXES = {
    "ticket_triage": {"title": (12,), "body": (40,)},
    "lstm_seq2seq": {"encoder_inputs": (4, 71), "decoder_inputs": (5, 93)},
}
SLOW = {"mobilenet_v2", "resnet50", "tweet_pair"}  # tweet_pair: 2 x 280 LSTM steps unrolled
# every example (issue 11: "the generated files of all examples")
EXAMPLES = [
    pytest.param(path.stem, marks=pytest.mark.slow) if path.stem in SLOW else path.stem
    for path in sorted((ROOT / "examples").glob("*.kdl"))
]


def test_every_example_is_checked():
    names = {getattr(e, "values", [e])[0] for e in EXAMPLES}
    assert names == {p.stem for p in (ROOT / "examples").glob("*.kdl")}
    assert len(names) >= 11


def example_script(name: str, tmp_path: Path) -> Path:
    """The example's train_<Model>.py (the bundle's other files are not written)."""
    text = (ROOT / "examples" / f"{name}.kdl").read_text()
    program, graph = load_one(str(ROOT / "examples" / f"{name}.kdl"), input_shapes=AXES.get(name))
    if not graph.trains:
        kdl = tmp_path / f"{name}.kdl"
        kdl.write_text(text + TRAIN_BLOCK.format(model=graph.name))
        _, graph = load_one(str(kdl), input_shapes=AXES.get(name))
    config = pick_train(graph)
    tm = build_training_model(graph, config, weights=initial_weights(graph, 0))
    files = {key: f"{graph.name}.{key}" for key in ("train", "eval", "inference", "init")}
    files.update(script=f"train_{graph.name}.py", offsets=f"{graph.name}.offsets.json")
    script = tmp_path / files["script"]
    script.write_text(render_script(script_settings(graph, config, tm, 0, files)))
    return script


def ruff(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_scripts_are_short_compile_and_pass_ruff(tmp_path, name):
    script = example_script(name, tmp_path)
    source = script.read_text()
    lines = len(source.splitlines())
    assert lines < BUDGET, f"{script.name}: {lines} lines (budget {BUDGET})"
    compile(source, str(script), "exec")
    for config in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        check = ruff("check", *config, "--output-format", "concise", str(script))
        assert check.returncode == 0, check.stdout + check.stderr
        fmt = ruff("format", *config, "--check", "--diff", str(script))
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    assert "transpiler" not in source.split('"""', 2)[2]  # the bundle never imports ktrans


COLLIDING = """
model Coll {
    input loss: float32[3]
    input step: float32[2]
    input lr: float32[2]
    h = concatenate([loss, step, lr])
    output loss_out = Dense(2, activation=softmax)(h)
}
train Coll {
    loss = categorical_crossentropy
    optimizer = Adam(0.01)
    metrics = [accuracy]
    batch_size = 8
    epochs = 2
}
"""


def test_inputs_named_loss_step_and_lr_train(tmp_path):
    """The training graph's own inputs and output live in the ktrans: namespace, which no
    .kdl name can take (issue 9, section 5)."""
    kdl = tmp_path / "coll.kdl"
    kdl.write_text(COLLIDING)
    _, graphs = load(str(kdl))
    graph = graphs["Coll"]
    tm = build_training_model(graph, pick_train(graph))
    inputs = [i.name for i in tm.proto.graph.input]
    assert inputs[:5] == ["loss", "step", "lr", "target:loss_out", STEP_INPUT]
    assert LR_INPUT in inputs and tm.proto.graph.output[0].name == LOSS_OUTPUT
    onnx.checker.check_model(tm.proto)

    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(
        data,
        loss=rng.normal(size=(40, 3)).astype(np.float32),
        step=rng.normal(size=(40, 2)).astype(np.float32),
        lr=rng.normal(size=(40, 2)).astype(np.float32),
        loss_out=np.eye(2, dtype=np.float32)[rng.integers(0, 2, 40)],
    )
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "transpiler", "train", str(kdl), "--data", str(data),
         "--out", str(out), "--verbose", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert set(history) == {"epoch", "loss", "accuracy", "learning_rate"}


PIXELS = """
model Pix {
    input image: float32[8, 8, 1]
    Flatten()
    Dense(2, activation=softmax)
}
train Pix {
    loss = sparse_categorical_crossentropy
    optimizer = SGD(0.001)
    batch_size = 4
    data {
        color_mode = grayscale
        validation_split = 0.25
        seed = 1
    }
}
"""

TABLE = """
model Wine {
    input features: float32[3]
    Dense(3, activation=softmax)
}
train Wine {
    loss = categorical_crossentropy
    optimizer = SGD(0.1)
    batch_size = 8
    epochs = 2
    data {
        columns = { features: ["alcohol", "ash", "hue"], output: "kind" }
        categorical = ["kind"]
    }
}
"""


def _train(tmp_path: Path, text: str, data: Path) -> dict:
    kdl = tmp_path / "m.kdl"
    kdl.write_text(text)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "transpiler", "train", str(kdl), "--data", str(data),
         "--out", str(out), "--verbose", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {
        "results": json.loads((out / "results.json").read_text()),
        "data": json.loads((out / "data.json").read_text()),
    }


def test_a_bundle_trains_from_an_image_folder_and_a_csv_table(tmp_path):
    """The data sources (sources.py) plugged into the runtime's dispatcher: --data may be
    a folder of class folders or a CSV table, read as the train block's data section says."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for kind in ("cats", "dogs"):
        (tmp_path / "images" / kind).mkdir(parents=True)
        for i in range(8):
            pixels = (rng.random((8, 8)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / kind / f"{i}.png")
    (tmp_path / "a").mkdir()
    run = _train(tmp_path / "a", PIXELS, tmp_path / "images")
    assert run["data"]["kind"] == "images" and run["data"]["class_names"]
    assert run["results"]["steps"] == 3  # 12 training images (a quarter validates), batch 4

    rows = ["alcohol,ash,hue,kind"]
    for i in range(24):
        a, b, c = rng.normal(size=3)
        rows.append(f"{a:.3f},{b:.3f},{c:.3f},{['barolo', 'barbera', 'nebbiolo'][i % 3]}")
    (tmp_path / "wine.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "b").mkdir()
    run = _train(tmp_path / "b", TABLE, tmp_path / "wine.csv")
    assert run["data"]["kind"] == "csv"
    assert run["data"]["vocabularies"] == {"kind": ["barbera", "barolo", "nebbiolo"]}
    assert run["results"]["epochs"] == 2 and run["results"]["steps"] == 6
