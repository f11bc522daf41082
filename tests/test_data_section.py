"""The `data { }` section of train blocks: parsed, converted, checked against the model,
each problem at its value's line:col; the checked section lands in TrainConfig.data and
in the bundle's settings."""

from __future__ import annotations

import json

import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load

MODEL = """model Digits {
    input image: float32[8, 8, 1]
    Flatten()
    Dense(10, activation=softmax)
}
"""


def check(tmp_path, data: str, extra: str = "", loss: str = "sparse_categorical_crossentropy"):
    path = tmp_path / "d.kdl"
    path.write_text(
        MODEL + f"train Digits {{\n    loss = {loss}\n{extra}    data {{ {data} }}\n}}\n"
    )
    _, graphs = load(str(path))
    return graphs["Digits"].trains["default"].data


def error(tmp_path, data: str, **kwargs) -> str:
    with pytest.raises(KdlErrors) as e:
        check(tmp_path, data, **kwargs)
    return e.value.render()


def test_image_settings(tmp_path):
    data = check(
        tmp_path,
        "image_size = (8, 8)  color_mode = grayscale  validation_split = 0.2  seed = 1337\n"
        "        label_mode = int  interpolation = nearest  class_names = [a, b]",
    )
    assert data == {
        "image_size": [8, 8],
        "color_mode": "grayscale",
        "validation_split": 0.2,
        "seed": 1337,
        "label_mode": "int",
        "interpolation": "nearest",
        "class_names": ["a", "b"],
    }
    assert check(tmp_path, "image_size = 8") == {"image_size": [8, 8]}


def test_csv_settings(tmp_path):
    data = check(
        tmp_path,
        'columns = { image: "*", output: "digit" }  categorical = ["digit"]  delimiter = ";"',
    )
    assert data == {
        "columns": {"image": "*", "output": "digit"},
        "categorical": ["digit"],
        "delimiter": ";",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "image_size = (28, 28)",
            "8:25: error: image_size (28, 28) does not fit the input 'image'",
        ),
        (
            "color_mode = rgb",
            "8:25: error: color_mode rgb gives 3 channel(s); the input 'image' takes 1",
        ),
        (
            "label_mode = categorical",
            "label_mode categorical does not fit the loss sparse_categorical_crossentropy",
        ),
        ("color_mode = cmyk", "color_mode expected one of grayscale, rgb, rgba; got cmyk"),
        ("interpolation = bicubic", "interpolation 'bicubic' is not supported by ktrans"),
        ("validation_split = 1.5", "8:31: error: validation_split expected a number in (0, 1)"),
        ("subset = training", "subset needs a validation_split"),
        ("image_sise = 8", "8:12: error: unknown data setting 'image_sise'"),
        ("seed = 1 seed = 2", "'seed' is set twice in the data section"),
        (
            "columns = { pixels: x }",
            "8:24: error: columns maps 'pixels', which is not an input or output",
        ),
        ('delimiter = ";;"', "delimiter expected one character"),
    ],
)
def test_problems_at_their_values(tmp_path, data, message):
    assert message in error(tmp_path, data)


def test_one_split_only_and_known_sections(tmp_path):
    both = error(tmp_path, "validation_split = 0.2", extra="    validation_split = 0.1\n")
    assert "the train block has a validation_split too: say it once" in both
    path = tmp_path / "s.kdl"
    path.write_text(MODEL + "train Digits {\n    loss = mse\n    dataset { seed = 1 }\n}\n")
    with pytest.raises(KdlErrors) as e:
        load(str(path))
    assert "8:5: error: unknown section 'dataset' in a train block" in e.value.render()


def test_binary_label_mode_follows_the_loss(tmp_path):
    path = tmp_path / "b.kdl"
    path.write_text(
        MODEL.replace("Dense(10, activation=softmax)", "Dense(1, activation=sigmoid)")
        + "train Digits {\n    loss = binary_crossentropy\n    data { label_mode = binary }\n}\n"
    )
    _, graphs = load(str(path))
    assert graphs["Digits"].trains["default"].data == {"label_mode": "binary"}


def test_the_bundle_carries_the_section(tmp_path):
    from transpiler.cli import main

    path = tmp_path / "m.kdl"
    path.write_text(MODEL + "train Digits {\n    loss = mse\n    data { seed = 7 }\n}\n")
    assert main(["codegen", str(path), "--target", "train", "-o", str(tmp_path / "b")]) == 0
    settings = json.loads((tmp_path / "b" / "Digits.eval.json").read_text())
    assert settings["data"] == {"seed": 7}
    assert (tmp_path / "b" / "Digits.svg").read_text().lstrip().startswith("<?xml")
    assert "Total params: 650" in (tmp_path / "b" / "Digits.summary.txt").read_text()
