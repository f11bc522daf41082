"""The engine seam: a second engine (here a few lines of numpy: linear regression with
SGD) runs the loop of the package docstring over the shared data, metrics, callbacks,
checkpoints, progress and history, unchanged. An interrupted run resumes to the same
bytes, a NaN stops it pointing at the last checkpoint, callbacks act on its weights."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import signal

import numpy as np
import pytest

import transpiler.templates.ktrans_runtime as kt
from transpiler.templates.ktrans_runtime.files import save_npz
from transpiler.templates.ktrans_runtime.signals import TEST_HOOK

FEEDS = {
    "x": {"array": "x", "dtype": "float32", "shape": [3], "keras": "x"},
    "target:output": {"array": "output", "dtype": "float32", "shape": [1], "loss": "mse",
                      "keras": "y"},
}  # fmt: skip
LOSSES = {"loss": "loss"}
PLAN = [{"key": "mae", "stats": {"value": "mae"}, "combine": "mean", "finalize": "float(value)"}]
FIT = {
    "batch_size": 8, "epochs": 3, "validation_split": 0.25, "shuffle": True,
    "initial_epoch": 0, "steps_per_epoch": None, "validation_steps": None,
    "validation_batch_size": None, "validation_freq": 1, "verbose": 0,
}  # fmt: skip


class NumpyEngine:
    """The engine interface (ktrans_runtime/__init__.py) in numpy."""

    name = "numpy"
    export_suffix = ".npz"

    def __init__(self, nan_at_step: int | None = None) -> None:
        rng = np.random.default_rng(0)
        self.params = {
            "dense/kernel": rng.normal(size=(3, 1)).astype(np.float32),
            "dense/bias": np.zeros(1, np.float32),
        }
        self.shapes = {k: v.shape for k, v in self.params.items()}
        self.pending: dict = {}
        self.nan_at_step = nan_at_step

    def _forward(self, batch):
        err = batch["x"] @ self.params["dense/kernel"] + self.params["dense/bias"]
        err = err - batch["target:output"]
        return err, {"loss": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}

    def step(self, batch, step, learning_rate):
        err, values = self._forward(batch)
        grad = 2 * err / err.size
        lr = np.float32(learning_rate)
        self.pending = {
            "dense/kernel": self.params["dense/kernel"] - lr * (batch["x"].T @ grad),
            "dense/bias": self.params["dense/bias"] - lr * grad.sum(0),
        }
        if step == self.nan_at_step:
            values["loss"] = math.nan
        return values

    def commit(self):
        self.params = {k: v.astype(np.float32) for k, v in self.pending.items()}

    def evaluate(self, batch):
        return self._forward(batch)[1]

    def state(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load(self, arrays):
        self.params.update({k: np.array(v, np.float32) for k, v in arrays.items()})

    def weights(self):
        return self.state()

    def export(self, path, weights):
        save_npz(path, weights)

    def fingerprint(self):
        return "numpy-linear-1"

    def describe(self):
        return {"engine": self.name, "device": "cpu"}


def fit(args, engine, interrupt, callbacks=()) -> int:
    """The loop of the package docstring, as a model script writes it."""
    compiled = {"model": "Lin", "train_block": "default", "seed": 0, "fit": FIT,
                "losses": LOSSES, "metric_plan": PLAN, "learning_rate": 0.05,
                "callbacks": list(callbacks)}  # fmt: skip
    run = kt.loop.TrainingRun(args, engine, interrupt, compiled)
    train, val, test = run.open_data(FEEDS)
    run.begin()
    while run.epoch < run.epochs and not run.stop:
        run.begin_epoch()
        order = kt.data.epoch_order(run.seed, run.epoch, train.size, FIT["shuffle"])
        for batch in range(run.batch, run.steps):
            rows = kt.data.batch_rows(order, batch, run.batch_size)
            lr = run.begin_step()
            values = engine.step(train.take(rows), run.step, lr)
            if not math.isfinite(values["loss"]):
                return run.stop_on_nan(values["loss"])
            engine.commit()
            run.end_batch(values, len(rows))
            if interrupt.signum:
                return run.interrupted()
        logs = run.averages.result()
        if val is not None and run.validation_due():
            val_logs = run.evaluate(val)
            if val_logs is None:
                return run.interrupted()
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
        run.end_epoch(logs)
        if interrupt.signum:
            return run.interrupted()
    return run.finish(test)


def main(out, data, engine=None, callbacks=(), **flags) -> tuple[int, NumpyEngine]:
    engine = engine or NumpyEngine()
    args = argparse.Namespace(out=out, data=data, resume=False, verbose=0, seed=None,
                              batch_size=None, validation_split=None, epochs=None)  # fmt: skip
    vars(args).update(flags)
    code = kt.cli.run(lambda interrupt, argv: fit(args, engine, interrupt, callbacks))
    return code, engine


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1
    np.savez(tmp_path / "d.npz", x_train=x[:50], y_train=y[:50], x_test=x[50:], y_test=y[50:])
    return tmp_path / "d.npz"


def digest(folder) -> dict:
    names = ("history.csv", "history.json", "Lin.trained.npz")
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}


def test_a_numpy_engine_trains_with_the_shared_machinery(tmp_path, data, capsys):
    code, engine = main(tmp_path / "a", data)
    assert code == 0
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert set(history) == {"epoch", "loss", "mae", "val_loss", "val_mae", "learning_rate"}
    assert history["loss"][-1] < history["loss"][0]
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["engine"] == "numpy" and results["steps"] == 15 and results["test_rows"] == 10
    with np.load(tmp_path / "a" / "Lin.trained.npz") as trained:
        assert np.array_equal(trained["dense/kernel"], engine.params["dense/kernel"])
    assert "test: loss:" in capsys.readouterr().out


@pytest.mark.parametrize(("hook", "code"), [("7", 130), ("5:TERM", 143)])
def test_an_interrupted_run_resumes_to_the_same_bytes(tmp_path, data, monkeypatch, hook, code):
    assert main(tmp_path / "whole", data)[0] == 0
    monkeypatch.setenv(TEST_HOOK, hook)
    assert main(tmp_path / "cut", data)[0] == code
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.delenv(TEST_HOOK)
    assert main(tmp_path / "cut", data, resume=True)[0] == 0
    assert digest(tmp_path / "cut") == digest(tmp_path / "whole")


def test_nan_points_at_the_last_checkpoint(tmp_path, data, capsys):
    code, engine = main(tmp_path / "o", data, engine=NumpyEngine(nan_at_step=7))
    assert code == 1
    err = capsys.readouterr().err
    where = "at epoch 2, step 8 (batch 3 of 5); training stopped"
    assert f"{where}; the last checkpoint is {tmp_path / 'o' / 'checkpoint.npz'}" in err
    with np.load(tmp_path / "o" / "checkpoint.npz") as ck:
        assert json.loads(str(ck["meta"]))["step"] == 5  # the end of epoch 1
    assert np.isfinite(engine.params["dense/kernel"]).all()  # the NaN step is not committed


def test_callbacks_act_on_the_engine(tmp_path, data):
    stop = {"name": "EarlyStopping", "monitor": "loss", "mode": "max", "patience": 0,
            "restore_best_weights": True, "min_delta": 0, "verbose": 0, "baseline": None,
            "start_from_epoch": 0}  # fmt: skip
    checkpoint = {"name": "ModelCheckpoint", "filepath": "e{epoch}.keras", "monitor": "loss",
                  "verbose": 0, "save_best_only": False, "save_weights_only": False,
                  "mode": "min", "save_freq": "epoch", "initial_value_threshold": None}  # fmt: skip
    code, _ = main(tmp_path / "o", data, callbacks=[stop, checkpoint])
    assert code == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["stopped_early"] and results["epochs"] == 2  # the loss fell: no "max" gain
    trained = np.load(tmp_path / "o" / "Lin.trained.npz")
    first = np.load(tmp_path / "o" / "e1.onnx")  # ModelCheckpoint's whole model: export()
    assert np.array_equal(trained["dense/kernel"], first["dense/kernel"])  # restored epoch 1


def test_errors_end_the_run_in_one_line(tmp_path, data, capsys):
    assert main(tmp_path / "o", tmp_path / "missing.npz")[0] == 1
    assert (
        capsys.readouterr().err.strip() == f"error: --data: there is no {tmp_path / 'missing.npz'}"
    )
    assert main(tmp_path / "o", data, resume=True)[0] == 1
    assert "--resume: there is no checkpoint" in capsys.readouterr().err
