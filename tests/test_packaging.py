"""The wheel carries the grammar and templates, so a non-editable install works anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_grammar_and_templates(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("ktrans-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "transpiler/grammar/kdl.lark" in names
    assert "transpiler/grammar/kdl_parser.json" in names  # the parse tables, no pickle
    assert any(n.startswith("transpiler/templates/") and n.endswith(".j2") for n in names)
    assert "transpiler/cli.py" in names
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry
    assert "ktrans = transpiler.cli:run" in zipfile.ZipFile(wheel).read(entry[0]).decode()
