"""`ktrans build` and `ktrans run` as a user meets them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from transpiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "examples/mnist_mlp.kdl"
TRIAGE = ROOT / "examples/ticket_triage.kdl"


def test_build_is_checked_deterministic_and_named(tmp_path, capsys):
    a, b, c = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    assert main(["build", str(MLP), "-o", str(a)]) == 0
    assert main(["build", str(MLP), "-o", str(b)]) == 0
    assert main(["build", str(MLP), "-o", str(c), "--seed", "1"]) == 0
    assert a.read_bytes() == b.read_bytes()  # the same seed: byte-identical files
    assert a.read_bytes() != c.read_bytes()
    model = onnx.load(str(a))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and model.opset_import[0].version == 21
    (inp,) = model.graph.input
    assert inp.name == "image"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    props = {p.key: p.value for p in model.metadata_props}
    assert props["ktrans.model"] == "MnistMLP" and "ktrans.version" in props
    names = {i.name for i in model.graph.initializer}
    assert {"dense/kernel", "dense_1/bias", "dense_2/kernel"} <= names
    assert "wrote" in capsys.readouterr().out


def test_dynamic_axes_and_several_outputs(tmp_path):
    out = tmp_path / "t.onnx"
    assert main(["build", str(TRIAGE), "-o", str(out)]) == 0
    model = onnx.load(str(out))
    title = next(i for i in model.graph.input if i.name == "title")
    dims = [d.dim_param or d.dim_value for d in title.type.tensor_type.shape.dim]
    assert dims[0] == "batch" and isinstance(dims[1], str)
    assert [o.name for o in model.graph.output] == ["priority", "department"]


@pytest.mark.parametrize("opset", [20, 23])
def test_other_supported_opsets_check(tmp_path, opset):
    out = tmp_path / "m.onnx"
    assert main(["build", str(MLP), "-o", str(out), "--opset", str(opset)]) == 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


def test_build_errors_write_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.kdl"
    bad.write_text("model M {\n    input x: float32[4]\n    Dense(-1)\n}\n")
    out = tmp_path / "m.onnx"
    assert main(["build", str(bad), "-o", str(out)]) == 1
    assert "3:11: error" in capsys.readouterr().err
    assert main(["build", str(MLP), "-o", str(tmp_path / "nope" / "m.onnx")]) == 1
    assert "no such directory" in capsys.readouterr().err
    assert main(["build", str(MLP), "-o", str(out), "--opset", "12"]) == 1
    assert "opset 12 is not supported" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]


def test_run_reports_and_writes_outputs(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    assert main(["build", str(MLP), "-o", str(model)]) == 0
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((3, 784), dtype=np.float32))
    out = tmp_path / "y.npz"
    assert main(["run", str(model), "--input", f"image={x}", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "output: float32[3, 10]" in text and "ran on CPU" in text
    y = np.load(out)["output"]
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)  # softmax rows
    # a .kdl model runs too, with the same weights for the same seed
    assert main(["run", str(MLP), "--input", f"image={x}", "-o", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out)["output"], y)


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (lambda p: f"imgae={p}", "the model has no input 'imgae'"),
        (lambda p: "image", "expected NAME=FILE.npy"),
    ],
)
def test_run_input_errors(tmp_path, capsys, feed, message):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 784), np.float32))
    assert main(["run", str(MLP), "--input", feed(x)]) == 1
    assert message in capsys.readouterr().err


def test_run_shape_and_dtype_errors(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 783), np.float32))
    assert main(["run", str(MLP), "--input", f"image={x}"]) == 1
    assert "input 'image': expected shape (?, 784), got (2, 783)" in capsys.readouterr().err
    np.save(x, np.array([["a"] * 784]))
    assert main(["run", str(MLP), "--input", f"image={x}"]) == 1
    assert "input 'image': expected float32" in capsys.readouterr().err


def test_run_cuda_is_an_error_not_a_cpu_run(tmp_path, capsys):
    import onnxruntime as ort

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 784), np.float32))
    code = main(["run", str(MLP), "--input", f"image={x}", "--device", "cuda"])
    if code == 0:
        assert "ran on CUDA" in capsys.readouterr().out
        return
    assert code == 1
    err = capsys.readouterr().err
    assert "--device cuda" in err
    assert "CUDAExecutionProvider" in ort.get_available_providers() or "no CUDA" in err
