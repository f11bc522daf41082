"""Generated docs are current, and the docs' examples compile."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from transpiler.graph import load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def test_layer_catalogue_is_current():
    from gen_layer_docs import render

    assert (ROOT / "docs/layers.md").read_text() == render(), (
        "docs/layers.md is stale: run .venv/bin/python tools/gen_layer_docs.py"
    )


def _kdl_blocks(path: Path) -> list[str]:
    return re.findall(r"```\n(model .*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("doc", ["README.md", "docs/language.md"])
def test_model_examples_in_docs_compile(tmp_path, doc):
    blocks = [b for b in _kdl_blocks(ROOT / doc) if "..." not in b]
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"ex{i}.kdl"
        path.write_text(block)
        load(str(path))
