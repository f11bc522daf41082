"""Fuzzing the binary inputs (issue 9, proof): `.onnx` for viz and run, `.npz` and `.h5`
for `build --weights`, `.npy` for `run --input`. Whatever the damage, ktrans exits 0 or
1, never with a traceback or an internal error, within a time bound.

Inputs are valid files, mutated (bytes flipped, inserted, cut), and files built with
hostile structure (wrong shapes and dtypes, strings, links, external storage, damaged
headers). Every example runs in a separate long-lived worker process (cli_worker.py), so a
native crash would fail the test rather than end pytest. Hypothesis is derandomized: the
same examples run every time.
"""

from __future__ import annotations

import io
import json
import select
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.capped import ROOT, GiB

EXAMPLES = 25
SECONDS = 30  # per example: far above the ~0.1 s each takes
MODEL = "model M {\n    input x: float32[4]\n    Dense(2)\n}\n"
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Worker:
    def __init__(self) -> None:
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/security/cli_worker.py"), str(4 * GiB)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip

    def ask(self, argv: list[str]) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self.process.wait()
            self.process = None
            verdict = "took longer than" if not ready else "crashed the worker within"
            pytest.fail(f"ktrans {' '.join(argv)} {verdict} {SECONDS} s")
        return json.loads(line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The model files every example shares: m.kdl (Dense(2) on float32[4]), m.onnx (its
    ONNX), x.npy (a valid input)."""
    from transpiler.cli import main

    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "m.kdl").write_text(MODEL)
    assert main(["build", str(tmp / "m.kdl"), "-o", str(tmp / "m.onnx")]) == 0
    np.save(tmp / "x.npy", np.ones((3, 4), np.float32))
    return tmp


def _ok(reply: dict, argv: list[str], blob: bytes) -> None:
    """Exit 0 or 1 and no traceback; a failure shows the input's bytes (hex) to replay."""
    printed = reply["out"] + reply["err"]
    failed = reply["code"] not in (0, 1) or "Traceback" in printed or "internal error" in printed
    assert not failed, f"ktrans {' '.join(argv)}: {reply}\ninput (hex): {blob.hex()}"


# ---------------------------------------------------------------- mutations


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with 1 to 4 edits: a byte changed, bytes inserted, a range cut, truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(out) - 1)))
        kind = draw(st.sampled_from(["flip", "insert", "cut", "truncate", "max"]))
        if kind == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "cut":
            del out[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del out[at:]
        elif out:  # a length or count field pushed to its maximum
            out[at : at + 4] = b"\xff\xff\xff\x7f"
    return bytes(out)


def _onnx_bytes(folder: Path) -> bytes:
    return (folder / "m.onnx").read_bytes()


# ---------------------------------------------------------------- .onnx: viz and run


@FUZZ
@given(data=st.data())
def test_mutated_onnx(worker, folder, data):
    blob = data.draw(mutated(_onnx_bytes(folder)))
    path = folder / "f.onnx"
    path.write_bytes(blob)
    for argv in (
        ["viz", str(path), "-o", str(folder / "f.dot")],
        ["run", str(path), "--input", f"x={folder / 'x.npy'}"],
    ):
        _ok(worker.ask(argv), argv, blob)


# ---------------------------------------------------------------- .npz weights

DTYPES = ["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "<U3", "|S2", "<c8", "<f2", "|V4"]
SHAPES = [(4, 2), (2,), (), (0,), (2, 4), (4, 2, 1), (1,), (100_000,)]
NAMES = ["dense/kernel", "dense/bias", "dense/other", "x", "../x", "dense/kernel/0"]


def _npy(dtype: str, shape: tuple) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(shape, dtype=np.dtype(dtype)), allow_pickle=False)
    return buffer.getvalue()


@st.composite
def npz_files(draw) -> bytes:
    members = {"dense/kernel": ("<f4", (4, 2)), "dense/bias": ("<f4", (2,))}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(NAMES))
        members[name] = (draw(st.sampled_from(DTYPES)), draw(st.sampled_from(SHAPES)))
    if draw(st.booleans()):
        members.pop(draw(st.sampled_from(sorted(members))))
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, (dtype, shape) in members.items():
            suffix = draw(st.sampled_from([".npy", ".npy", ".npy", ".txt", ""]))
            archive.writestr(name + suffix, _npy(dtype, shape))
    blob = buffer.getvalue()
    return draw(mutated(blob)) if draw(st.booleans()) else blob


@FUZZ
@given(blob=npz_files())
def test_hostile_npz_weights(worker, folder, blob):
    path = folder / "w.npz"
    path.write_bytes(blob)
    argv = ["build", str(folder / "m.kdl"), "--weights", str(path), "-o", str(folder / "w.onnx")]
    _ok(worker.ask(argv), argv, blob)


# ---------------------------------------------------------------- .h5 weights


@st.composite
def h5_files(draw, folder: Path) -> bytes:
    import h5py

    path = folder / "made.h5"
    with h5py.File(path, "w") as f:
        if draw(st.booleans()):  # Keras 3 layout
            variables = f.create_group("layers/dense/vars")
            variables.attrs["name"] = draw(st.sampled_from(["dense", "other", "\x1b[2J"]))
            for i, default in enumerate([(4, 2), (2,)]):
                kind = draw(st.sampled_from(["plain", "shape", "dtype", "gzip", "link", "ext"]))
                if kind == "plain":
                    variables.create_dataset(str(i), data=np.zeros(default, np.float32))
                elif kind == "shape":
                    shape = draw(st.sampled_from(SHAPES))
                    variables.create_dataset(str(i), shape=shape, dtype="f4")
                elif kind == "dtype":
                    variables.create_dataset(str(i), data=np.array(["ab"] * 2, dtype="S2"))
                elif kind == "gzip":
                    variables.create_dataset(
                        str(i), shape=(2**24,), dtype="f4", chunks=(2**16,), compression="gzip"
                    )
                elif kind == "link":
                    variables[str(i)] = h5py.SoftLink("/layers")
                else:
                    size = 4 * int(np.prod(default))
                    variables.create_dataset(
                        str(i), shape=default, dtype="f4", external=[(str(path), 0, size)]
                    )
        else:  # Keras 2 layout
            names = draw(st.lists(st.sampled_from(["dense", "gone", "x/y"]), max_size=3))
            f.attrs["layer_names"] = [n.encode() for n in names]
            for name in set(names) - {"gone"}:
                group = f.require_group(name)
                weights = draw(st.lists(st.sampled_from(["k", "b", "missing"]), max_size=3))
                group.attrs["weight_names"] = [w.encode() for w in weights]
                for w in set(weights) - {"missing"}:
                    group.create_dataset(w, data=np.zeros((4, 2) if w == "k" else (2,), "f4"))
    blob = path.read_bytes()
    return draw(mutated(blob)) if draw(st.booleans()) else blob


@FUZZ
@given(data=st.data())
def test_hostile_h5_weights(worker, folder, data):
    blob = data.draw(h5_files(folder))
    path = folder / "w.weights.h5"
    path.write_bytes(blob)
    argv = ["build", str(folder / "m.kdl"), "--weights", str(path), "-o", str(folder / "h.onnx")]
    _ok(worker.ask(argv), argv, blob)


# ---------------------------------------------------------------- .npy inputs


@st.composite
def npy_files(draw) -> bytes:
    descr = draw(st.sampled_from([*DTYPES, "|O", "<m8[s]", [("a", "<f4")], "nonsense"]))
    shape = draw(
        st.sampled_from([(3, 4), (4,), (3, 5), (0, 4), (10**9, 4), (2**62, 2), (), (1, 4, 1)])
    )
    header = io.BytesIO()
    write = draw(
        st.sampled_from(
            [np.lib.format.write_array_header_1_0, np.lib.format.write_array_header_2_0]
        )
    )
    write(header, {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape})
    body = bytes(draw(st.integers(0, 256)))
    blob = header.getvalue() + body
    return draw(mutated(blob)) if draw(st.booleans()) else blob


@FUZZ
@given(blob=npy_files())
def test_hostile_npy_inputs(worker, folder, blob):
    path = folder / "in.npy"
    path.write_bytes(blob)
    argv = ["run", str(folder / "m.onnx"), "--input", f"x={path}"]
    _ok(worker.ask(argv), argv, blob)
