"""`--device cuda` where CUDA cannot run: one line naming what is missing, no log wall."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from transpiler.templates.ktrans_runtime import cuda

ROOT = Path(__file__).resolve().parents[2]


def fake_ort(providers, preload_prints=""):
    def preload_dlls():
        print(preload_prints, end="")

    return SimpleNamespace(
        __version__="9.9.9",
        get_available_providers=lambda: providers,
        preload_dlls=preload_dlls,
        set_default_logger_severity=lambda level: None,
    )


def test_no_cuda_provider_says_install_onnxruntime_gpu():
    problem = cuda.cuda_problem(fake_ort(["CPUExecutionProvider"]))
    assert problem.startswith("this onnxruntime (9.9.9) has no CUDA provider")
    assert "onnxruntime-gpu" in problem


def test_missing_libraries_are_named_with_the_versions_needed(monkeypatch):
    monkeypatch.setattr(cuda, "has_driver", lambda: True)
    monkeypatch.setattr(cuda, "required_versions", lambda ort: ("13", "9"))
    printed = (
        "Failed to load libcublasLt.so.13: cannot open shared object file\n"
        "Failed to load libcurand.so.10: cannot open shared object file\n"
        "Please follow https://onnxruntime.ai/docs/install/ to install CUDA.\n"
    )
    problem = cuda.cuda_problem(fake_ort(["CUDAExecutionProvider"], printed))
    assert problem == (
        "onnxruntime-gpu 9.9.9 needs CUDA 13.x and cuDNN 9.x; "
        "not found: libcublasLt.so.13, libcurand.so.10"
    )


def test_no_driver_is_said_first(monkeypatch):
    monkeypatch.setattr(cuda, "has_driver", lambda: False)
    monkeypatch.setattr(cuda, "required_versions", lambda ort: ("12", "9"))
    problem = cuda.cuda_problem(fake_ort(["CUDAExecutionProvider"]))
    assert problem.startswith("no NVIDIA driver (libcuda.so.1 not found)")
    assert "CUDA 12.x and cuDNN 9.x" in problem


def test_everything_loads_is_no_problem(monkeypatch, capsys):
    monkeypatch.setattr(cuda, "has_driver", lambda: True)
    assert cuda.cuda_problem(fake_ort(["CUDAExecutionProvider"], "")) is None
    assert capsys.readouterr().out == ""


def test_a_cpu_fallback_is_named():
    ort = fake_ort([])
    assert cuda.fell_back(True, ["CUDAExecutionProvider"], ort) is None
    assert cuda.fell_back(False, ["CPUExecutionProvider"], ort) is None
    assert "fell back to the CPU" in cuda.fell_back(True, ["CPUExecutionProvider"], ort)


def _cuda_usable() -> bool:
    """CUDA libraries load and a session really runs on the GPU (tests/conftest.py hides
    GPUs unless CUDA_VISIBLE_DEVICES is set, as bench/gpu_check.py sets it)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if cuda.cuda_problem(ort) is not None:
        return False
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"])],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CUDAExecutionProvider"]
        )
    except Exception:
        return False
    return session.get_providers()[0] == "CUDAExecutionProvider"


@pytest.mark.gpu
@pytest.mark.parametrize("example", ["mnist_cnn", "toy_resnet", "addition_rnn"])
def test_cuda_outputs_equal_the_cpu(example, tmp_path):
    """The CUDA provider computes what the CPU computes (1e-4 relative), through the
    same session code `ktrans run` uses."""
    if not _cuda_usable():
        pytest.skip("no usable CUDA GPU")
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load_one
    from transpiler.runtime.session import create_session

    _, graph = load_one(str(ROOT / "examples" / f"{example}.kdl"))
    model = build_model(graph)
    rng = np.random.default_rng(0)
    feeds = {}
    for value in graph.inputs:
        shape = [4 if not isinstance(d, int) else d for d in value.type.shape]
        if value.type.dtype.startswith("float"):
            feeds[value.name] = rng.random(shape).astype(value.type.dtype)
        else:
            feeds[value.name] = rng.integers(0, 2, shape).astype(value.type.dtype)
    cpu = create_session(model, "cpu").run(None, feeds)
    gpu = create_session(model, "cuda").run(None, feeds)
    for expected, got in zip(cpu, gpu):
        scale = float(np.abs(expected).max()) or 1.0
        assert float(np.abs(got - expected).max()) / scale < 1e-4


def test_ktrans_run_on_a_machine_without_cuda_prints_one_error(tmp_path):
    if _cuda_usable():
        pytest.skip("CUDA is usable here: tests/test_cli_build.py runs it")
    model = tmp_path / "m.onnx"
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 784), np.float32))
    ktrans = [sys.executable, "-m", "transpiler"]
    subprocess.run(
        [*ktrans, "build", str(ROOT / "examples/mnist_mlp.kdl"), "-o", str(model)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [*ktrans, "run", str(model), "--input", f"image={x}", "--device", "cuda"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: --device cuda: "), result.stderr
    assert "needs CUDA" in lines[0] or "no CUDA provider" in lines[0]
    assert "Failed to load" not in result.stderr
    assert "onnxruntime:Default" not in result.stderr
    assert len(lines) <= 2, result.stderr
