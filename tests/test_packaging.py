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


def _requirement_name(spec: str) -> str:
    """`torch==2.13.0; sys_platform == 'linux'` -> `torch` (PEP 508's name, normalised)."""
    import re

    return re.split(r"[\s<>=!~;\[(]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _make_rules(text: str) -> dict[str, list[str]]:
    """The Makefile's rules: target line -> its recipe lines (tab-indented)."""
    rules: dict[str, list[str]] = {}
    current = None
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("\t") and current is not None:
            rules[current].append(line.strip())
        elif ":" in line and not line.startswith(("#", " ")) and ":=" not in line:
            current = line.split(":", 1)[0].strip()
            rules[current] = [line.split(":", 1)[1].strip()]  # the prerequisites first
        elif not line.strip():
            current = None
    return rules


def test_the_demo_installs_the_data_extra_without_torch_or_keras():
    """`make demo` installs what a user needs (issue 10 §4): the core and the `data`
    extra, neither of which holds torch or Keras (they are `make test`'s, in `dev`)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    heavy = {"torch", "keras", "tensorflow", "jax"}
    for what, specs in (("dependencies", project["dependencies"]),
                        ("the data extra", project["optional-dependencies"]["data"])):  # fmt: skip
        names = {_requirement_name(s) for s in specs}
        assert not names & heavy, f"{what} holds {sorted(names & heavy)}"
    assert {"torch", "keras"} <= {
        _requirement_name(s) for s in project["optional-dependencies"]["dev"]
    }

    rules = _make_rules((ROOT / "Makefile").read_text())
    assert (
        "$(DEMO_STAMP)" in rules["demo"][0].split() and "$(STAMP)" not in rules["demo"][0].split()
    )
    installs = [line for line in rules["$(DEMO_STAMP)"] if "pip install" in line]
    assert installs == ["$(DEMO_BIN)/python -m pip install -q -e '.[data]'"], installs
    demo = " ".join(rules["demo"][1:])
    assert "$(BIN)/" not in demo.replace("$(DEMO_BIN)/", "")  # the demo runs the demo venv
    assert "[dev]" not in demo and "[dev]" not in " ".join(rules["$(DEMO_STAMP)"])
