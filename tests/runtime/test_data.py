"""ktrans_runtime.data, npz_source and prepare: datasets, the source dispatcher, Keras's
validation split and epoch orders, array names, and no silent transforms: casts only,
targets checked against their loss's domain."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from transpiler.templates.ktrans_runtime import data, npz_source
from transpiler.templates.ktrans_runtime.data import ArrayDataset, Feed
from transpiler.templates.ktrans_runtime.data_errors import DataError
from transpiler.templates.ktrans_runtime.errors import TrainingError
from transpiler.templates.ktrans_runtime.prepare import prepare

X = Feed("x", "x", "float32", (4,), keras="x")
Y = Feed("target:y", "y", "float32", (3,), keras="y", loss="categorical_crossentropy")


def test_array_dataset_takes_rows_and_splits():
    ds = ArrayDataset({"a": np.arange(10), "b": np.arange(20).reshape(10, 2)})
    assert ds.size == 10
    batch = ds.take(np.array([3, 1]))
    assert batch["a"].tolist() == [3, 1] and batch["b"].tolist() == [[6, 7], [2, 3]]
    first, rest = ds.split(7)
    assert (first.size, rest.size) == (7, 3) and rest.take(slice(0, 1))["a"].tolist() == [7]
    with pytest.raises(DataError, match="different numbers of rows"):
        ArrayDataset({"a": np.zeros(3), "b": np.zeros(4)})


def test_validation_split_holds_out_the_last_rows_as_keras_does():
    ds = ArrayDataset({"a": np.arange(10)})
    train, val = data.split_validation(ds, None, 0.25)
    # Keras 3 (array_slicing.train_validation_split): split_at = floor(rows * (1 - split))
    assert val.take(slice(None))["a"].tolist() == [7, 8, 9] and train.size == 7
    assert data.split_validation(ds, None, 0.0) == (ds, None)
    given = ArrayDataset({"a": np.arange(2)})
    assert data.split_validation(ds, given, 0.5) == (ds, given)
    with pytest.raises(TrainingError, match="leaves no training or validation rows"):
        data.split_validation(ArrayDataset({"a": np.arange(1)}), None, 0.5)


def test_epoch_orders_depend_on_seed_and_epoch_only():
    a = data.epoch_order(3, 1, 50, True)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, data.epoch_order(3, 1, 50, True))
    assert not np.array_equal(a, data.epoch_order(3, 2, 50, True))
    assert data.epoch_order(3, 1, 5, False).tolist() == [0, 1, 2, 3, 4]
    order = np.arange(10)
    assert data.batch_rows(order, 2, 4).tolist() == [8, 9]
    assert data.steps_per_epoch(10, 4) == 3 and data.steps_per_epoch(10, 4, 2) == 2


def test_a_registered_source_reads_its_own_format(tmp_path):
    path = tmp_path / "rows.txt"
    path.write_text("1 2 3 4 0\n5 6 7 8 2\n")

    seen = {}

    def load_text(p, feeds, options):
        seen.update(options)
        rows = np.loadtxt(p, dtype=np.float32)
        x = prepare(rows[:, :4], "rows", feeds[0])
        y = prepare(rows[:, 4].astype(np.int64), "labels", feeds[1])
        return {"train": ArrayDataset({"x": x, "target:y": y}), "val": None, "test": None}

    data.register_source("text rows", lambda p: p.suffix == ".txt", load_text)
    try:
        loaded = data.open_data(path, [X, Y], {"settings": {"delimiter": " "}, "seed": 3})
    finally:
        data._SOURCES.pop()
    assert loaded["train"].take(slice(None))["target:y"].tolist() == [[1, 0, 0], [0, 0, 1]]
    assert seen == {"settings": {"delimiter": " "}, "seed": 3}
    with pytest.raises(TrainingError, match="not a kind of data this script reads"):
        data.open_data(path, [X, Y])
    with pytest.raises(TrainingError, match="there is no"):
        data.open_data(tmp_path / "missing.npz", [X, Y])
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(TrainingError, match=r"pipe is a FIFO \(named pipe\), neither a file"):
        data.open_data(fifo, [X, Y])
    with pytest.raises(TrainingError, match="/dev/zero is a character device, neither a file"):
        data.open_data(Path("/dev/zero"), [X, Y])
    x, y = np.ones((4, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(TrainingError, match=r"'color_mode' does not apply to \.npz"):
        data.open_data(tmp_path / "d.npz", [X, Y], {"settings": {"color_mode": "rgb"}})
    # a folder of .npy files is another registered source (sources.py)
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "x.npy", x)
    np.save(tmp_path / "arrays" / "y.npy", y)
    assert data.open_data(tmp_path / "arrays", [X, Y])["train"].size == 4


def test_an_unreadable_data_file_is_one_line(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    (tmp_path / "locked.bin").write_bytes(b"PK")
    monkeypatch.setattr(data, "open", denied, raising=False)  # as for a 0000 file
    with pytest.raises(TrainingError, match=r"cannot read .*locked\.bin: Permission denied"):
        data.open_data(tmp_path / "locked.bin", [X, Y])


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_npz_arrays_by_model_name_or_keras_name_and_splits(tmp_path):
    x, y = np.ones((6, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    loaded = data.open_data(
        _npz(tmp_path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2]), [X, Y]
    )
    assert loaded["train"].size == 6 and loaded["val"] is None and loaded["test"].size == 2
    loaded = data.open_data(_npz(tmp_path, x=x, y=y, val_x=x[:3], val_y=y[:3]), [X, Y])
    assert loaded["val"].size == 3
    with pytest.raises(
        TrainingError, match="the val data has no array 'val_y' \\(nor Keras's y_val\\)"
    ):
        data.open_data(_npz(tmp_path, x=x, y=y, val_x=x), [X, Y])


def test_missing_array_messages(tmp_path):
    one = Feed("tokens", "tokens", "float32", (None, 4))
    path = _npz(tmp_path, x_tr=np.zeros((2, 5, 4)))
    with pytest.raises(TrainingError) as e:
        data.open_data(path, [one])
    assert str(e.value) == f"--data {path}: the train data has no array 'tokens'; it holds: x_tr"
    # two inputs given Keras's names: what was expected, and why x_train does not serve
    a, b = Feed("a", "a", "float32", (4,)), Feed("b", "b", "float32", (4,))
    out = Feed("target:output", "output", "float32", (2,), loss="mse")
    path = _npz(tmp_path, x_train=np.zeros((2, 4)), y_train=np.zeros((2, 2)))
    with pytest.raises(TrainingError) as e:
        data.open_data(path, [a, b, out])
    message = str(e.value)
    assert message.startswith(
        f"--data {path}: the train data has no arrays 'a', 'b' and 'output'; it holds: "
        "x_train, y_train."
    )
    assert "serve a model with one input and one trained output" in message
    assert "this one has the input(s) a, b and the trained output(s) output" in message
    many = {f"array{i}": np.zeros(1) for i in range(25)}
    assert "and 5 more" in npz_source.missing_message("train", [a], list(many), [a])


def test_npz_array_errors_name_the_file(tmp_path):
    path = _npz(tmp_path, x_train=np.zeros((2, 5), np.float32), y_train=np.array([0, 1]))
    with pytest.raises(TrainingError) as e:
        data.open_data(path, [X, Y])
    assert str(e.value) == f"--data {path}: x_train: rows shaped (5,), not (4,)"
    path = _npz(tmp_path, x_train=np.zeros((2, 4), np.float32), y_train=np.array([0, 7]))
    with pytest.raises(TrainingError) as e:
        data.open_data(path, [X, Y])
    assert str(e.value) == f"--data {path}: y_train holds labels outside 0..2: row 1 holds 7"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not a zip at all", "it is not an .npz archive"),
        (b"", "it is not an .npz archive"),
    ],
)
def test_unreadable_npz_files(tmp_path, content, fragment):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(TrainingError, match=fragment):
        data.open_data(path, [X, Y])
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(TrainingError, match="holds a single array"):
        data.open_data(tmp_path / "single.npz", [X, Y])


# ------------------------------------------------------------------ prepare


def test_uint8_inputs_are_cast_never_rescaled(capsys):
    pixels = np.array([[0, 128, 255, 7]], np.uint8)
    out = prepare(pixels, "x_train", X)
    assert out.dtype == np.float32 and out.tolist() == [[0.0, 128.0, 255.0, 7.0]]
    assert capsys.readouterr().err == "data: x_train: cast from uint8 to float32\n"


def test_labels_one_hot_reshape_and_sparse_ids(capsys):
    assert prepare(np.array([2, 0]), "y", Y).tolist() == [[0, 0, 1], [1, 0, 0]]
    image = Feed("image", "image", "float32", (2, 2, 1))
    assert prepare(np.zeros((3, 4), np.float32), "x", image).shape == (3, 2, 2, 1)
    sparse = Feed("target:y", "y", "int64", (), loss="sparse_categorical_crossentropy", classes=3)
    ids = prepare(np.array([[2], [1]]), "y", sparse)
    assert ids.dtype == np.int64 and ids.tolist() == [2, 1]
    err = capsys.readouterr().err
    assert "one-hot encoded (3 classes)" in err and "reshaped to (2, 2, 1) per row" in err
    assert "dropped the last axis (size 1) of the class ids" in err
    ignored = Feed(
        "t", "y", "int64", (), loss="sparse_categorical_crossentropy", classes=3, ignore_class=-1
    )
    assert prepare(np.array([-1, 2]), "y", ignored).tolist() == [-1, 2]


@pytest.mark.parametrize(
    ("array", "feed", "fragment"),
    [
        (np.float32(1), X, "y_bad is a single value"),
        (np.array([[1, 2, np.nan, 4]]), X, "y_bad: row 0 holds nan"),
        (np.zeros((2, 5)), X, "rows shaped (5,), not (4,)"),
        (
            np.array([0, 1, 3]),
            Feed("t", "y", "int64", (), loss="sparse_categorical_crossentropy", classes=3),
            "labels outside 0..2: row 2 holds 3",
        ),
        (np.array([0, 4]), Y, "labels outside 0..2: row 1 holds 4"),
        (
            np.array([[0.0], [1.0], [255.0]]),
            Feed("t", "y", "float32", (1,), loss="binary_crossentropy"),
            "targets outside [0, 1], which binary_crossentropy needs: row 2 holds 255.0",
        ),
        (
            np.array([[1.0, 0, 0], [1, 1, 0]]),
            Y,
            "not one-hot rows, which categorical_crossentropy needs: row 1 is [1, 1, 0]",
        ),
        (
            np.array([[1.5, -0.5, 0]]),
            Y,
            "not one-hot rows, which categorical_crossentropy needs: row 0",
        ),
        (np.array([[0.5, 1.0]]), Feed("ids", "ids", "int64", (2,)), "must hold whole numbers"),
        (np.array([[2**40, 1]]), Feed("ids", "ids", "int32", (2,)), "which int32 cannot hold"),
    ],
)
def test_what_prepare_refuses(array, feed, fragment):
    with pytest.raises(TrainingError) as e:
        prepare(np.asarray(array), "y_bad", feed)
    assert fragment in str(e.value)


def test_valid_targets_pass():
    soft = np.array([[0.2, 0.3, 0.5], [0, 0, 0]], np.float32)  # soft labels, a no-class row
    assert prepare(soft, "y", Y).tolist() == soft.tolist()
    binary = Feed("t", "y", "float32", (1,), loss="binary_crossentropy")
    assert prepare(np.array([[0.0], [0.3], [1.0]]), "y", binary).shape == (3, 1)
    regression = Feed("t", "y", "float32", (1,), loss="mse")
    assert prepare(np.array([[255.0]]), "y", regression).tolist() == [[255.0]]
