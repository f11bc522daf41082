"""`ktrans train --engine torch [--nproc N]` and `ktrans codegen --target torch` with a
train block; without PyTorch, --engine torch is one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.torch_train.bundles import environment, tiny, tiny_data

torch = pytest.importorskip("torch")


def ktrans(*args, hide_torch: bool = False, timeout: int = 240):
    """ktrans in a fresh Python; `hide_torch` makes `import torch` fail there."""
    hide = "sys.modules['torch'] = None\n" if hide_torch else ""
    code = f"import sys\n{hide}from transpiler.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tiny_kdl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch_cli")
    kdl = tmp / "tiny.kdl"
    kdl.write_text(tiny("Cli", epochs=1))
    return kdl, tiny_data(tmp / "data.npz")


def test_without_torch_the_engine_is_a_one_line_error(tiny_kdl, tmp_path):
    kdl, data = tiny_kdl
    result = ktrans("train", kdl, "--data", data, "--engine", "torch", "--out", tmp_path,
                    hide_torch=True)  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "--engine torch needs PyTorch" in lines[0] and "ktrans[torch]" in lines[0]
    assert not (tmp_path / "train_Cli.py").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nproc", "2"], "--nproc needs --engine torch"),
        (["--precision", "bfloat16"], "--precision needs --engine torch"),
        (["--engine", "torch", "--nproc", "0"], "--nproc must be at least 1"),
    ],
)
def test_engine_flags_are_checked(tiny_kdl, tmp_path, flags, message):
    kdl, data = tiny_kdl
    result = ktrans("train", kdl, "--data", data, "--out", tmp_path, *flags)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_codegen_torch_writes_the_training_bundle(tiny_kdl, tmp_path):
    kdl, _ = tiny_kdl
    result = ktrans("codegen", kdl, "--target", "torch", "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "b").iterdir()}
    assert {"train_Cli.py", "Cli.py", "Cli.init.npz", "Cli.onnx", "ktrans_runtime"} <= names
    assert "run: python" in result.stdout


def test_ktrans_train_with_torch_in_two_processes(tiny_kdl, tmp_path):
    """The same command line with --nproc 2 runs the script under torchrun."""
    kdl, data = tiny_kdl
    out = tmp_path / "run"
    result = ktrans("train", kdl, "--data", data, "--engine", "torch", "--nproc", "2",
                    "--out", out, "--verbose", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["engine"] == "torch" and results["processes"] == 2
    assert (out / "Cli.trained.onnx").is_file()


def test_a_torch_run_folder_evaluates_predicts_and_reports_as_an_onnxruntime_one(
    tiny_kdl, tmp_path
):
    """The PyTorch bundle writes what evaluate, predict and report read (the evaluation
    model and settings, the diagram, the summary): `ktrans evaluate` on its run folder
    gives the script's own test metrics, the report shows the model."""
    import numpy as np

    kdl, data = tiny_kdl
    out = tmp_path / "run"
    result = ktrans("train", kdl, "--data", data, "--engine", "torch", "--out", out,
                    "--verbose", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    tested = json.loads((out / "results.json").read_text())["test"]
    scored = ktrans("evaluate", out, "--data", data, "-o", tmp_path / "e.json")
    assert scored.returncode == 0, scored.stderr
    logs = json.loads((tmp_path / "e.json").read_text())["logs"]
    assert logs.keys() == tested.keys()
    for key, value in tested.items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-5, err_msg=key)
    with np.load(data) as arrays:
        np.save(tmp_path / "x.npy", arrays["x_test"][:3])
    predicted = ktrans("predict", out, "--input", tmp_path / "x.npy", "-o", tmp_path / "p.csv")
    assert predicted.returncode == 0, predicted.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 4  # header + 3 rows
    page = (out / "report.html").read_text()
    assert "data:image/svg+xml" in page and "Total params" in page  # the diagram, inlined


def _failures(**exitcodes):
    from types import SimpleNamespace

    return {int(rank[1:]): SimpleNamespace(exitcode=code) for rank, code in exitcodes.items()}


@pytest.mark.parametrize(
    ("exitcodes", "named"),
    [
        # rank 1 killed; rank 0 lost it (exit 1) or was stopped by torchrun (SIGTERM)
        ({"r0": 1, "r1": -9}, "process 1 of 2 was killed by SIGKILL;"),
        ({"r0": -15, "r1": -9}, "process 1 of 2 was killed by SIGKILL;"),
        # rank 1 failed on its own; torchrun stopped rank 0
        ({"r0": -15, "r1": 70}, "process 1 of 2 exited with code 70;"),
        ({"r0": -15, "r1": -15}, "process 0 of 2 was killed by SIGTERM, process 1 of 2 "),
    ],
)
def test_the_launchers_line_names_the_process_that_ended_the_job(tmp_path, exitcodes, named):
    from types import SimpleNamespace

    from transpiler.cli_train_torch import failure_line

    out = tmp_path / "run"
    args = SimpleNamespace(nproc_per_node="2", training_script_args=["--out", str(out)])
    line = failure_line(_failures(**exitcodes), args)
    assert line.startswith(f"error: {named}"), line
    assert line.endswith("no checkpoint had been saved yet: run it again")
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"")
    line = failure_line(_failures(**exitcodes), args)
    assert line.endswith(
        f"the last checkpoint ({out / 'checkpoint.npz'}) is intact: continue with --resume"
    )


def test_activity_regularizer_is_refused_at_its_layer(tmp_path):
    """The torch engine does not apply activity_regularizer yet: the error points at
    the layer that has one, and names it."""
    kdl = tmp_path / "reg.kdl"
    kdl.write_text(
        tiny("Reg", epochs=1).replace(
            "Dense(16, activation=tanh)",
            "Dense(16, activation=tanh, activity_regularizer=l2(0.01))",
        )
    )
    result = ktrans("codegen", kdl, "--target", "torch", "-o", tmp_path / "b")
    assert result.returncode == 1
    assert f"{kdl}:4:5: error: cannot write a PyTorch training script" in result.stderr
    assert "(layer 'dense')" in result.stderr and "--engine onnxruntime" in result.stderr
    assert not (tmp_path / "b").exists()
