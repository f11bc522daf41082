"""The PyTorch training scripts of every example: they compile, pass ruff (check and
format, at the project's settings and at ruff's defaults) and stay short, reading top to
bottom like a PyTorch example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from transpiler.emit.code.torch_bundle import render_script, script_settings
from transpiler.emit.code.train_script import pick_train
from transpiler.graph import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.kdl"))
LINE_BUDGET = 190  # lines, literals included (the onnxruntime script: 150, fewer literals)


def _scripts(tmp: Path) -> list[Path]:
    """Each example's script (the module file is torchmod's, and not needed here)."""
    out = []
    for path in EXAMPLES:
        _, graphs = load(str(path))
        for graph in graphs.values():
            if not graph.trains:
                continue
            files = {"script": f"train_{graph.name}.py", "module": f"{graph.name}.py"}
            files.update(init=f"{graph.name}.init.npz", keras=f"{graph.name}.keras.json")
            settings = script_settings(graph, pick_train(graph), 0, files, graph.name)
            script = tmp / files["script"]
            script.write_text(render_script(settings))
            out.append(script)
    return out


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    return _scripts(tmp_path_factory.mktemp("torch_scripts"))


def test_every_example_has_a_script(scripts):
    assert len(scripts) >= 8


def test_scripts_compile_and_stay_within_the_line_budget(scripts):
    for script in scripts:
        text = script.read_text()
        compile(text, str(script), "exec")
        lines = len(text.splitlines())
        assert lines <= LINE_BUDGET, f"{script.name}: {lines} lines"


@pytest.mark.parametrize("isolated", [False, True], ids=["project", "defaults"])
def test_scripts_pass_ruff(scripts, isolated):
    flags = ["--isolated"] if isolated else []
    paths = [str(s) for s in scripts]
    for command in (["check", *flags], ["format", "--check", *flags]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", *paths],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stdout + result.stderr
