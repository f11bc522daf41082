"""`ktrans evaluate` against Keras's `model.evaluate()` on the same weights and data;
`ktrans predict` on a PNG against `ktrans run` on the same image as an array; `ktrans
report`; their errors (exit 1, one line, no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.emit.train.keras_oracle import compile_like
from tests.runtime.conftest import tiny_data
from transpiler.cli import main
from transpiler.graph import load
from transpiler.templates.ktrans_runtime.image_folder import read_image
from transpiler.templates.ktrans_runtime.onnx_metadata import CLASS_NAMES

keras = pytest.importorskip("keras")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS = EXAMPLES / "data" / "digits_png"


def onnx_weights(path):
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_evaluate_equals_keras_evaluate(tiny_run, tmp_path, capsys):
    kdl, data, run = tiny_run
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(data), "-o", str(out)]) == 0
    ours = json.loads(out.read_text())["logs"]
    printed = capsys.readouterr().out
    assert printed.startswith("1/1 - accuracy: ") and " - loss: " in printed

    _, graphs = load(str(kdl))
    graph = graphs["Tiny"]
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    weights = onnx_weights(run / "Tiny.trained.onnx")
    for ours_layer, layer in zip([g for g in graph.layers if g.weights], model.layers[::2]):
        layer.set_weights([weights[f"{ours_layer.name}/{w.name}"] for w in ours_layer.weights])
    compile_like(model, graph.trains["default"])
    x, y = tiny_data()
    expected = model.evaluate(
        x[100:], np.eye(3, dtype=np.float32)[y[100:]], batch_size=32, verbose=0, return_dict=True
    )
    assert set(ours) == set(expected) == {"loss", "accuracy"}
    for key in ours:
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-5, err_msg=key)


def test_evaluate_batches_do_not_change_the_result(tiny_run, tmp_path):
    _, data, run = tiny_run
    logs = []
    for size in (1, 7, 64):
        out = tmp_path / f"e{size}.json"
        assert main(["evaluate", str(run), "--data", str(data), "--batch-size", str(size),
                     "-o", str(out)]) == 0  # fmt: skip
        logs.append(json.loads(out.read_text())["logs"])
    for other in logs[1:]:
        for key in logs[0]:
            np.testing.assert_allclose(other[key], logs[0][key], rtol=1e-5)


IMAGE_MODEL = """
model Shapes {
    input image: float32[6, 5, 1]
    Flatten()
    Dense(3, activation=softmax)
}
train Shapes {
    loss = categorical_crossentropy
    metrics = [accuracy]
}
"""


SHAPES = ("circle", "square", "star")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A classifier trained by `ktrans train` on an image folder of the classes circle,
    square and star (6x5 grayscale PNG files): the run keeps their names in the trained
    model's metadata and in data.json."""
    from PIL import Image

    root = tmp_path_factory.mktemp("shapes")
    (root / "m.kdl").write_text(IMAGE_MODEL)
    rng = np.random.default_rng(1)
    for name in SHAPES:
        (root / "shapes" / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (6, 5), np.uint8)
            Image.fromarray(pixels, "L").save(root / "shapes" / name / f"{i}.png")
    run = root / "run"
    assert main(["train", str(root / "m.kdl"), "--data", str(root / "shapes"),
                 "--out", str(run), "--verbose", "0"]) == 0  # fmt: skip
    return run


def test_an_image_folder_run_keeps_its_class_names(image_run):
    import onnx

    model = onnx.load(str(image_run / "Shapes.trained.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[CLASS_NAMES]) == {"output": list(SHAPES)}
    info = json.loads((image_run / "data.json").read_text())
    assert info["kind"] == "images" and info["class_names"] == {"output": list(SHAPES)}
    assert info["settings"]["image_size"] == [6, 5] and info["rows"] == {"train": 30, "val": 0}
    assert (image_run / "report.html").is_file() and (image_run / "history.png").is_file()
    assert json.loads((image_run / "results.json").read_text())["seconds"] > 0


def test_predict_on_a_png_equals_run_on_the_array(image_run, tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "one.png"
    pixels = np.random.default_rng(2).integers(0, 256, (11, 9, 3), np.uint8)
    Image.fromarray(pixels, "RGB").save(png)  # colour and another size: converted, resized
    array = read_image(str(png), 1, (6, 5), "bilinear")[None]
    np.save(tmp_path / "image.npy", array)
    model = image_run / "Shapes.trained.onnx"
    assert main(["run", str(model), "--input", f"image={tmp_path / 'image.npy'}",
                 "-o", str(tmp_path / "ran.npz")]) == 0  # fmt: skip
    expected = np.load(tmp_path / "ran.npz")["output"][0]

    out = tmp_path / "p.json"
    assert main(["predict", str(image_run), "--input", str(png), "--top-k", "3",
                 "-o", str(out)]) == 0  # fmt: skip
    (row,) = json.loads(out.read_text())
    names = list(SHAPES)
    order = np.argsort(-expected)
    assert row["item"] == str(png)
    for rank, i in enumerate(order, 1):
        assert row[f"top{rank}_class"] == names[i]
        np.testing.assert_allclose(row[f"top{rank}_score"], expected[i], rtol=1e-6)
    capsys.readouterr()
    assert main(["predict", str(model), "--input", str(png)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["item", "top1_class", "top1_score"]
    assert table[1].split()[1] == names[order[0]]


def test_predict_uses_class_names_in_the_model_and_reads_folders(image_run, tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    (run / "data.json").unlink()  # the names now come from the model's metadata only
    model = run / "Shapes.trained.onnx"
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["x.png", "sub/y.jpg", "z.bmp"]):
        Image.fromarray(np.full((6, 5), 40 * i, np.uint8), "L").save(folder / name)
    (folder / "notes.txt").write_text("skip me")
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), "--input", str(folder), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "item,top1_class,top1_score"
    assert [line.split(",")[0] for line in lines[1:]] == [
        str(folder / "sub/y.jpg"),
        str(folder / "x.png"),
        str(folder / "z.bmp"),
    ]
    assert {line.split(",")[1] for line in lines[1:]} <= set(SHAPES)


def test_predict_skips_unreadable_images_once_and_counts_them(image_run, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((6, 5), 60 * i, np.uint8), "L").save(folder / f"{i}.png")
    (folder / "2.png").write_bytes(b"not a png")
    out = tmp_path / "p.json"
    assert main(["predict", str(image_run), "--input", str(folder), "-o", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("data: ")] == [
        f"data: skipped {folder / '2.png'}: cannot read it (cannot identify image file "
        f"'{folder / '2.png'}')",
        "data: 1 of 3 files skipped (unreadable)",
    ]
    assert [row["item"] for row in json.loads(out.read_text())] == [
        str(folder / "0.png"),
        str(folder / "1.png"),
    ]


def test_predict_with_nothing_readable_is_an_error(image_run, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["predict", str(image_run), "--input", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert sum(line.startswith(f"data: skipped {bad}: ") for line in lines) == 1
    assert f"error: nothing to predict: {bad} was skipped (unreadable)" in lines
    folder = tmp_path / "all_bad"
    folder.mkdir()
    for name in ("a.png", "b.jpg"):
        (folder / name).write_bytes(b"not an image")
    out = tmp_path / "p.csv"
    assert main(["predict", str(image_run), "--input", str(folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: nothing to predict: all 2 images of {folder} were skipped (unreadable)" in err
    assert err.count("data: skipped") == 2 and not out.exists()
    assert list(tmp_path.glob(".p.csv*")) == []  # no temporary left


def test_report_renders_again(tiny_run, tmp_path, capsys):
    _, _, run = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").is_file() and (copy / "history.png").is_file()
    assert main(["report", str(tmp_path)]) == 1
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "{run}", "--data", "{root}/none.npz"], "no such file or folder"),
        (["evaluate", "{root}", "--data", "{data}"], "is not a run folder"),
        (["predict", "{run}", "--input", "{root}/none.png"], "no such file or folder"),
        (["predict", "{run}", "--input", "{data}"], "expected an image, a folder of images"),
        (["evaluate", "{run}", "--data", "{bad}"], "rows shaped (2,), but the input"),
        (
            ["evaluate", "{run}", "--data", "{images}"],
            "digits_png: images feed an input shaped (height, width, channels), but the "
            "input 'features' takes float32 rows shaped (6,)",
        ),
    ],
)
def test_errors_are_one_line(tiny_run, tmp_path, capsys, args, message):
    kdl, data, run = tiny_run
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_test=np.zeros((4, 2), np.float32), y_test=np.zeros(4, np.int64))
    values = {"run": run, "root": tmp_path, "data": data, "bad": bad, "images": DIGITS}
    assert main([a.format(**values) for a in args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "internal error" not in err
