"""ktrans_runtime.files: atomic writes (fsync before rename, umask, nothing left on
failure), stale temporaries, paths kept inside --out."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from transpiler.templates.ktrans_runtime import files
from transpiler.templates.ktrans_runtime.errors import TrainingError, WriteError
from transpiler.templates.ktrans_runtime.signals import Interrupted


def test_atomic_write_writes_whole_files_and_fsyncs_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    path = tmp_path / "sub" / "a.bin"
    assert files.atomic_write(path, lambda f: f.write(b"abc")) == path
    assert path.read_bytes() == b"abc"
    assert events[:2] == ["fsync", "replace"]  # the file's data, then the rename
    assert events[2:] == ["fsync"]  # and the folder, so the rename is durable
    assert list(path.parent.iterdir()) == [path]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EIO])
def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, code):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"previous")

    def write(f):
        f.write(b"partial")
        raise OSError(code, os.strerror(code))

    with pytest.raises(WriteError, match=f"cannot write {path}: {os.strerror(code)}"):
        files.atomic_write(path, write)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_a_signal_during_a_write_removes_the_temporary(tmp_path):
    def write(f):
        f.write(b"partial")
        raise Interrupted(2)  # what the start-up signal handler raises

    with pytest.raises(Interrupted):
        files.atomic_write(tmp_path / "x.json", write)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    code = (
        "import os, sys\n"
        f"os.umask({umask})\n"
        "from pathlib import Path\n"
        "from transpiler.templates.ktrans_runtime.files import write_text\n"
        "print(oct(write_text(Path(sys.argv[1]), 'x').stat().st_mode & 0o777))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "f.txt")], capture_output=True, text=True
    )
    assert out.stdout.strip() == oct(mode), out.stderr


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = _dead_pid()
    (tmp_path / "ckpt").mkdir()
    stale = [
        tmp_path / f".history.csv.{dead}.abc123.tmp",
        tmp_path / "ckpt" / f".e1.onnx.{dead}.q.tmp",
    ]
    kept = [
        tmp_path / f".history.csv.{os.getpid()}.mine.tmp",  # a live process (this one)
        tmp_path / f".other.csv.{dead}.abc.tmp",  # not a name the run writes
        tmp_path / ".history.csv.notapid.tmp",
        tmp_path / "history.csv",
    ]
    for path in stale + kept:
        path.write_bytes(b"x")
    removed = files.remove_stale_temporaries(
        [tmp_path / "history.csv", tmp_path / "ckpt" / "e1.onnx", tmp_path / "missing" / "a"]
    )
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


def test_inside_keeps_paths_in_the_output_folder(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    assert files.inside(out, "log.csv", "CSVLogger") == out.resolve() / "log.csv"
    assert files.inside(out, "sub/../ck.onnx", "X") == out.resolve() / "ck.onnx"
    refused = {
        "../x.csv": "leads outside the output folder",
        "sub/../../x.csv": "leads outside the output folder",
        str(tmp_path / "x.csv"): "is an absolute path",
        "link/x.csv": "leads outside the output folder",
        "bad\nname.csv": "holds a control character",
        "": "is empty",
        ".": "names the output folder itself",
    }
    for name, fragment in refused.items():
        with pytest.raises(TrainingError, match=fragment):
            files.inside(out, name, "CSVLogger")
