"""ktrans's own writes (transpiler/atomic_files.py): whole or nothing, flushed to the disk
before the rename, with the umask's mode, and no temporary file left behind by Ctrl-C,
SIGTERM or a killed earlier run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.security.capped import ROOT
from transpiler.atomic_files import atomic_write, remove_stale_temps, temp_prefix
from transpiler.emit.onnx.save import atomic_write_bytes
from transpiler.errors import KdlErrors


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_file_gets_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "out.onnx", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "out.onnx").stat().st_mode & 0o777 == mode


def test_the_data_is_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    atomic_write_bytes(tmp_path / "out.onnx", b"data")
    assert events[:2] == ["fsync", "replace"]  # the file, then its folder after the rename
    assert "fsync" in events[2:]


def test_an_error_or_ctrl_c_during_the_write_leaves_no_temporary(tmp_path):
    (tmp_path / "out.onnx").write_bytes(b"old")

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.onnx", interrupted)

    def full(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(KdlErrors, match="No space left on device"):
        atomic_write(tmp_path / "out.onnx", full)
    assert (tmp_path / "out.onnx").read_bytes() == b"old"
    assert _temps(tmp_path) == []


WRITER = """
import sys, time
from transpiler.atomic_files import atomic_write

def slow(f):
    f.write(b"half")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write(sys.argv[1], slow)
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, None)])
def test_a_signal_during_the_write_removes_the_temporary(tmp_path, sig, code):
    target = tmp_path / "out.onnx"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert child.stdout.readline() == "writing\n"
    assert len(_temps(tmp_path)) == 1
    child.send_signal(sig)
    returned = child.wait(timeout=60)
    assert _temps(tmp_path) == [] and not target.exists()
    if code is not None:
        assert returned == code
    else:  # KeyboardInterrupt: Python's own exit after an uncaught Ctrl-C
        assert returned != 0


def test_stale_temporaries_of_the_same_output_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = temp_prefix("out.onnx")
    stale = tmp_path / f"{prefix}{dead.pid}-0123abcd.tmp"
    alive = tmp_path / f"{prefix}{os.getppid()}-0123abcd.tmp"  # pytest's parent runs
    other = tmp_path / f"{temp_prefix('other.onnx')}{dead.pid}-0123abcd.tmp"
    for p in (stale, alive, other):
        p.write_bytes(b"x")
    atomic_write_bytes(tmp_path / "out.onnx", b"data")
    assert not stale.exists() and alive.exists() and other.exists()
    assert remove_stale_temps(tmp_path, "other.onnx") == [other]


def test_a_long_output_name_gets_a_short_temporary_name(tmp_path):
    name = "m" * 250 + ".onnx"
    atomic_write_bytes(tmp_path / name, b"data")
    assert (tmp_path / name).read_bytes() == b"data"
    assert len(temp_prefix(name).encode()) < 200


def test_sigterm_handler_is_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    atomic_write_bytes(tmp_path / "out.onnx", b"data")
    assert signal.getsignal(signal.SIGTERM) is before
