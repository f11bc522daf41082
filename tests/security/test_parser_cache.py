"""The parser-cache attack (issue 9, section 1), replayed with a private TMPDIR.

lark's `cache=True`, which ktrans used, unpickles `$TMPDIR/.lark_cache_<user>_<sha256>_
<python>.tmp` before it checks anything, so whoever can write the temp folder runs code as
every ktrans user. Here the attacker's file is planted under exactly the name lark would
read; the old way of loading is shown to run it (so the test can fail), and ktrans is
shown not to.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = "model M {\n    input x: float32[4]\n    Dense(2)\n}\n"
OLD_LOADER = """
from lark import Lark
from transpiler.parser.grammar import OPTIONS, grammar_text
Lark(grammar_text(), **OPTIONS, cache=True)
"""


class _Payload:
    """Unpickling this creates the file `marker`: code the attacker chose, running."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _python(code: str, tmpdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        env=env, cwd=tmpdir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_planted_parser_cache_runs_no_code(tmp_path):
    shared = tmp_path / "tmp"  # stands for /tmp, writable by everyone
    shared.mkdir()
    _python(OLD_LOADER, shared).check_returncode()  # lark writes its cache file there
    (cache,) = list(shared.glob(".lark_cache_*.tmp"))
    marker = tmp_path / "attacker-code-ran"
    digest = cache.read_bytes().split(b"\n", 1)[0]
    cache.write_bytes(digest + b"\n" + pickle.dumps(_Payload(str(marker))))

    _python(OLD_LOADER, shared)  # the old loader unpickles the planted file...
    assert marker.exists(), "the replay is broken: the old loader should run the payload"
    marker.unlink()

    (shared / "m.kdl").write_text(MODEL)
    for command in (["check", "m.kdl"], ["summary", "m.kdl"]):
        done = _python("", shared, "-m", "transpiler", *command)
        assert done.returncode == 0, done.stderr
        assert not marker.exists(), f"ktrans {command[0]} ran the planted pickle"
    assert sorted(p.name for p in shared.iterdir()) == sorted([cache.name, "m.kdl"])
