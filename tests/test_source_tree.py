"""ktrans runs from a bare source tree (PYTHONPATH, no install), as on a GPU machine
that gets a copy of the repository: the grammar, templates and bundle runtime load from
the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_copied_source_tree_checks_and_writes_bundles(tmp_path):
    tree = tmp_path / "tree"
    for part in ("transpiler", "grammar", "templates"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    probe = (
        "import transpiler.parser.grammar as g, transpiler.templates as t, "
        "transpiler.templates.ktrans_runtime.cuda as c;"
        "print(g.__file__); print(t.__path__[0]); print(c.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(tree)) for line in where.stdout.split()), where.stdout
    model = ROOT / "examples" / "mnist_mlp.kdl"
    command = [sys.executable, "-m", "transpiler"]
    check = subprocess.run(
        [*command, "check", str(model)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0 and ": ok," in check.stdout, check.stderr
    bundle = tmp_path / "bundle"
    codegen = [*command, "codegen", str(model), "--target", "train", "-o", str(bundle)]
    result = subprocess.run(codegen, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (bundle / "train_MnistMLP.py").is_file()
