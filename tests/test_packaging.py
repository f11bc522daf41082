"""The wheel carries the grammar, the templates and the bundle runtime, so a non-editable
install works anywhere: `codegen --target train` from an installed wheel writes bundles
that carry the runtime package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = sorted(p.name for p in (ROOT / "templates" / "ktrans_runtime").glob("*.py"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (path,) = out.glob("ktrans-*.whl")
    return path


def test_wheel_ships_grammar_templates_and_runtime(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "transpiler/grammar/kdl.lark" in names
    assert "transpiler/grammar/kdl_parser.json" in names  # the parse tables, no pickle
    assert any(n.startswith("transpiler/templates/") and n.endswith(".j2") for n in names)
    assert "transpiler/templates/torch_model.py.j2" in names
    assert "transpiler/templates/torch_layers/recurrent.py" in names  # codegen --target torch
    assert "transpiler/cli.py" in names
    for module in RUNTIME:
        assert f"transpiler/templates/ktrans_runtime/{module}" in names, module
    for init in (ROOT / "transpiler").rglob("__init__.py"):  # every package of the source
        assert init.relative_to(ROOT).as_posix() in names, f"pyproject.toml lacks {init.parent}"
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry
    assert "ktrans = transpiler.cli:run" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_installed_wheel_writes_bundles_with_the_runtime(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    kdl = tmp_path / "m.kdl"
    kdl.write_text(
        "model M { input x: float32[3]\n Dense(2, activation=softmax) }\n"
        "train M { loss = categorical_crossentropy\n optimizer = SGD(0.1) }\n"
    )
    code = (
        "import sys, transpiler, transpiler.cli\n"
        f"assert transpiler.__file__.startswith({str(target)!r}), transpiler.__file__\n"
        "sys.argv = ['ktrans', 'codegen', sys.argv[1], '--target', 'train', '-o', sys.argv[2]]\n"
        "transpiler.cli.run()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    bundle = tmp_path / "bundle"
    result = subprocess.run(
        [sys.executable, "-c", code, str(kdl), str(bundle)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    copied = sorted(p.name for p in (bundle / "ktrans_runtime").glob("*.py"))
    assert copied == RUNTIME
    for name in RUNTIME:
        ours = (ROOT / "templates" / "ktrans_runtime" / name).read_bytes()
        assert (bundle / "ktrans_runtime" / name).read_bytes() == ours, name
