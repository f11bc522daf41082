"""CSV tables and .npy directories: the same data as an .npz gives the same batches in the
same order; every problem is an error naming the file, the line or array, the column,
and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.templates.ktrans_runtime.csv_table import CsvSettings, open_csv
from transpiler.templates.ktrans_runtime.data_errors import DataError
from transpiler.templates.ktrans_runtime.feeds import ArrayDataset, Feed
from transpiler.templates.ktrans_runtime.npy_dir import open_npy_dir
from transpiler.templates.ktrans_runtime.onnx_metadata import metadata_entries
from transpiler.templates.ktrans_runtime.sources import (
    DataInfo,
    data_kind,
    open_data,
    open_eval_data,
    read_data_info,
    write_data_info,
)

FEATURES = ["alcohol", "ash", "hue"]
FEEDS = [
    Feed("features", "features", (3,), np.float32),
    Feed("target:kind", "kind", (3,), np.float32),
]


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(40, 3)), 3).astype(np.float32)
    y = rng.integers(0, 3, 40)
    return x, y


def write_csv(path, x, labels, header=(*FEATURES, "kind")):
    lines = [",".join(header)]
    lines += [",".join([*(repr(float(v)) for v in row), str(k)]) for row, k in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_npy_and_npz_give_the_same_batches(tmp_path, arrays):
    x, y = arrays
    names = np.array(["barolo", "grignolino", "barbera"])[y]  # a categorical target
    csv = write_csv(tmp_path / "wine.csv", x, names)
    settings = CsvSettings(columns={"features": FEATURES}, categorical=["kind"])
    table = open_csv(csv, FEEDS, settings)
    assert table.vocabularies == {"kind": ["barbera", "barolo", "grignolino"]}
    assert table.class_names == {"kind": ["barbera", "barolo", "grignolino"]}
    ids = np.array([table.vocabularies["kind"].index(n) for n in names])

    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "features.npy", x)
    np.save(npy / "kind.npy", ids)
    mapped = open_npy_dir(npy, FEEDS)["train"]
    np.savez(tmp_path / "d.npz", features=x, kind=ids)
    with np.load(tmp_path / "d.npz") as d:
        memory = ArrayDataset(
            {"features": d["features"], "target:kind": np.eye(3, dtype=np.float32)[d["kind"]]}
        )

    order = np.random.default_rng(7).permutation(40)
    for start in range(0, 40, 16):
        rows = order[start : start + 16]
        expected = memory.take(rows)
        for dataset in (table.dataset, mapped):
            batch = dataset.take(rows)
            assert batch.keys() == expected.keys()
            for name in batch:
                assert batch[name].dtype == expected[name].dtype
                np.testing.assert_array_equal(batch[name], expected[name])


def test_columns_default_to_feed_names_and_star_takes_the_rest(tmp_path, arrays):
    x, y = arrays
    csv = write_csv(tmp_path / "t.csv", x, y)
    got = open_csv(csv, FEEDS, CsvSettings(columns={"features": "*"}))
    assert got.columns == {"target:kind": ["kind"], "features": FEATURES}
    np.testing.assert_array_equal(got.dataset.arrays["features"], x)


def test_npy_arrays_are_memory_mapped_and_split_by_name(tmp_path, arrays):
    x, y = arrays
    for split, rows in (("train", slice(0, 30)), ("test", slice(30, 40))):
        np.save(tmp_path / f"x_{split}.npy", x[rows].reshape(-1, 3, 1))  # reshaped per row
        np.save(tmp_path / f"y_{split}.npy", y[rows].astype(np.uint8))
    feeds = [Feed("features", "features", (3,), np.float32), Feed("target:o", "o", (), np.int64)]
    splits = open_npy_dir(tmp_path, feeds)
    assert isinstance(splits["train"].columns["features"].array, np.memmap)
    assert splits["val"] is None and splits["test"].size == 10
    batch = splits["test"].take(np.array([3, 0, 9]))
    np.testing.assert_array_equal(batch["features"], x[30:][[3, 0, 9]])
    assert batch["target:o"].dtype == np.int64
    first, rest = splits["train"].split(20)
    assert (first.size, rest.size) == (20, 10)
    np.testing.assert_array_equal(rest.take(slice(0, 2))["features"], x[20:22])


def test_open_data_and_eval_data_for_csv(tmp_path, arrays):
    x, y = arrays
    names = np.array(["a", "b", "c"])[y]
    write_csv(tmp_path / "train.csv", x, names)
    settings = {"columns": {"features": FEATURES}, "categorical": ["kind"]}
    opened = open_data(tmp_path / "train.csv", FEEDS, settings)
    assert opened.val is None and opened.train.size == 40
    write_data_info(tmp_path, opened.info)
    info = read_data_info(tmp_path)
    assert info.class_names == {"kind": ["a", "b", "c"]}
    assert info.settings["columns"] == {"features": FEATURES, "kind": ["kind"]}
    # a test table with only two of the classes keeps the training vocabulary
    write_csv(tmp_path / "test.csv", x[:5], ["c", "c", "b", "c", "b"])
    dataset, what = open_eval_data(tmp_path / "test.csv", FEEDS, info, None)
    np.testing.assert_array_equal(
        dataset.take(slice(0, 5))["target:kind"].argmax(1), [2, 2, 1, 2, 1]
    )
    assert "5 rows" in what
    write_csv(tmp_path / "odd.csv", x[:2], ["a", "zebra"])
    with pytest.raises(DataError, match=r"odd.csv:3: column 'kind' holds 'zebra', which the "):
        open_eval_data(tmp_path / "odd.csv", FEEDS, info, None)


def test_data_kinds(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "arr").mkdir()
    np.save(tmp_path / "arr" / "x.npy", np.zeros(2))
    assert data_kind(tmp_path / "imgs") == "images"
    assert data_kind(tmp_path / "arr") == "npy"
    (tmp_path / "t.csv").write_text("a\n1\n")
    np.savez(tmp_path / "d.npz", a=np.zeros(1))
    assert data_kind(tmp_path / "t.csv") == "csv"
    assert data_kind(tmp_path / "d.npz") == "npz"
    with pytest.raises(DataError, match="no such file or folder"):
        data_kind(tmp_path / "nothing.bin")


def test_metadata_entries_extend_an_onnx_model(tmp_path):
    import onnx
    from onnx import helper

    graph = helper.make_graph([], "g", [], [])
    model = helper.make_model(graph)
    helper.set_model_props(model, {"ktrans.model": "M"})
    data = model.SerializeToString() + metadata_entries({"ktrans.class_names": '{"o": ["ä"]}'})
    loaded = onnx.load_from_string(data)
    assert {p.key: p.value for p in loaded.metadata_props} == {
        "ktrans.model": "M",
        "ktrans.class_names": '{"o": ["ä"]}',
    }


# ---------------------------------------------------------------- problems, each named


def csv_error(tmp_path, text, settings=None, feeds=FEEDS):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        open_csv(path, feeds, settings or CsvSettings(columns={"features": FEATURES}))
    return str(e.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "alcohol,ash,hue,kind\n1,2,3,0\n1,2,0\n",
            "bad.csv:3: the row has 3 fields, the header has 4",
        ),
        ("alcohol,ash,hue,kind\n1,2,3,0,9\n", "bad.csv:2: the row has 5 fields, the header has 4"),
        ("alcohol,ash,kind\n1,2,0\n", "bad.csv: no column 'hue' for the input 'features'"),
        ("alcohol,ash,hue,kind\n1,x,3,0\n", "bad.csv:2: column 'ash' holds 'x', expected a number"),
        ("alcohol,ash,hue,kind\n1,,3,0\n", "bad.csv:2: column 'ash' is empty, expected a number"),
        (
            "alcohol,ash,hue,kind\n1,2,3,1.5\n",
            "bad.csv:2: column 'kind' holds 1.5, expected a class id",
        ),
        ("alcohol,ash,hue,kind\n1,2,3,7\n", "row 0 holds the class 7, outside 0..2"),
        ("", "bad.csv: the file is empty"),
        ("alcohol,ash,hue,kind\n", "bad.csv: the table has a header but no rows"),
        ("a,a,hue,kind\n1,2,3,0\n", "bad.csv:1: the header names the column 'a' twice"),
    ],
)
def test_csv_problems(tmp_path, text, message):
    assert message in csv_error(tmp_path, text)


def test_csv_mapping_problems(tmp_path):
    text = "alcohol,ash,hue,kind\n1,2,3,0\n"
    assert "columns maps 'colour', which is not an input or output" in csv_error(
        tmp_path, text, CsvSettings(columns={"colour": "hue"})
    )
    message = csv_error(tmp_path, text, CsvSettings())
    assert "bad.csv: no column 'features' for the input 'features'; the header" in message
    assert "map columns to it: data { columns = { features: [...] } }" in message
    assert (
        "columns alcohol, ash: 2 values per row, but the input 'features' takes float32"
        in csv_error(tmp_path, text, CsvSettings(columns={"features": ["alcohol", "ash"]}))
    )
    ids = [Feed("ids", "ids", (2,), np.int64)]
    assert "bad.csv:2: column 'ash' holds 2.5, expected an integer (int64)" in csv_error(
        tmp_path, "alcohol,ash\n1,2.5\n", CsvSettings(columns={"ids": ["alcohol", "ash"]}), ids
    )


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"features": np.zeros((4, 5), np.float32)},
            "features.npy: float32 rows shaped (5,), but the input 'features' takes float32 "
            "rows shaped (3,)",
        ),
        (
            {"features": np.zeros((4, 3), np.complex64)},
            "features.npy: complex64 rows shaped (3,), but the input 'features' takes float32",
        ),
        ({"kind": np.full(4, 5)}, "kind.npy: row 0 holds the class 5, outside 0..2"),
        (
            {"kind": np.zeros(3, np.int64)},
            "arrays with different numbers of rows: features.npy has 4, kind.npy has 3",
        ),
        ({"kind": None}, "the train data has 1 arrays but no kind.npy"),
    ],
)
def test_npy_problems(tmp_path, arrays, message):
    files = {"features": np.zeros((4, 3), np.float32), "kind": np.zeros(4, np.int64), **arrays}
    for name, array in files.items():
        if array is not None:
            np.save(tmp_path / f"{name}.npy", array)
    with pytest.raises(DataError) as e:
        open_npy_dir(tmp_path, FEEDS)
    assert message in str(e.value)


def test_data_info_round_trip(tmp_path):
    info = DataInfo("images", "d", {"seed": 1}, {"o": ["a", "b"]}, skipped=[["x.png", "bad"]])
    write_data_info(tmp_path, info)
    assert read_data_info(tmp_path) == info
    assert read_data_info(tmp_path / "none") is None


WINE = """
model Wine {
    input features: float32[3]
    Dense(4, activation=relu)
    output kind = Dense(3, activation=softmax)
}
train Wine {
    loss = categorical_crossentropy
    optimizer = Adam(learning_rate=0.01)
    metrics = [accuracy]
    batch_size = 8
    epochs = 3
    validation_split = 0.25
    data {
        columns = { features: ["alcohol", "ash", "hue"] }
        categorical = ["kind"]
    }
}
"""


def test_csv_npy_and_npz_give_the_same_training_history(tmp_path, arrays):
    """One bundle trained on the same data as a CSV table (a categorical target column), a
    folder of memory-mapped .npy files and an .npz archive: the same history, to the
    bit (issue 12 §5)."""
    import json
    import subprocess
    import sys

    from transpiler.cli import main

    x, y = arrays
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    ids = np.searchsorted(["barbera", "barolo", "grignolino"], names)  # the sorted vocabulary
    sources = {"csv": write_csv(tmp_path / "wine.csv", x, names)}
    sources["npy"] = tmp_path / "npy"
    sources["npy"].mkdir()
    np.save(sources["npy"] / "features.npy", x)
    np.save(sources["npy"] / "kind.npy", ids)
    sources["npz"] = tmp_path / "wine.npz"
    np.savez(sources["npz"], x_train=x, y_train=ids)
    # the data section says how to read the CSV table; the others take no settings
    section = WINE[WINE.index("    data {") : WINE.rindex("}")]
    scripts = {}
    for name, text in (("csv", WINE), ("arrays", WINE.replace(section, ""))):
        (tmp_path / f"{name}.kdl").write_text(text)
        bundle = tmp_path / f"bundle_{name}"
        command = ["codegen", str(tmp_path / f"{name}.kdl"), "--target", "train", "-o"]
        assert main([*command, str(bundle)]) == 0
        scripts[name] = bundle / "train_Wine.py"
    histories = {}
    for kind, data in sources.items():
        script_path = scripts["csv" if kind == "csv" else "arrays"]
        out = tmp_path / f"run_{kind}"
        done = subprocess.run(
            [sys.executable, str(script_path), "--data", str(data), "--out", str(out),
             "--verbose", "0"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        histories[kind] = json.loads((out / "history.json").read_text())
    assert set(histories["csv"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert histories["npy"] == histories["csv"]
    assert histories["npz"] == histories["csv"]


def test_an_image_folder_says_how_many_files_it_skipped(tmp_path, capsys):
    from tests.runtime.image_samples import write_image_folder

    folder = write_image_folder(tmp_path / "images")  # 13 images and a notes.txt
    (folder / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (folder / "emu" / "b.bmp").write_bytes(b"BM")
    feeds = [Feed("image", "image", (8, 8, 3), np.float32), Feed("target:y", "y", (), np.int64)]
    opened = open_data(folder, feeds, {"image_size": [8, 8]})
    assert opened.train.size == 11
    lines = [line for line in capsys.readouterr().err.splitlines() if "skipped" in line]
    assert sorted(lines[:-1]) == [  # each once, in the folder's shuffled order
        f"data: skipped {folder / 'cat' / 'a.png'}: cannot read it "
        f"(cannot identify image file '{folder / 'cat' / 'a.png'}')",
        f"data: skipped {folder / 'emu' / 'b.bmp'}: cannot read it "
        f"(cannot identify image file '{folder / 'emu' / 'b.bmp'}')",
    ]
    assert lines[-1] == "data: 2 of 13 files skipped (unreadable)"
    good = write_image_folder(tmp_path / "good")
    open_data(good, feeds, {"image_size": [8, 8]})
    assert "skipped" not in capsys.readouterr().err
