"""The PyTorch training bundle (`write_torch_bundle`): what it holds, that its script
trains as the onnxruntime engine's does (the first epoch's history to 1e-4), resumes
byte for byte after SIGINT/SIGTERM, stops on a NaN loss, refuses what it cannot do in one
line, and runs without ktrans."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.torch_train.bundles import (
    checkpoint_state,
    ok,
    onnx_bundle,
    run,
    tiny,
    tiny_data,
    torch_bundle,
    trained_weights,
)

torch = pytest.importorskip("torch")
HOOK = "KTRANS_TEST_INTERRUPT_AFTER_STEPS"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The Tiny bundle (Adam, accuracy and precision, a validation split), its data, and
    one uninterrupted 3-epoch run."""
    tmp = tmp_path_factory.mktemp("torch_reference")
    script = torch_bundle(tmp, tiny())
    data = tiny_data(tmp / "data.npz")
    out = tmp / "run"
    result = run(script, "--data", data, "--out", out)
    ok(result)
    return script, data, out, result


def test_bundle_holds_the_module_weights_script_and_runtime(reference):
    script, _, _, _ = reference
    folder = script.parent
    names = {p.name for p in folder.iterdir()}
    assert {"train_Tiny.py", "Tiny.py", "Tiny.init.npz", "README.md", "ktrans_runtime"} <= names
    runtime = {p.name for p in (folder / "ktrans_runtime").glob("*.py")}
    assert {"torch_engine.py", "torch_losses.py", "torch_optim.py", "loop.py"} <= runtime
    text = script.read_text()
    assert "torchrun --nproc_per_node" in text and "from Tiny import Tiny" in text
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(script)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_training_writes_history_checkpoint_results_and_the_trained_model(reference):
    script, data, out, result = reference
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2]
    assert {"loss", "accuracy", "precision", "val_loss", "val_precision"} <= set(history)
    assert history["loss"][2] < history["loss"][0]
    results = json.loads((out / "results.json").read_text())
    assert results["engine"] == "torch" and results["processes"] == 1
    assert results["steps"] == 18 and results["test_rows"] == 30
    assert results["trained_model"] == "Tiny.trained.onnx"
    assert f"wrote {out / 'Tiny.trained.onnx'}" in result.stdout
    state = checkpoint_state(out / "checkpoint.npz")
    assert "state/slot:dense/kernel:momentum" in state
    # the module's state_dict and the Keras-layout weights hold the checkpoint's weights
    weights = trained_weights(out / "Tiny.trained.pt")
    np.testing.assert_array_equal(weights["dense.weight"].T, state["state/dense/kernel"])
    with np.load(out / "Tiny.weights.npz") as keras:
        assert sorted(keras.files) == sorted(n[len("state/") :] for n in state if "slot:" not in n)
        for name in keras.files:
            np.testing.assert_array_equal(keras[name], state[f"state/{name}"], err_msg=name)
    assert (out / "Tiny.weights.h5").stat().st_size > 0


def test_the_trained_onnx_computes_what_the_trained_module_computes(reference):
    """The trained .onnx (the Keras-layout weights put back into the ONNX layout) and
    the module with the trained state_dict give the same outputs."""
    import onnxruntime as ort

    script, data, out, _ = reference
    sys.path.insert(0, str(script.parent))
    try:
        from Tiny import Tiny
    finally:
        sys.path.remove(str(script.parent))
    model = Tiny()
    model.load_state_dict(torch.load(out / "Tiny.trained.pt", weights_only=True))
    model.eval()
    with np.load(data) as arrays:
        x = arrays["x_test"]
    session = ort.InferenceSession(str(out / "Tiny.trained.onnx"))
    (theirs,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    initial = session_output(script.parent / "Tiny.onnx", x)
    assert not np.allclose(initial, theirs)  # trained, not the initial weights


def session_output(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path))
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_first_epoch_history_equals_the_onnxruntime_engine(reference, tmp_path):
    """Same data, seed and settings, no Dropout: both engines log the same epoch."""
    script, data, out, _ = reference
    onnx_script = onnx_bundle(tmp_path, tiny())
    ok(run(onnx_script, "--data", data, "--out", tmp_path / "o", "--epochs", "1"))
    ours = json.loads((out / "history.json").read_text())
    theirs = json.loads((tmp_path / "o" / "history.json").read_text())
    assert set(ours) == set(theirs)
    for key, values in theirs.items():
        np.testing.assert_allclose(ours[key][0], values[0], rtol=1e-4, atol=1e-6, err_msg=key)


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
    second = run(script, "--data", data, "--out", interrupted, "--resume")
    ok(second)
    assert "resuming at epoch" in second.stderr
    a, b = (
        checkpoint_state(interrupted / "checkpoint.npz"),
        checkpoint_state(out / "checkpoint.npz"),
    )
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (interrupted / "history.csv").read_text() == (out / "history.csv").read_text()


def test_nan_loss_stops_before_the_update(tmp_path):
    text = """
model R { input x: float32[4]
    Dense(1) }
train R { loss = mse
    optimizer = SGD(learning_rate=1e30)
    batch_size = 8 }
"""
    script = torch_bundle(tmp_path, text)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, output=x.sum(1) * 100)
    result = run(script, "--data", tmp_path / "d.npz", "--out", tmp_path / "o")
    assert result.returncode == 1
    assert "at epoch 1, step" in result.stderr and "training stopped" in result.stderr
    assert "Traceback" not in result.stderr


def test_what_the_engine_cannot_do_is_one_line(reference, tmp_path):
    script, data, _, _ = reference
    for flags, message in [
        (["--precision", "bfloat16"], "--precision bfloat16 needs --device cuda"),
        (["--device", "cuda"], "--device cuda"),
    ]:
        if "cuda" in flags and torch.cuda.is_available():
            continue
        result = run(script, "--data", data, "--out", tmp_path / "x", *flags)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], lines
        assert "Traceback" not in result.stderr


def test_without_torch_the_script_says_so_in_one_line(reference, tmp_path):
    script, data, _, _ = reference
    code = (
        "import runpy, sys\n"
        "sys.modules['torch'] = None\n"
        f"sys.argv = ['{script.name}', '--data', {str(data)!r}, '--out', {str(tmp_path)!r}]\n"
        f"sys.path.insert(0, {str(script.parent)!r})\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: this script trains with PyTorch, which is not installed: pip install torch"
    ]


CALLBACKS = """callbacks = [EarlyStopping(monitor=val_loss, patience=1, restore_best_weights=true),
                 ReduceLROnPlateau(monitor=loss, factor=0.5, patience=0),
                 ModelCheckpoint(filepath="ckpt/e{epoch}.keras"),
                 ModelCheckpoint(filepath="w.weights.h5", save_weights_only=true),
                 CSVLogger(filename="log.csv")]"""


@pytest.mark.parametrize(
    ("optimizer", "extra"),
    [
        ("SGD(learning_rate=0.2, momentum=0.9, nesterov=true, weight_decay=0.01)", CALLBACKS),
        (
            "Adamax(learning_rate=ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5), "
            "use_ema=true, ema_momentum=0.8, clipnorm=0.5)",
            "",
        ),
        ("Adam(learning_rate=0.02, gradient_accumulation_steps=2, global_clipnorm=1.0)", ""),
    ],
    ids=["callbacks", "schedule-ema-clip", "accumulation"],
)
def test_both_engines_train_alike(tmp_path, optimizer, extra):
    """A whole run on each engine (callbacks, schedules, EMA, accumulation): the same
    history, and trained models that compute the same."""
    text = tiny("Alike", optimizer, epochs=4, extra=extra)
    data = tiny_data(tmp_path / "data.npz")
    ours, theirs = tmp_path / "torch", tmp_path / "onnx"
    ok(run(torch_bundle(tmp_path, text), "--data", data, "--out", ours))
    ok(run(onnx_bundle(tmp_path, text), "--data", data, "--out", theirs))
    a = json.loads((ours / "history.json").read_text())
    b = json.loads((theirs / "history.json").read_text())
    assert set(a) == set(b) and a["epoch"] == b["epoch"]
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)
    with np.load(data) as arrays:
        x = arrays["x_test"]
    np.testing.assert_allclose(
        session_output(ours / "Alike.trained.onnx", x),
        session_output(theirs / "Alike.trained.onnx", x),
        rtol=1e-4,
        atol=1e-5,
    )
    if extra:
        rows = [(p / "log.csv").read_text().splitlines() for p in (ours, theirs)]
        assert rows[0][0] == rows[1][0] and len(rows[0]) == len(rows[1])  # values: history
        assert sorted(p.name for p in (ours / "ckpt").iterdir()) == sorted(
            p.name for p in (theirs / "ckpt").iterdir()
        )
        mine, other = (h5_arrays(p / "w.weights.h5") for p in (ours, theirs))
        assert mine.keys() == other.keys() and mine
        for key in other:
            np.testing.assert_allclose(mine[key], other[key], rtol=1e-4, atol=1e-5, err_msg=key)


def h5_arrays(path) -> dict:
    """Every dataset of an .h5 file, by its path in the file."""
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


CNN = """
model Cnn {
    input x: float32[8, 8, 1]
    Conv2D(4, 3, activation=relu)
    MaxPooling2D(2)
    Flatten()
    Dense(3, activation=softmax)
}
train Cnn {
    loss = sparse_categorical_crossentropy
    optimizer = Adam(learning_rate=0.05)
    batch_size = 16
    epochs = 1
}
"""


def test_the_weights_h5_loads_into_the_keras_codegen_model_and_predicts_the_trained_onnx(
    tmp_path,
):
    """Issue 11: the end-of-run <Model>.weights.h5 of the PyTorch engine loads (Keras's
    load_weights) into the model `ktrans codegen --target keras` writes, which then
    predicts what <Model>.trained.onnx predicts (1e-5). A CNN: the module's conv and
    dense weights leave in Keras's layout."""
    pytest.importorskip("keras")
    from tests.emit.keras_twin import keras_model, load_graph
    from tests.emit.train.test_keras_export_runs import onnx_run

    script = torch_bundle(tmp_path, CNN, "cnn")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=rng.integers(0, 3, size=48))
    out = tmp_path / "run"
    ok(run(script, "--data", tmp_path / "d.npz", "--out", out, "--verbose", "0"))
    (trained,) = onnx_run(out / "Cnn.trained.onnx", {"x": x[:8]})
    (initial,) = onnx_run(script.parent / "Cnn.onnx", {"x": x[:8]})
    assert not np.allclose(trained, initial, atol=1e-4)  # the weights did change
    program, graph = load_graph(CNN, tmp_path, "twin")
    keras = keras_model(program, graph, tmp_path)
    keras.load_weights(str(out / "Cnn.weights.h5"))
    np.testing.assert_allclose(keras.predict(x[:8], verbose=0), trained, rtol=1e-5, atol=1e-5)
