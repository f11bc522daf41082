"""The generated training bundle (`write_training_bundle`, `ktrans train`): the script is
ruff-clean, trains, writes history, checkpoints and the trained inference model, resumes
exactly after SIGINT/SIGTERM, stops on a NaN loss, runs callbacks and schedules as Keras
does, and its IO-binding loop equals the plain session.run loop."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transpiler.emit.code.train_literals import py_literal
from transpiler.emit.code.train_script import codegen_train, pick_train, write_training_bundle
from transpiler.errors import KdlErrors
from transpiler.templates import ktrans_runtime as runtime

ROOT = Path(__file__).resolve().parents[3]
HOOK = "KTRANS_TEST_INTERRUPT_AFTER_STEPS"

TINY = """
model Tiny {{
    input x: float32[6]
    Dense(16, activation=relu)
    Dropout(0.1)
    Dense(3, activation=softmax)
}}
train Tiny {{
    loss = categorical_crossentropy
    optimizer = {optimizer}
    metrics = [accuracy]
    batch_size = 16
    epochs = 3
    validation_split = 0.2
    {extra}
}}
"""

TWO = """
model Two {
    input x: float32[2, 3]
    h = x |> Flatten() |> Dense(8, activation=tanh)
    output a = Dense(1)(h)
    output b = Dense(3, activation=softmax)(h)
}
train Two {
    loss = { a: mse, b: categorical_crossentropy }
    loss_weights = { a: 1.0, b: 0.5 }
    optimizer = SGD(learning_rate=ExponentialDecay(0.05, decay_steps=5, decay_rate=0.5))
    metrics = { b: [accuracy], a: [mae] }
    batch_size = 16
    epochs = 2
    validation_split = 0.25
}
"""


# binary classification with stateful metrics (and a list-valued one), weighted metrics
# and an EMA of the weights
METRICS = """
model B {
    input x: float32[6]
    Dense(8, activation=relu)
    Dense(1, activation=sigmoid)
}
train B {
    loss = binary_crossentropy
    optimizer = SGD(learning_rate=0.1, momentum=0.9, use_ema=true, ema_momentum=0.9)
    metrics = [accuracy, Precision(), Recall(), AUC(),
               Precision(thresholds=[0.3, 0.5, 0.7], name="p3")]
    weighted_metrics = [accuracy]
    batch_size = 16
    shuffle = false
    validation_split = 0.25
}
"""

CLASSES = """
model S {{
    input x: float32[6]
    Dense(16, activation=relu)
    Dense(3, activation=softmax)
}}
train S {{
    loss = {loss}
    optimizer = SGD(learning_rate=0.1, momentum=0.9)
    metrics = [accuracy]
    batch_size = 16
    epochs = 2
}}
"""


def tiny(optimizer="SGD(learning_rate=0.1, momentum=0.9)", extra="") -> str:
    return TINY.format(optimizer=optimizer, extra=extra)


def bundle(tmp_path: Path, text: str, name: str = "bundle", seed: int = 0) -> Path:
    """Writes the .kdl text and its training bundle; returns the script's path."""
    from transpiler.graph import load

    kdl = tmp_path / f"{name}.kdl"
    kdl.write_text(text)
    _, graphs = load(str(kdl))
    graph = next(iter(graphs.values()))
    paths = write_training_bundle(graph, pick_train(graph), tmp_path / name, seed=seed)
    return paths[0]


def tiny_data(path: Path, rows: int = 120, test_rows: int = 30) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    x = rng.normal(size=(rows + test_rows, 6)).astype(np.float32)
    y = (x @ w).argmax(1)
    np.savez(path, x_train=x[:rows], y_train=y[:rows], x_test=x[rows:], y_test=y[rows:])
    return path


def run(script: Path, *args, env: dict | None = None, timeout: int = 120):
    full_env = {**os.environ, **(env or {})}
    if not env or HOOK not in env:
        full_env.pop(HOOK, None)
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def import_script(script: Path):
    """The generated script as a module (its literals; nothing runs at import)."""
    spec = importlib.util.spec_from_file_location(f"gen_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))  # its `import ktrans_runtime`
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(script.parent))
    return module


def device_and_host(script: Path):
    """The bundle's engine state twice: IO binding (DeviceState) and session.run
    (HostState), from the same initial state; and the state's names."""
    module = import_script(script)
    names = module.GRAPH
    ort, train, evaluate = runtime.ort_engine.open_sessions(script.parent, module.FILES, "cpu")
    engine = runtime.ort_engine.OrtEngine(script.parent, module.FILES, names, "cpu", False)
    initial = engine.state()
    device = runtime.ort_engine.DeviceState(ort, train, evaluate, initial, "cpu", names)
    host = runtime.ort_engine.HostState(train, evaluate, initial, names)
    return device, host, list(initial)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The Tiny bundle, its data, and one uninterrupted 3-epoch run."""
    tmp = tmp_path_factory.mktemp("reference")
    script = bundle(tmp, tiny())
    data = tiny_data(tmp / "data.npz")
    out = tmp / "run"
    result = run(script, "--data", data, "--out", out)
    ok(result)
    return script, data, out, result


# ------------------------------------------------------------------ rendering


def _ruff(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize(
    "text",
    [
        tiny(),
        TWO,
        tiny(
            "Adam(learning_rate=0.01)",
            """callbacks = [EarlyStopping(monitor=val_loss, restore_best_weights=true),
                 ReduceLROnPlateau(monitor=loss), TerminateOnNaN(),
                 ModelCheckpoint(filepath="ckpt/{epoch:02d}-{val_loss:.2f}.keras"),
                 CSVLogger(filename="a \\"quoted\\" name.csv"),
                 LearningRateScheduler(CosineDecay(0.01, decay_steps=3))]""",
        ),
        METRICS,
        CLASSES.format(loss="sparse_categorical_crossentropy(ignore_class=-1)"),
    ],
    ids=["plain", "two-outputs-schedule", "callbacks", "metrics-ema", "sparse"],
)
def test_bundle_files_and_ruff_clean_script(tmp_path, text):
    if _ruff("--version").returncode != 0:
        pytest.skip("ruff is not installed")
    script = bundle(tmp_path, text)
    model = script.stem.removeprefix("train_")
    for name in ("train.onnx", "eval.onnx", "onnx", "init.npz"):
        assert (script.parent / f"{model}.{name}").is_file()
    assert (script.parent / "README.md").is_file()
    compile(script.read_text(), str(script), "exec")
    # ruff's own defaults (line length 88), and this project's configuration (100)
    for config in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        check = _ruff("check", *config, "--output-format", "concise", str(script))
        assert check.returncode == 0, check.stdout + check.stderr
        fmt = _ruff("format", *config, "--check", "--diff", str(script))
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    assert "import onnx\n" not in script.read_text()
    assert "transpiler" not in script.read_text().split('"""', 2)[2]


@pytest.mark.parametrize(
    "value",
    [
        {"a": 'say "hi"', "b": "it's", "c": "both ' and \"", "d": "back\\slash\nnl"},
        [float("inf"), -float("inf"), 1e-07, 0.1, None, True, 3],
        {"k" * 30: ["v" * 40, "w" * 40], "short": [], "e": {}},
        {"long": "x" * 120},
        "/a/long/path/" * 8,
        "/a/path/" * 9,
    ],
)
def test_py_literal_round_trips_and_is_ruff_formatted(tmp_path, value):
    source = py_literal(value, 0, "VALUE = ") + "\n"
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["VALUE"] == value
    if _ruff("--version").returncode != 0:
        pytest.skip("ruff is not installed")
    path = tmp_path / "literal.py"
    path.write_text(source)
    for config in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        fmt = _ruff("format", *config, "--check", "--diff", str(path))
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
        check = _ruff("check", *config, "--select", "E501", str(path))
        assert check.returncode == 0, check.stdout


def test_finalize_expressions_are_checked_before_they_enter_a_script():
    from transpiler.emit.code.train_script import checked_finalize
    from transpiler.emit.train.metrics import FINISH, STATS

    for name, finish in FINISH.items():  # the whole catalogue passes
        for kwargs in ({}, {"curve": "pr", "label_weights": [0.5, 1.0], "multi_label": True}):
            _, expression = finish(kwargs)
            assert checked_finalize(expression, list(STATS.get(name, ("value",))))
    checked_finalize("float(np.sqrt(value))", ["value"])
    for bad in (
        "__import__('os').system('x')",
        "open('f')",
        "value.__class__",
        "np._private(value)",
        "[v for v in value]",
        "f(**value)",
        "tp + unknown",
    ):
        with pytest.raises(AssertionError, match="not one ktrans writes"):
            checked_finalize(bad, ["value", "tp"])


def test_names_must_be_identifiers_and_train_blocks_chosen(tmp_path):
    from transpiler.graph import load

    kdl = tmp_path / "m.kdl"
    kdl.write_text(
        "model M { input x: float32[2]\n Dense(1) }\n"
        "train M { loss = mse }\ntrain M as fast { loss = mae }\n"
    )
    _, graphs = load(str(kdl))
    graph = graphs["M"]
    # the block written without a name is the default (docs/training.md)
    assert pick_train(graph).name == "default"
    named = tmp_path / "named.kdl"
    named.write_text(
        "model M { input x: float32[2]\n Dense(1) }\n"
        "train M as slow { loss = mse }\ntrain M as fast { loss = mae }\n"
    )
    _, graphs_named = load(str(named))
    with pytest.raises(KdlErrors, match="2 train blocks and none is the default"):
        pick_train(graphs_named["M"])
    with pytest.raises(KdlErrors, match="no train block 'slow'"):
        pick_train(graph, "slow")
    assert pick_train(graph, "fast").name == "fast"
    message = codegen_train(graph, str(tmp_path / "out"), "fast")
    assert "train_M.py" in message
    assert (tmp_path / "out" / "M.train.onnx").is_file()
    graph.trains = {}
    with pytest.raises(KdlErrors, match="has no train block"):
        pick_train(graph)


# ------------------------------------------------------------------ training runs


def test_training_writes_history_checkpoint_and_trained_model(reference):
    import onnxruntime as ort

    script, data, out, result = reference
    history = json.loads((out / "history.json").read_text())
    keys = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert set(history) == keys
    assert history["epoch"] == [0, 1, 2]
    assert history["loss"][-1] < history["loss"][0]
    csv_lines = (out / "history.csv").read_text().splitlines()
    assert csv_lines[0].split(",") == ["epoch", *sorted(keys - {"epoch"})]
    assert len(csv_lines) == 4
    assert "Epoch 3/3" in result.stderr and "val_accuracy" in result.stderr
    assert "test:" in result.stdout

    with np.load(out / "checkpoint.npz") as ck:
        meta = json.loads(str(ck["meta"]))
        state = {k[6:]: ck[k] for k in ck.files if k.startswith("state/")}
    assert meta["finished"] and meta["epoch"] == 3 and meta["step"] == 18  # 6 steps/epoch
    assert any(k.startswith("slot:") for k in state)

    results = json.loads((out / "results.json").read_text())
    session = ort.InferenceSession(str(out / "Tiny.trained.onnx"))
    with np.load(data) as d:
        probabilities = session.run(None, {"x": d["x_test"]})[0]
        accuracy = float((probabilities.argmax(1) == d["y_test"]).mean())
    assert results["test"]["accuracy"] == pytest.approx(accuracy)
    import onnx
    from onnx import numpy_helper

    model = onnx.load(out / "Tiny.trained.onnx")
    onnx.checker.check_model(model)
    for tensor in model.graph.initializer:
        if tensor.name in state:
            np.testing.assert_array_equal(numpy_helper.to_array(tensor), state[tensor.name])


def test_io_binding_swap_equals_plain_session_run(reference, tmp_path):
    script, data, out, _ = reference
    plain = tmp_path / "plain"
    ok(run(script, "--data", data, "--out", plain, "--no-io-binding"))
    trained = "Tiny.trained.onnx"
    assert (plain / trained).read_bytes() == (out / trained).read_bytes()
    assert (plain / "history.csv").read_text() == (out / "history.csv").read_text()

    # and step by step, in process: the two buffer sets against session.run
    device, host, names = device_and_host(script)
    rng = np.random.default_rng(1)
    for step in range(5):
        batch = {
            "x": rng.normal(size=(7, 6)).astype(np.float32),
            "target:output": np.eye(3, dtype=np.float32)[rng.integers(0, 3, 7)],
        }
        assert device.step(batch, step, 0.1) == host.step(batch, step, 0.1)
        device.commit()
        host.commit()
        assert device.evaluate(batch) == host.evaluate(batch)
    a, b = device.to_host(), host.to_host()
    for name in names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize(("hook", "code"), [("8", 130), ("15:TERM", 143)])
def test_resume_after_a_signal_mid_epoch_equals_an_uninterrupted_run(
    reference, tmp_path, hook, code
):
    script, data, out, _ = reference
    interrupted = tmp_path / "interrupted"
    first = run(script, "--data", data, "--out", interrupted, env={HOOK: hook})
    assert first.returncode == code, first.stderr
    assert "continue with --resume" in first.stderr
    with np.load(interrupted / "checkpoint.npz") as ck:
        meta = json.loads(str(ck["meta"]))
    steps = int(hook.split(":")[0])
    assert (meta["epoch"], meta["batch"], meta["step"]) == (steps // 6, steps % 6, steps)
    assert not (interrupted / "Tiny.trained.onnx").exists()

    second = run(script, "--data", data, "--out", interrupted, "--resume")
    ok(second)
    assert "resuming at epoch" in second.stderr
    trained = "Tiny.trained.onnx"
    assert (interrupted / trained).read_bytes() == (out / trained).read_bytes()
    assert (interrupted / "history.csv").read_text() == (out / "history.csv").read_text()


def test_resume_checks_its_settings(reference, tmp_path):
    script, data, _, _ = reference
    out = tmp_path / "r"
    assert run(script, "--data", data, "--out", out, env={HOOK: "3"}).returncode == 130
    differ = run(script, "--data", data, "--out", out, "--resume", "--batch-size", "8")
    assert differ.returncode == 1
    assert "--batch-size 8 differs from the checkpoint's 16" in differ.stderr
    missing = run(script, "--data", data, "--out", tmp_path / "none", "--resume")
    assert missing.returncode == 1 and "no checkpoint" in missing.stderr


def test_nan_loss_stops_with_the_epoch_and_step(tmp_path):
    text = """
model R { input x: float32[4]
    Dense(1) }
train R { loss = mse
    optimizer = SGD(learning_rate=1e30)
    batch_size = 8 }
"""
    script = bundle(tmp_path, text)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, output=x.sum(1) * 100)
    result = run(script, "--data", tmp_path / "d.npz", "--out", tmp_path / "o")
    assert result.returncode == 1
    assert "at epoch 1, step" in result.stderr and "training stopped" in result.stderr
    assert not (tmp_path / "o" / "R.trained.onnx").exists()


def test_callbacks_early_stopping_checkpoints_csv_and_plateau(tmp_path):
    extra = """callbacks = [
        EarlyStopping(monitor=loss, mode=max, patience=0, restore_best_weights=true),
        ModelCheckpoint(filepath="ckpt/e{epoch}.keras"),
        ModelCheckpoint(filepath="ckpt/e{epoch}.onnx"),
        ModelCheckpoint(filepath="w.weights.h5", save_weights_only=true),
        ReduceLROnPlateau(monitor=loss, mode=max, patience=0, factor=0.5),
        CSVLogger(filename="log.csv"),
        TerminateOnNaN()]"""
    script = bundle(tmp_path, tiny(extra=extra))
    data = tiny_data(tmp_path / "d.npz")
    out = tmp_path / "o"
    ok(run(script, "--data", data, "--out", out))
    results = json.loads((out / "results.json").read_text())
    # the loss falls, so with mode=max epoch 1 is no improvement: stop, restore epoch 0
    assert results["stopped_early"] and results["epochs"] == 2
    # each checkpoint as its extension says: Keras archives, ONNX models, Keras weights
    names = sorted(p.name for p in (out / "ckpt").iterdir())
    assert names == ["e1.keras", "e1.onnx", "e2.keras", "e2.onnx"]
    assert (out / "Tiny.trained.onnx").read_bytes() == (out / "ckpt" / "e1.onnx").read_bytes()
    import zipfile

    import h5py

    with zipfile.ZipFile(out / "ckpt" / "e1.keras") as zf:
        assert {"config.json", "metadata.json", "model.weights.h5"} == set(zf.namelist())
        (tmp_path / "e1.weights.h5").write_bytes(zf.read("model.weights.h5"))
    paths = ["layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0"]
    with h5py.File(tmp_path / "e1.weights.h5") as e1, h5py.File(out / "Tiny.weights.h5") as end:
        for path in paths:  # the restored weights are epoch 1's
            np.testing.assert_array_equal(e1[path][()], end[path][()])
    with h5py.File(out / "w.weights.h5") as w:
        assert all(path in w for path in paths)
    # Keras opens the archive: the model with epoch 1's weights, as the .onnx of epoch 1
    keras = pytest.importorskip("keras")
    from transpiler.runtime.session import create_session

    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    archived = keras.saving.load_model(out / "ckpt" / "e1.keras", compile=False)
    (want,) = create_session(str(out / "ckpt" / "e1.onnx")).run(None, {"x": x})
    np.testing.assert_allclose(archived.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    with np.load(out / "Tiny.weights.npz") as w:
        assert set(w.files) == {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"}
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,accuracy,learning_rate,loss,val_accuracy") and len(log) == 3
    history = json.loads((out / "history.json").read_text())
    assert history["learning_rate"] == [0.1, 0.1]  # the rate each epoch trained with
    with np.load(out / "checkpoint.npz") as ck:
        assert json.loads(str(ck["meta"]))["lr"] == float(np.float32(0.05))  # as Keras


def test_two_outputs_log_names_data_preparation_and_schedule(tmp_path):
    script = bundle(tmp_path, TWO)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    np.savez(
        tmp_path / "d.npz",
        x=x,  # rows of 6 values for a (2, 3) input: reshaped
        a=x.sum(1),  # (n,) for a (1,) output: reshaped
        b=rng.integers(0, 3, 100),  # labels: one-hot
        test_x=x[:10].reshape(10, 2, 3),
        test_a=x[:10].sum(1, keepdims=True),
        test_b=np.eye(3)[rng.integers(0, 3, 10)],  # float64: cast
    )
    out = tmp_path / "o"
    result = run(script, "--data", tmp_path / "d.npz", "--out", out)
    ok(result)
    assert "x: reshaped to (2, 3) per row" in result.stderr
    assert "b: one-hot encoded (3 classes)" in result.stderr
    assert "test_b: cast from float64 to float32" in result.stderr
    history = json.loads((out / "history.json").read_text())
    logged = {"loss", "a_loss", "b_loss", "a_mae", "b_accuracy"}
    assert set(history) == {"epoch", "learning_rate"} | logged | {f"val_{k}" for k in logged}
    # 75 training rows, batches of 16: 5 steps an epoch; the last steps are 4 and 9
    expected = [float(np.float32(0.05 * 0.5 ** (s / 5))) for s in (4, 9)]
    assert history["learning_rate"] == expected
    results = json.loads((out / "results.json").read_text())
    assert set(results["test"]) == logged and results["test_rows"] == 10


def test_data_errors_are_reported(reference, tmp_path):
    script, _, _, _ = reference
    np.savez(tmp_path / "wrong.npz", inputs=np.zeros((4, 6)))
    result = run(script, "--data", tmp_path / "wrong.npz", "--out", tmp_path / "o")
    assert result.returncode == 1
    assert "the train data has no array 'x' (nor Keras's x_train or x)" in result.stderr
    assert "no array 'output' (nor Keras's y_train or y); it holds: inputs" in result.stderr
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 6)), output=np.array([0, 1, 2, 7]))
    result = run(script, "--data", tmp_path / "labels.npz", "--out", tmp_path / "o")
    assert result.returncode == 1 and "labels outside 0..2" in result.stderr


def _cuda_works() -> bool:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        from onnx import TensorProto, helper

        g = helper.make_graph(
            [helper.make_node("Identity", ["a"], ["b"])],
            "g",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.log_severity_level = 4
        s = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CUDAExecutionProvider"]
        )
        return s.get_providers()[0] == "CUDAExecutionProvider"
    except Exception:
        return False


def test_cuda_that_cannot_run_is_an_error_not_a_cpu_run(reference, tmp_path):
    if _cuda_works():
        pytest.skip("CUDA works here (the gpu test covers it)")
    script, data, _, _ = reference
    result = run(script, "--data", data, "--out", tmp_path / "o", "--device", "cuda")
    assert result.returncode == 1, result.stderr
    assert "--device cuda" in result.stderr
    assert not (tmp_path / "o" / "results.json").exists()


@pytest.mark.gpu
def test_cuda_training_equals_its_own_rerun(reference, tmp_path):
    if not _cuda_works():
        pytest.skip("no usable CUDA GPU")
    script, data, out, _ = reference
    first, second = tmp_path / "a", tmp_path / "b"
    ok(run(script, "--data", data, "--out", first, "--device", "cuda"))
    ok(run(script, "--data", data, "--out", second, "--device", "cuda", "--no-io-binding"))
    a = json.loads((first / "history.json").read_text())
    b = json.loads((second / "history.json").read_text())
    cpu = json.loads((out / "history.json").read_text())
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    np.testing.assert_allclose(a["loss"], cpu["loss"], rtol=1e-3)


# ------------------------------------------------------------------ against Keras


def test_schedules_match_keras(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    schedules = {
        "ExponentialDecay": dict(
            initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5, staircase=True
        ),
        "InverseTimeDecay": dict(
            initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5, staircase=False
        ),
        "CosineDecay": dict(
            initial_learning_rate=0.1,
            decay_steps=20,
            alpha=0.1,
            warmup_target=0.2,
            warmup_steps=5,
        ),
        "CosineDecayRestarts": dict(
            initial_learning_rate=0.1, first_decay_steps=6, t_mul=2.0, m_mul=0.5, alpha=0.05
        ),
        "PolynomialDecay": dict(
            initial_learning_rate=0.1,
            decay_steps=10,
            end_learning_rate=0.01,
            power=2.0,
            cycle=True,
        ),
        "PiecewiseConstantDecay": dict(boundaries=[3, 10], values=[0.1, 0.01, 0.001]),
    }
    for name, kwargs in schedules.items():
        theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
        for step in (0, 1, 3, 4, 10, 11, 25, 60):
            ours = runtime.schedules.schedule_value({"name": name, **kwargs}, step)
            expected = float(keras.ops.convert_to_numpy(theirs(step)))
            assert ours == pytest.approx(expected, rel=1e-5), (name, step)


def test_one_epoch_matches_keras_train_on_batch(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    text = """
model P { input x: float32[6]
    Dense(8, activation=relu)
    Dense(3, activation=softmax) }
train P { loss = categorical_crossentropy
    optimizer = SGD(learning_rate=0.1, momentum=0.9)
    metrics = [accuracy]
    batch_size = 16
    validation_split = 0.25 }
"""
    script = bundle(tmp_path, text)
    data = tiny_data(tmp_path / "d.npz", rows=100, test_rows=0)
    out = tmp_path / "o"
    ok(run(script, "--data", data, "--out", out, "--seed", 5))

    with np.load(data) as d:
        x, labels = d["x_train"], d["y_train"]
    y = np.eye(3, dtype=np.float32)[labels]
    init = np.load(script.parent / "P.init.npz")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    for layer, name in zip(model.layers, ("dense", "dense_1")):
        layer.kernel.assign(init[f"{name}/kernel"])
        layer.bias.assign(init[f"{name}/bias"])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    # validation: the last 25 rows, before shuffling; the order is the script's
    order = np.random.default_rng([5, 0]).permutation(75)
    total = 0.0
    for i in range(0, 75, 16):
        rows = order[i : i + 16]
        logs = model.train_on_batch(x[rows], y[rows], return_dict=True)
        total += logs["loss"] * len(rows)
    val = model.evaluate(x[75:], y[75:], return_dict=True, verbose=0)

    history = json.loads((out / "history.json").read_text())
    assert history["loss"][0] == pytest.approx(total / 75, rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(val["loss"], rel=1e-5)
    assert history["val_accuracy"][0] == pytest.approx(val["accuracy"])
    with np.load(out / "checkpoint.npz") as ck:
        for layer, name in zip(model.layers, ("dense", "dense_1")):
            np.testing.assert_allclose(
                ck[f"state/{name}/kernel"], layer.kernel.numpy(), rtol=1e-5, atol=1e-6
            )


def _keras_twin(keras, init, units: int, layers=("dense", "dense_1")):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(units, activation="sigmoid"),
        ]
    )
    set_weights(model, init, layers)
    return model


def set_weights(model, arrays, layers=("dense", "dense_1"), prefix=""):
    for layer, name in zip(model.layers, layers):
        layer.kernel.assign(arrays[f"{prefix}{name}/kernel"])
        layer.bias.assign(arrays[f"{prefix}{name}/bias"])


def test_stateful_metrics_and_ema_match_keras_fit_and_evaluate(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    script = bundle(tmp_path, METRICS)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(130, 6)).astype(np.float32)
    y = (x[:, :1] + x[:, 1:2] + 0.7 * rng.normal(size=(130, 1)) > 0).astype(np.float32)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:100], y_train=y[:100, 0], x_test=x[100:], y_test=y[100:])
    out = tmp_path / "o"
    ok(run(script, "--data", data, "--out", out))

    history = json.loads((out / "history.json").read_text())
    logged = ["loss", "accuracy", "precision", "recall", "auc", "p3", "weighted_accuracy"]
    keys = {"epoch", "learning_rate", *logged, *(f"val_{k}" for k in logged)}
    assert set(history) == keys
    assert len(history["p3"][0]) == 3  # a list per epoch: one value per threshold
    header, row = (out / "history.csv").read_text().splitlines()
    columns = dict(zip(header.split(","), row.split(",")))
    assert "p3" not in columns
    for i in range(3):
        assert float(columns[f"p3[{i}]"]) == history["p3"][0][i]
        assert float(columns[f"val_p3[{i}]"]) == history["val_p3"][0][i]

    # the Keras twin: the same initial weights, optimizer and metrics, fit on the same
    # batches (shuffle=false), the same validation rows (the last 25)
    init = np.load(script.parent / "B.init.npz")
    model = _keras_twin(keras, init, 1)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.9),
        loss="binary_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(thresholds=[0.3, 0.5, 0.7], name="p3"),
        ],
        weighted_metrics=["accuracy"],
    )
    theirs = model.fit(
        x[:100], y[:100], batch_size=16, epochs=1, shuffle=False, validation_split=0.25, verbose=0
    ).history
    assert set(theirs) | {"epoch", "learning_rate"} == keys
    for key, values in theirs.items():
        expected = np.asarray(values[0], np.float64)
        np.testing.assert_allclose(history[key][0], expected, rtol=1e-5, atol=1e-6, err_msg=key)

    # use_ema: the trained weights are the moving averages, as after Keras's fit
    with np.load(out / "checkpoint.npz") as ck:
        state = {k[6:]: ck[k] for k in ck.files if k.startswith("state/")}
    for name in ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"):
        np.testing.assert_array_equal(state[name], state[f"slot:{name}:average"])
    for layer, name in zip(model.layers, ("dense", "dense_1")):
        np.testing.assert_allclose(state[f"{name}/kernel"], layer.kernel.numpy(), atol=1e-6)

    # test logs: Keras's evaluate() with the script's trained weights
    set_weights(model, state)
    expected = model.evaluate(x[100:], y[100:], batch_size=16, return_dict=True, verbose=0)
    test = json.loads((out / "results.json").read_text())["test"]
    assert set(test) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(test[key], np.asarray(value), rtol=1e-5, atol=1e-6)

    # the IO-binding loop keeps vector outputs (confusion counts) as session.run does
    device, host, _ = device_and_host(script)
    batch = {"x": x[:7], "target:output": y[:7]}
    for a, b in (
        (device.step(batch, 0, 0.1), host.step(batch, 0, 0.1)),
        (device.evaluate(batch), host.evaluate(batch)),
    ):
        assert a.keys() == b.keys()
        assert np.shape(a["metric:output:auc:tp"]) == (200,)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    # the script's Averages is metrics.evaluate_plan, the reference
    from transpiler.emit.train.metrics import evaluate_plan, metric_plan
    from transpiler.graph import load

    module = import_script(script)
    _, graphs = load(str(tmp_path / "bundle.kdl"))
    plan = metric_plan(pick_train(graphs["B"]))
    batches = [host.evaluate({"x": x[i : i + 9], "target:output": y[i : i + 9]}) for i in (0, 9)]
    averages = runtime.metrics.Averages(module.LOSSES, module.METRIC_PLAN)
    for values in batches:
        averages.update(values, 9)
    expected = evaluate_plan(plan, batches, [9, 9])
    assert {k: v for k, v in averages.result().items() if k != "loss"} == expected
    assert [e["finalize"] for e in module.METRIC_PLAN] == [e["finalize"] for e in plan]

    # a run interrupted mid-epoch (the confusion counts in the checkpoint) resumes exactly
    again = tmp_path / "again"
    assert run(script, "--data", data, "--out", again, env={HOOK: "3"}).returncode == 130
    ok(run(script, "--data", data, "--out", again, "--resume"))
    assert (again / "history.csv").read_text() == (out / "history.csv").read_text()
    assert (again / "B.trained.onnx").read_bytes() == (out / "B.trained.onnx").read_bytes()


def test_sparse_labels_train_as_their_one_hot_rows(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(130, 6)).astype(np.float32)
    labels = (x @ rng.normal(size=(6, 3))).argmax(1)
    sparse = tmp_path / "sparse.npz"
    # (n, 1) int labels for training, whole floats for testing
    np.savez(
        sparse,
        x=x[:100],
        output=labels[:100, None],
        test_x=x[100:],
        test_output=labels[100:].astype(np.float64),
    )
    dense = tmp_path / "dense.npz"
    np.savez(dense, x=x[:100], output=labels[:100], test_x=x[100:], test_output=labels[100:])
    script = bundle(tmp_path, CLASSES.format(loss="sparse_categorical_crossentropy"), "s")
    result = run(script, "--data", sparse, "--out", tmp_path / "s_out")
    ok(result)
    assert "output: dropped the last axis (size 1) of the class ids" in result.stderr
    assert "test_output: cast from float64 to int64" in result.stderr
    import onnxruntime as ort

    types = {
        i.name: i.type for i in ort.InferenceSession(script.parent / "S.train.onnx").get_inputs()
    }
    assert types["target:output"] == "tensor(int64)"
    # sparse_categorical_crossentropy on ids == categorical_crossentropy on one-hot rows
    one_hot = bundle(tmp_path, CLASSES.format(loss="categorical_crossentropy"), "c")
    ok(run(one_hot, "--data", dense, "--out", tmp_path / "c_out"))
    a = json.loads((tmp_path / "s_out" / "results.json").read_text())
    b = json.loads((tmp_path / "c_out" / "results.json").read_text())
    assert set(a["final"]) == {"loss", "accuracy", "learning_rate"}
    for key in ("final", "test"):
        for name, value in b[key].items():
            assert a[key][name] == pytest.approx(value, rel=1e-5, abs=1e-7), (key, name)
    np.savez(tmp_path / "bad.npz", x=x[:4], output=np.array([0, 1, 2, 3]))
    bad = run(script, "--data", tmp_path / "bad.npz", "--out", tmp_path / "bad")
    assert bad.returncode == 1 and "labels outside 0..2" in bad.stderr


# ------------------------------------------------------------------ ktrans train


def _ktrans(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    if not env or HOOK not in env:
        full_env.pop(HOOK, None)
    return subprocess.run(
        [sys.executable, "-m", "transpiler", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=300,
    )


def test_ktrans_train_interrupt_then_resume(tmp_path):
    kdl = tmp_path / "tiny.kdl"
    kdl.write_text(tiny())
    data = tiny_data(tmp_path / "d.npz")
    out = tmp_path / "run"
    first = _ktrans("train", kdl, "--data", data, "--out", out, env={HOOK: "4"})
    assert first.returncode == 130, first.stderr
    assert (out / "train_Tiny.py").is_file() and (out / "checkpoint.npz").is_file()
    second = _ktrans("train", kdl, "--data", data, "--out", out, "--resume", "--epochs", "2")
    assert second.returncode == 0, second.stderr
    assert json.loads((out / "results.json").read_text())["epochs"] == 2
    bad = _ktrans("train", kdl, "--data", tmp_path / "missing.npz")
    assert bad.returncode == 1 and "no such file" in bad.stderr


def test_ktrans_train_mnist_mlp_one_epoch(tmp_path):
    from transpiler.emit.train.optimizers import OPTIMIZERS

    if "RMSprop" not in OPTIMIZERS:
        pytest.skip("the RMSprop emitter is not written yet (examples/mnist_mlp.kdl uses it)")
    out = tmp_path / "mnist"
    # the raw 0..255 pixels: the script casts, never rescales (as Keras); the example's
    # Rescaling(1 / 255) layer scales them
    result = _ktrans(
        "train",
        "examples/mnist_mlp.kdl",
        "--data",
        ROOT / "examples/data/mnist_5k.npz",
        "--epochs",
        "1",
        "--batch-size",
        "32",  # 113 steps; 29 steps of 128 land anywhere from 70% to 85%
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["accuracy"] > 0.8, results
    assert "test: accuracy:" in result.stdout
    shutil.rmtree(out)
