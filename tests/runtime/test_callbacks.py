"""ktrans_runtime.callbacks against Keras's own callbacks: the same monitored values, epoch
by epoch, give the same stops, restored weights and learning rates."""

from __future__ import annotations

import os

import numpy as np
import pytest

from transpiler.templates.ktrans_runtime import callbacks
from transpiler.templates.ktrans_runtime.errors import TrainingError
from transpiler.templates.ktrans_runtime.files import inside

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

LOSSES = [1.0, 0.8, 0.81, 0.79, 0.7900001, 0.9, 0.95, 0.5, 0.6, 0.61, 0.62, 0.63]


class Run:
    """What a callback sees of a TrainingRun."""

    def __init__(self, out) -> None:
        self.lr, self.stop, self.out = 0.1, False, out
        self.current = {"w": np.zeros(1, np.float32)}
        self.saved: list = []

    def weights(self):
        return {k: v.copy() for k, v in self.current.items()}

    def set_weights(self, weights):
        self.current = {k: v.copy() for k, v in weights.items()}

    def export(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))

    def output_path(self, name, who):
        return inside(self.out, name, who)


def keras_model(lr: float = 0.1):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 0},
        {"patience": 2, "min_delta": 0.01},
        {"patience": 1, "restore_best_weights": True},
        {"patience": 2, "baseline": 0.85},
        {"patience": 1, "start_from_epoch": 3, "restore_best_weights": True},
        {"patience": 2, "mode": "max"},
    ],
)
def test_early_stopping_matches_keras(tmp_path, kwargs):
    settings = {"monitor": "loss", "mode": "min", **kwargs}
    theirs = keras.callbacks.EarlyStopping(**settings)
    model = keras_model()
    theirs.set_model(model)
    theirs.on_train_begin()
    ours = callbacks.EarlyStopping(**settings)
    run = Run(tmp_path)
    stopped = {"ours": None, "theirs": None}
    for epoch, loss in enumerate(LOSSES):
        model.layers[0].kernel.assign([[float(epoch)]])  # weights that name their epoch
        run.current = {"w": np.array([float(epoch)], np.float32)}
        theirs.on_epoch_end(epoch, {"loss": loss})
        ours.on_epoch_end(run, epoch, {"loss": loss})
        if model.stop_training and stopped["theirs"] is None:
            stopped["theirs"] = epoch
        if run.stop and stopped["ours"] is None:
            stopped["ours"] = epoch
        if model.stop_training or run.stop:
            break
    theirs.on_train_end()
    ours.on_train_end(run)
    assert stopped["ours"] == stopped["theirs"]
    assert float(run.current["w"][0]) == float(model.layers[0].kernel.numpy()[0, 0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 1, "factor": 0.5},
        {"patience": 2, "factor": 0.2, "cooldown": 1, "min_lr": 0.01},
        {"patience": 0, "factor": 0.5, "min_delta": 0.05},
    ],
)
def test_reduce_lr_on_plateau_matches_keras(tmp_path, kwargs):
    settings = {"monitor": "loss", "mode": "min", **kwargs}
    model = keras_model(0.1)
    theirs = keras.callbacks.ReduceLROnPlateau(**settings)
    theirs.set_model(model)
    theirs.on_train_begin()
    ours = callbacks.ReduceLROnPlateau(**settings)
    run = Run(tmp_path)
    for epoch, loss in enumerate(LOSSES):
        theirs.on_epoch_end(epoch, {"loss": loss})
        ours.on_epoch_end(run, epoch, {"loss": loss})
        expected = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        assert run.lr == pytest.approx(expected, rel=1e-7), epoch


def test_learning_rate_scheduler_and_make_callbacks(tmp_path):
    made = callbacks.make_callbacks(
        [
            {"name": "LearningRateScheduler", "verbose": 0,
             "schedule": {"name": "PiecewiseConstantDecay", "boundaries": [1],
                          "values": [0.5, 0.25]}},
            {"name": "TerminateOnNaN", "raise_error": False},
        ]
    )  # fmt: skip
    run = Run(tmp_path)
    lrs = []
    for epoch in range(3):
        made[0].on_epoch_begin(run, epoch)
        logs: dict = {}
        made[0].on_epoch_end(run, epoch, logs)
        lrs.append(logs["learning_rate"])
    assert lrs == [0.5, 0.5, 0.25]  # Keras's schedule: values[i] up to boundaries[i]
    with pytest.raises(ValueError, match="not in this runtime"):
        callbacks.make_callbacks([{"name": "Nope"}])


def test_csv_logger_and_model_checkpoint_write_inside_out(tmp_path):
    run = Run(tmp_path)
    logger = callbacks.CSVLogger("log.csv")
    logger.on_train_begin(run)
    for epoch, loss in enumerate([0.5, 0.25]):
        logger.on_epoch_end(run, epoch, {"loss": loss})
    assert (
        tmp_path / "log.csv"
    ).read_bytes() == b"epoch,loss,val_loss\r\n0,0.5,NA\r\n1,0.25,NA\r\n"
    again = callbacks.CSVLogger("log.csv", append=True)
    again.on_epoch_end(run, 2, {"loss": 0.125})
    assert (tmp_path / "log.csv").read_bytes().endswith(b"1,0.25,NA\r\n2,0.125,NA\r\n")

    best = callbacks.ModelCheckpoint("ck/{epoch:02d}.keras", monitor="loss", save_best_only=True)
    for epoch, loss in enumerate([0.5, 0.7, 0.4]):
        best.on_epoch_end(run, epoch, {"loss": loss})
    assert run.saved == [("model", tmp_path / "ck/01.onnx"), ("model", tmp_path / "ck/03.onnx")]
    weights = callbacks.ModelCheckpoint("w.weights.h5", save_weights_only=True, save_freq=2)
    for batch in range(4):
        weights.on_batch_end(run, batch, {"loss": 1.0})
    assert run.saved[2:] == [("weights", tmp_path / "w.weights.npz")] * 2
    outside = callbacks.CSVLogger("../x.csv")
    with pytest.raises(TrainingError, match="leads outside the output folder"):
        outside.on_train_begin(run)
    unlogged = callbacks.ModelCheckpoint("{epoch}-{val_loss:.2f}.keras")
    with pytest.raises(TrainingError, match=r"uses \{val_loss\}, which this run does not log"):
        unlogged.on_epoch_end(run, 0, {"loss": 0.5})
