"""The rules of the bundle runtime (COMMON: stdlib + numpy at import time, frameworks
imported lazily, relative imports, never ktrans itself, small modules), and its
onnxruntime engine on its own."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import transpiler.templates.ktrans_runtime as kt
from transpiler.emit.code.train_script import pick_train, write_training_bundle
from transpiler.graph import load
from transpiler.templates.ktrans_runtime.errors import TrainingError

PACKAGE = Path(kt.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
AT_IMPORT = set(sys.stdlib_module_names) | {"numpy"}


def _top_level_imports(tree: ast.Module):
    """Imports that run when the module is imported (not inside functions)."""
    for node in tree.body:
        for inner in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                yield inner


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_rules(path):
    source = path.read_text()
    tree = ast.parse(source)
    assert len(source.splitlines()) <= 500, "a module over 500 lines"
    assert ast.get_docstring(tree), "a module says what it is for"
    for node in _top_level_imports(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            continue  # from .files import ...
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        for name in names:
            assert name.split(".")[0] in AT_IMPORT, f"imports {name} at import time"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            assert not node.module.startswith(("transpiler", "ktrans_runtime")), node.module
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith(("transpiler", "ktrans_runtime")) for a in node.names)


def test_the_docstring_lists_every_module():
    listed = {line.split()[0] for line in kt.__doc__.splitlines() if line.startswith("    ")}
    for path in MODULES:
        if path.stem != "__init__":
            assert path.stem in listed, f"{path.stem} is missing from __init__'s list"


def test_imports_need_only_numpy_and_the_package_none():
    """Every module imports with onnxruntime and torch missing, and the package itself
    loads nothing (a script installs its signal handling before numpy loads)."""
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None\n"
        "sys.modules['torch'] = None\n"
        f"sys.path.insert(0, {str(PACKAGE.parent)!r})\n"
        "import ktrans_runtime as kt\n"
        "assert 'numpy' not in sys.modules, 'the package imported numpy'\n"
        f"for name in {[p.stem for p in MODULES if p.stem != '__init__']!r}:\n"
        "    getattr(kt, name)\n"
        "assert not any(m.startswith('transpiler') for m in sys.modules)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


# ------------------------------------------------------------------ the onnxruntime engine

TINY = """
model E { input x: float32[4]
    Dense(5, activation=relu)
    Dense(2, activation=softmax) }
train E { loss = categorical_crossentropy
    optimizer = SGD(learning_rate=0.1, use_ema=true, ema_momentum=0.5)
    batch_size = 4 }
"""
NAMES = {"step": "ktrans:step", "learning_rate": "ktrans:lr", "loss": "ktrans:loss"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("engine")
    (tmp / "e.kdl").write_text(TINY)
    _, graphs = load(str(tmp / "e.kdl"))
    return write_training_bundle(graphs["E"], pick_train(graphs["E"]), tmp / "bundle")[0].parent


def files(name: str = "E") -> dict:
    return {
        "train": f"{name}.train.onnx",
        "eval": f"{name}.eval.onnx",
        "inference": f"{name}.onnx",
        "init": f"{name}.init.npz",
        "offsets": f"{name}.offsets.json",
    }


@pytest.mark.parametrize("io_binding", [True, False])
def test_ort_engine_interface(bundle, tmp_path, io_binding):
    engine = kt.ort_engine.OrtEngine(bundle, files(), NAMES, "cpu", io_binding)
    with np.load(bundle / "E.init.npz") as init:
        initial = {k: init[k] for k in init.files}
    assert engine.shapes == {k: v.shape for k, v in initial.items()}
    assert set(engine.weights()) == {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"}
    engine.export(tmp_path / "same.onnx", engine.weights())  # unchanged weights: same bytes
    assert (tmp_path / "same.onnx").read_bytes() == (bundle / "E.onnx").read_bytes()
    digest = hashlib.sha256((bundle / "E.train.onnx").read_bytes()).hexdigest()
    assert engine.fingerprint() == digest
    assert engine.describe() == {"engine": "onnxruntime", "device": "cpu", "io_binding": io_binding}
    batch = {
        "x": np.ones((3, 4), np.float32),
        "target:output": np.eye(2, dtype=np.float32)[[0, 1, 0]],
    }
    values = engine.step(batch, 0, 0.1)
    assert set(values) >= {"ktrans:loss"} and np.isfinite(values["ktrans:loss"])
    assert all(np.array_equal(engine.state()[k], v) for k, v in initial.items())  # not yet
    engine.commit()
    after = engine.state()
    assert not np.array_equal(after["dense/kernel"], initial["dense/kernel"])
    averages = engine.moving_averages()  # use_ema: the average slots of the parameters
    assert set(averages) == set(engine.weights())
    assert all(np.array_equal(averages[k], after[f"slot:{k}:average"]) for k in averages)
    engine.load({"dense/bias": np.full(5, 2.0, np.float32)})
    assert engine.state()["dense/bias"].tolist() == [2.0] * 5


def _broken_copy(bundle: Path, tmp_path: Path, name: str, content: bytes) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    (copy / name).write_bytes(content)
    return copy


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("E.train.onnx", b"not onnx", "cannot load"),
        ("E.offsets.json", b"{", "cannot read"),
        ("E.offsets.json", json.dumps({"dense/kernel": [0, 80]}).encode(), "does not match"),
        ("E.init.npz", b"", "cannot read"),
    ],
)
def test_ort_engine_says_what_is_wrong_with_a_bundle(bundle, tmp_path, name, content, fragment):
    broken = _broken_copy(bundle, tmp_path, name, content)
    with pytest.raises(TrainingError, match=fragment):
        kt.ort_engine.OrtEngine(broken, files(), NAMES)


def test_without_onnxruntime_the_engine_is_a_one_line_error(bundle):
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None\n"
        f"sys.path.insert(0, {str(PACKAGE.parent)!r})\n"
        "import ktrans_runtime as kt\n"
        "try:\n"
        f"    kt.ort_engine.OrtEngine({str(bundle)!r}, {files()!r}, {NAMES!r})\n"
        "except kt.errors.TrainingError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == (
        "onnxruntime is not installed: pip install onnxruntime (onnxruntime-gpu for --device cuda)"
    ), result.stderr
