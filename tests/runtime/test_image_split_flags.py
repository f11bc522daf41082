"""--validation-split and --interpolation on an image folder, against Keras 3's own
`image_dataset_from_directory` (the oracle helpers of test_image_folder.py): the flag's
split holds out exactly the files Keras's validation subset holds for that seed (the
data section's seed, else the run's --seed), over the data section's validation_split;
--interpolation resizes as Keras does; a bundle script trained with both reports val_
metrics whose loss is the trained model's on Keras's validation images; a resumed run
sees the same split and ends with the same bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.image_samples import write_image_folder
from tests.runtime.test_image_folder import keras_arrays, keras_dataset
from transpiler.cli import main
from transpiler.templates.ktrans_runtime import cli, sources
from transpiler.templates.ktrans_runtime.feeds import Feed

pytest.importorskip("keras")
pytest.importorskip("grain")

IMAGE = Feed("image", "image", (8, 8, 1), np.float32)
GRAY = dict(image_size=(8, 8), color_mode="grayscale")

MODEL = """
model Gray {
    input image: float32[8, 8, 1]
    Rescaling(1 / 255)
    Flatten()
    output kind = Dense(3, activation=softmax)
}
train Gray {
    loss = sparse_categorical_crossentropy
    optimizer = SGD(0.1)
    batch_size = 4
    epochs = 2
}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"))


def split_of(folder, section: dict, run_split, seed: int = 0):
    """(training files, validation files or None) the runtime opens."""
    opened = sources.open_data(folder, [IMAGE], section, seed, run_split)
    return opened.train.paths, (opened.val.paths if opened.val is not None else None)


def keras_split(folder, split: float, seed: int):
    train, val = keras_dataset(folder, validation_split=split, subset="both", seed=seed, **GRAY)
    return train.file_paths, val.file_paths


@pytest.mark.parametrize(
    ("section", "run_split", "keras"),
    [
        ({}, (0.25, True), (0.25, 5)),  # the flag, the run's seed
        ({"validation_split": 0.5, "seed": 7}, (0.25, True), (0.25, 7)),  # over the section's
        ({"validation_split": 0.5, "seed": 7}, (0.0, False), (0.5, 7)),  # the section's
        ({}, (0.3, False), (0.3, 5)),  # the train block's own validation_split
    ],
)
def test_the_run_split_holds_out_the_files_keras_does(folder, section, run_split, keras):
    train, val = split_of(folder, section, run_split, seed=5)
    assert (train, val) == keras_split(folder, *keras)
    assert len(val) == int(keras[0] * 13)


def test_a_split_of_zero_given_trains_on_every_file(folder):
    section = {"validation_split": 0.5, "subset": "training", "seed": 7}
    train, val = split_of(folder, section, (0.0, True))
    assert val is None and train == keras_dataset(folder, seed=7, **GRAY).file_paths


def test_the_interpolation_flag_resizes_as_keras(folder):
    fit = {"epochs": 1, "batch_size": 4, "validation_split": 0.0}
    args = cli.parse_args(["--data", "d", "--interpolation", "nearest"], "M", "t", fit, 0, ".")
    section = sources.apply_flags({"shuffle": False, "image_size": [5, 7]}, cli.data_flags(args))
    feed = Feed("image", "image", (5, 7, 1), np.float32)
    opened = sources.open_data(folder, [feed], section)
    ours = opened.train.take(np.arange(opened.train.size))["image"]
    assert opened.info.settings["interpolation"] == "nearest"
    kwargs = dict(shuffle=False, image_size=(5, 7), color_mode="grayscale")
    nearest, _ = keras_arrays(keras_dataset(folder, interpolation="nearest", **kwargs))
    bilinear, _ = keras_arrays(keras_dataset(folder, interpolation="bilinear", **kwargs))
    np.testing.assert_allclose(ours, nearest, rtol=1e-5, atol=1e-5)
    assert np.abs(ours - bilinear).max() > 1  # the flag changed the pixels


# ---------------------------------------------------------------- the bundle script


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    (root / "gray.kdl").write_text(MODEL)
    assert main(["codegen", str(root / "gray.kdl"), "--target", "train", "-o",
                 str(root / "b")]) == 0  # fmt: skip
    return root / "b" / "train_Gray.py"


def train(script: Path, folder: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), "--data", str(folder), "--out", str(out),
         "--verbose", "0", *flags],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def keras_val_loss(model: Path, folder: Path, seed: int, interpolation: str) -> float:
    """The trained model's sparse categorical cross-entropy (Keras's clipping) on the
    images of Keras's validation subset."""
    import onnxruntime as ort

    val = keras_dataset(folder, validation_split=0.25, subset="validation", seed=seed,
                        interpolation=interpolation, **GRAY)  # fmt: skip
    images, labels = keras_arrays(val)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (probs,) = session.run(["kind"], {"image": images.astype(np.float32)})
    probs = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    probs /= probs.sum(axis=1, keepdims=True)
    return float(-np.log(probs[np.arange(len(labels)), labels]).mean())


FLAGS = ("--validation-split", "0.25", "--seed", "3", "--interpolation", "nearest")


@pytest.fixture(scope="module")
def ort_run(script, folder, tmp_path_factory) -> Path:
    """The onnxruntime bundle's run with FLAGS (2 epochs)."""
    out = tmp_path_factory.mktemp("ort") / "run"
    done = train(script, folder, out, *FLAGS)
    assert done.returncode == 0, done.stderr
    assert "does not apply" not in done.stderr
    return out


def test_the_scripts_validation_split_validates_on_kerass_files(ort_run, folder):
    history = json.loads((ort_run / "history.json").read_text())
    assert len(history["val_loss"]) == 2 and np.isfinite(history["val_loss"]).all()
    info = json.loads((ort_run / "data.json").read_text())
    assert info["rows"] == {"train": 10, "val": 3}
    assert info["settings"]["validation_split"] == 0.25 and info["settings"]["seed"] == 3
    model = ort_run / "Gray.trained.onnx"
    expected = keras_val_loss(model, folder, 3, "nearest")
    np.testing.assert_allclose(history["val_loss"][-1], expected, rtol=1e-5)
    other = keras_val_loss(model, folder, 3, "bilinear")
    assert abs(other - expected) > 1e-4  # the flag's interpolation is the one validated


def test_a_resumed_run_keeps_the_split_and_ends_with_the_same_bytes(
    script, folder, ort_run, tmp_path
):
    """Stopped after one epoch and resumed without the flags (the checkpoint keeps the
    split, the seed and the data flags); a data flag or split given again differently is
    refused."""
    first = train(script, folder, tmp_path / "b", *FLAGS, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    changed = train(script, folder, tmp_path / "b", "--resume", "--interpolation", "bilinear")
    assert changed.returncode == 1 and "--interpolation bilinear differs" in changed.stderr
    other_split = train(script, folder, tmp_path / "b", "--resume", "--validation-split", "0.5")
    assert other_split.returncode == 1 and "differs from the checkpoint's" in other_split.stderr
    resumed = train(script, folder, tmp_path / "b", "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("Gray.trained.onnx", "history.json", "data.json"):
        assert (tmp_path / "b" / name).read_bytes() == (ort_run / name).read_bytes()


def test_the_torch_engine_splits_the_same_files(folder, ort_run, tmp_path):
    """The PyTorch bundle shares the runtime: the same split, and the same first epoch
    as the onnxruntime engine (same initial weights, seed and files)."""
    from tests.torch_train.bundles import torch_bundle

    script = torch_bundle(tmp_path, MODEL)
    done = train(script, folder, tmp_path / "run", *FLAGS, "--epochs", "1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "data.json").read_bytes() == (ort_run / "data.json").read_bytes()
    ours = json.loads((tmp_path / "run" / "history.json").read_text())
    theirs = json.loads((ort_run / "history.json").read_text())
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours[key][0], theirs[key][0], rtol=1e-4, err_msg=key)


def test_ktrans_train_help_lists_the_data_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--validation-split F", "--interpolation {bilinear,nearest}", "--image-size"):
        assert flag in text
    assert "the data section's seed, else --seed" in text


# ---------------------------------------------------------------- rows of other data


@pytest.mark.parametrize("kind", ["csv", "npy"])
def test_the_flag_holds_out_the_last_rows_of_a_table_or_npy_folder(tmp_path, kind):
    """Not an image folder: --validation-split is Keras's fit(validation_split=F), the
    last floor-complement of the rows, before any shuffling."""
    import argparse

    from tests.runtime.test_loop import FEEDS, FIT, LOSSES, PLAN, NumpyEngine
    from transpiler.templates.ktrans_runtime.loop import TrainingRun
    from transpiler.templates.ktrans_runtime.signals import Interrupt

    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.normal(size=(20, 1)).astype(np.float32)
    section = {}
    if kind == "csv":
        data = tmp_path / "t.csv"
        rows = ["a,b,c,y"] + [",".join(repr(float(v)) for v in (*xs, *ys)) for xs, ys in zip(x, y)]
        data.write_text("\n".join(rows) + "\n")
        section = {"columns": {"x": ["a", "b", "c"], "output": "y"}}
    else:
        data = tmp_path / "arrays"
        data.mkdir()
        np.save(data / "x.npy", x)
        np.save(data / "output.npy", y)
    flags = dict(seed=None, batch_size=None, validation_split=0.25, epochs=None)
    args = argparse.Namespace(out=tmp_path / "o", data=str(data), resume=False, verbose=0, **flags)
    compiled = {"model": "Lin", "train_block": "default", "seed": 0, "fit": FIT,
                "losses": LOSSES, "metric_plan": PLAN, "learning_rate": 0.05,
                "callbacks": []}  # fmt: skip
    run = TrainingRun(args, NumpyEngine(), Interrupt(), compiled)
    train, val, _ = run.open_data(FEEDS, section)
    assert (train.size, val.size) == (15, 5)  # Keras: split_at = floor(20 * (1 - 0.25))
    np.testing.assert_array_equal(train.take(np.arange(15))["x"], x[:15])
    np.testing.assert_array_equal(val.take(np.arange(5))["x"], x[15:])
    np.testing.assert_array_equal(val.take(np.arange(5))["target:output"], y[15:])
    assert run.settings["validation_split"] == 0.25
