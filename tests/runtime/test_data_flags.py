"""The data flags of the generated script and `ktrans train` (--image-size, --color-mode,
--label-mode, --columns, --categorical): each sets its key of the train block's data
section, over the train block's own value; `ktrans train` passes them to the script."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from transpiler.cli import main
from transpiler.cli_train import script_command
from transpiler.templates.ktrans_runtime import cli

MODEL = """
model Shapes {
    input image: float32[6, 5, 1]
    Rescaling(1 / 255)
    Flatten()
    Dense(2, activation=softmax)
}
train Shapes {
    loss = categorical_crossentropy
    epochs = 1
    data {
        interpolation = nearest
    }
}
"""

TABLE = """
model Table {
    input features: float32[2]
    output kind = Dense(2, activation=softmax)
}
train Table {
    loss = sparse_categorical_crossentropy
    epochs = 1
}
"""


def parse(*argv) -> argparse.Namespace:
    return cli.parse_args(["--data", "d", *argv], "M", "default", {"epochs": 1,
                          "batch_size": 32, "validation_split": 0.0}, 0, ".")  # fmt: skip


def test_flags_become_data_section_keys():
    args = parse("--image-size", "6", "5", "--color-mode", "grayscale", "--label-mode", "int",
                 "--columns", "features=a", "--columns", "features=b", "--columns",
                 "kind=label", "--categorical", "label", "--interpolation", "nearest")  # fmt: skip
    assert cli.data_flags(args) == {
        "image_size": [6, 5],
        "color_mode": "grayscale",
        "interpolation": "nearest",
        "label_mode": "int",
        "columns": {"features": ["a", "b"], "kind": "label"},
        "categorical": ["label"],
    }
    assert cli.data_flags(parse()) == dict.fromkeys(
        ("image_size", "color_mode", "interpolation", "label_mode", "columns", "categorical")
    )
    assert parse("--columns", "features=*").columns == {"features": "*"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--columns", "features"], "expected NAME=COLUMN"),
        (["--columns", "features=*", "--columns", "features=a"], "takes '*'"),
        (["--image-size", "0", "4"], "--image-size: H and W must be at least 1"),
        (["--color-mode", "cmyk"], "invalid choice: 'cmyk'"),
        (["--interpolation", "bicubic"], "invalid choice: 'bicubic'"),
    ],
)
def test_bad_flags_are_usage_errors(argv, message, capfd):
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2 and message in capfd.readouterr().err


def test_ktrans_train_passes_the_data_flags():
    p = argparse.ArgumentParser()
    cli.add_data_flags(p)
    for flag in ("data", "out", "seed", "epochs", "batch_size", "validation_split"):
        p.add_argument(f"--{flag}")
    p.add_argument("--device")
    p.add_argument("--verbose")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-io-binding", action="store_true")
    flags = ["--image-size", "4", "3", "--color-mode", "rgb", "--columns", "x=a", "--columns"]
    args = p.parse_args(["--data", "d", "--out", "o", *flags, "x=b", "--categorical", "c",
                         "--interpolation", "nearest"])  # fmt: skip
    command = script_command("train_M.py", args)
    assert command[command.index("--image-size") :] == [
        "--image-size", "4", "3", "--color-mode", "rgb", "--interpolation", "nearest",
        "--columns", "x=a", "--columns", "x=b", "--categorical", "c",
    ]  # fmt: skip


def test_image_flags_join_the_data_section(tmp_path, capfd):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (12, 10, 3), np.uint8)
            Image.fromarray(pixels, "RGB").save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "m.kdl").write_text(MODEL)
    out = tmp_path / "run"
    argv = ["train", str(tmp_path / "m.kdl"), "--data", str(tmp_path / "imgs"), "--out",
            str(out), "--verbose", "0", "--color-mode", "grayscale", "--label-mode",
            "categorical"]  # fmt: skip
    assert main([*argv, "--image-size", "6", "5"]) == 0
    settings = json.loads((out / "data.json").read_text())["settings"]
    assert settings["image_size"] == [6, 5] and settings["color_mode"] == "grayscale"
    assert settings["label_mode"] == "categorical" and settings["interpolation"] == "nearest"
    capfd.readouterr()
    # a size the model does not take: one line, exit 1
    assert main([*argv, "--image-size", "3", "3"]) == 1
    err = capfd.readouterr().err
    assert "(3, 3)" in err and "Traceback" not in err


def test_csv_flags_map_columns(tmp_path, capfd):
    rows = ["u,v,label"] + [f"{i / 4},{-i / 8},{'yes' if i % 3 else 'no'}" for i in range(12)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "t.kdl").write_text(TABLE)
    out = tmp_path / "run"
    argv = ["train", str(tmp_path / "t.kdl"), "--data", str(tmp_path / "t.csv"), "--out",
            str(out), "--verbose", "0", "--columns", "features=u", "--columns", "features=v",
            "--columns", "kind=label", "--categorical", "label"]  # fmt: skip
    assert main(argv) == 0
    info = json.loads((out / "data.json").read_text())
    assert info["settings"]["columns"] == {"features": ["u", "v"], "kind": ["label"]}
    assert info["vocabularies"] == {"label": ["no", "yes"]}
    capfd.readouterr()
    # without the flags the table has no column 'features': the run says what it holds
    assert main(argv[:8]) == 1
    assert "features" in capfd.readouterr().err


def test_the_interpolation_choices_are_the_resizers():
    from transpiler.templates.ktrans_runtime.image_resize import INTERPOLATIONS

    assert cli.INTERPOLATION_CHOICES == INTERPOLATIONS
