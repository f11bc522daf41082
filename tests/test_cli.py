"""The command line: exit codes (0 ok, 1 bad input, 2 usage), messages, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from transpiler import __version__
from transpiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "tests/fixtures/valid/language_tour.kdl"
MLP = "model M {\n    input x: float32[8]\n    Dense(4, activation=relu)\n    Dense(2)\n}\n"


def write(tmp_path, text, name="m.kdl"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_ok(capsys):
    assert main(["check", str(TOUR)]) == 0
    out = capsys.readouterr().out
    assert "model Tour: ok" in out and "2,657 params" in out


def test_check_several_files_one_bad(tmp_path, capsys):
    good = write(tmp_path, MLP)
    bad = write(tmp_path, MLP.replace("Dense(2)", "Dense(0)"), "bad.kdl")
    assert main(["check", good, bad]) == 1
    captured = capsys.readouterr()
    assert "model M: ok" in captured.out
    assert f"{bad}:4:11: error: Dense: units expected a positive integer, got 0" in captured.err
    assert captured.err.rstrip().endswith("1 error")


def test_summary_sequential(tmp_path, capsys):
    assert main(["summary", write(tmp_path, MLP)]) == 0
    out = capsys.readouterr().out
    assert 'Model: "M"' in out
    assert "dense (Dense)" in out and "(None, 4)" in out and "36" in out
    assert "Connected to" not in out
    assert "Total params: 46 (184.00 B)" in out
    assert "Non-trainable params: 0 (0.00 B)" in out


def test_summary_functional_has_connected_to(capsys):
    assert main(["summary", str(TOUR), "--model", "Tour"]) == 0
    out = capsys.readouterr().out
    assert "Connected to" in out and "a (InputLayer)" in out
    assert "0 (shared)" in out


def test_summary_unknown_model(capsys):
    assert main(["summary", str(TOUR), "--model", "Tuor"]) == 1
    err = capsys.readouterr().err
    assert "has no model 'Tuor'" in err and "did you mean 'Tour'?" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert main([]) == 2


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "summary"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: ktrans " + command in capsys.readouterr().out


def test_missing_file_is_input_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.kdl")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_whole_process_no_traceback(tmp_path):
    bad = write(tmp_path, "model M {\n    input x: float32[8]\n    Dens(3)\n}\n")
    run = subprocess.run(
        [sys.executable, "-m", "transpiler", "check", bad], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "3:5: error: unknown layer 'Dens'" in run.stderr
    assert "did you mean 'Dense'?" in run.stderr
    assert " 3 |     Dens(3)\n   |     ^^^^^^^\n   = hint: did you mean 'Dense'?" in run.stderr


def test_check_does_not_import_heavy_modules(tmp_path):
    """`ktrans check` stays fast: onnx, onnxruntime, graphviz and numpy are not imported."""
    code = (
        f"import sys; from transpiler.cli import main; main(['check', {str(TOUR)!r}]); "
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'graphviz', 'numpy', 'jinja2') "
        "if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout + run.stderr
