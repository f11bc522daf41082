"""`ktrans import` on the command line: the files it writes, `ktrans build --weights`
with the weights it writes or with the .keras file itself, exit codes, and no file
written when it fails."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.cli import main

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small CNN with a preprocessing front, saved with randomized weights."""
    from tests.importer.roundtrip import randomize

    directory = tmp_path_factory.mktemp("cli")
    x = keras.Input((8, 8, 3), dtype="uint8", name="image")
    y = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(x)
    y = layers.Conv2D(4, 3, name="conv")(y)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    model = keras.Model(x, layers.Dense(3, name="head")(y), name="Tiny")
    randomize(model)
    path = directory / "tiny.keras"
    model.save(str(path))
    return model, path


def run_onnx(path, feeds):
    from transpiler.runtime.session import create_session

    (out,) = create_session(str(path)).run(None, feeds)
    return out


def test_import_then_build_with_the_weights_gives_keras_outputs(saved, tmp_path, capsys):
    model, path = saved
    kdl, npz = tmp_path / "tiny.kdl", tmp_path / "tiny.npz"
    assert main(["import", str(path), "-o", str(kdl), "--weights-out", str(npz)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {kdl} (model Tiny: 5 layers, 143 params)" in out
    assert f"wrote {npz} (8 arrays," in out
    x = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3)).astype(np.uint8)
    expected = model.predict(x, verbose=0)
    for weights in (npz, path):  # the .npz it wrote, and the .keras file itself
        onnx_path = tmp_path / "tiny.onnx"
        assert main(["build", str(kdl), "--weights", str(weights), "-o", str(onnx_path)]) == 0
        np.testing.assert_allclose(
            run_onnx(onnx_path, {"image": x}), expected, rtol=1e-4, atol=1e-5
        )


def test_default_output_name(saved, tmp_path, monkeypatch):
    _, path = saved
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(path)]) == 0
    assert (tmp_path / "tiny.kdl").read_text().startswith("# Imported by `ktrans import`")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["-o", "model.py"], "the output is a .kdl file"),
        (["--weights-out", "w.h5"], "--weights-out writes an .npz"),
    ],
)
def test_bad_output_names(saved, tmp_path, capsys, extra, fragment):
    _, path = saved
    args = ["import", str(path), *[str(tmp_path / e) if "." in e else e for e in extra]]
    assert main(args) == 1
    assert fragment in capsys.readouterr().err


def test_a_failed_import_writes_nothing(tmp_path, capsys):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Lambda(lambda t: t + 1, name="plus_one")(x))
    source = tmp_path / "lambda.keras"
    model.save(str(source))
    out = tmp_path / "lambda.kdl"
    assert (
        main(["import", str(source), "-o", str(out), "--weights-out", str(tmp_path / "w.npz")]) == 1
    )
    err = capsys.readouterr().err
    assert "lambda.keras: layer 'plus_one' (Lambda), config key 'function'" in err
    assert "hint:" in err and not out.exists() and not (tmp_path / "w.npz").exists()


def test_a_json_config_has_no_weights(saved, tmp_path, capsys):
    model, _ = saved
    source = tmp_path / "tiny.json"
    source.write_text(model.to_json())
    assert main(["import", str(source), "-o", str(tmp_path / "t.kdl")]) == 0
    assert (
        main(
            [
                "import",
                str(source),
                "-o",
                str(tmp_path / "t.kdl"),
                "--weights-out",
                str(tmp_path / "w.npz"),
            ]
        )
        == 1
    )
    assert "a JSON config holds no weights" in capsys.readouterr().err


def test_help_lists_import(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "import" in capsys.readouterr().out


def test_build_weights_from_a_keras_file_for_a_hand_written_model(saved, tmp_path):
    """Layer names that are not Keras's: the .keras file's weights are matched as a
    .weights.h5 file's are (by class and position)."""
    model, path = saved
    kdl = tmp_path / "mine.kdl"
    kdl.write_text(
        "model Mine {\n    input image: uint8[8, 8, 3]\n    Rescaling(1 / 127.5, offset=-1)\n"
        "    Conv2D(4, 3)\n    BatchNormalization()\n    GlobalAveragePooling2D()\n"
        "    Dense(3)\n}\n"
    )
    onnx_path = tmp_path / "mine.onnx"
    assert main(["build", str(kdl), "--weights", str(path), "-o", str(onnx_path)]) == 0
    x = np.random.default_rng(3).integers(0, 256, size=(2, 8, 8, 3)).astype(np.uint8)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(run_onnx(onnx_path, {"image": x}), expected, rtol=1e-4, atol=1e-5)
