"""Mutated valid inputs: whatever the damage, only the project's error type escapes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transpiler.errors import KdlErrors
from transpiler.graph import load

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [*ROOT.glob("examples/*.kdl"), *ROOT.glob("tests/fixtures/valid/*.kdl")],
    key=lambda p: p.name,
)
TEXTS = [p.read_text() for p in SOURCES]
PIECES = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    ":",
    "|>",
    "+",
    "-",
    "*",
    "/",
    "@",
    "**",
    "?",
    "input",
    "output",
    "model",
    "block",
    "repeat",
    "const",
    "train",
    "import",
    "as",
    "Dense(",
    "Conv2D(3, 3)",
    "x",
    "-1",
    "0",
    "1e9",
    '"s"',
    "true",
    "none",
    "\n",
    "#",
    "...",
    ":",
    "relu",
    "float32[",
    "]",
    "…",
    "\x00",
    "\t",
]


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        elif kind == "delete":
            end = min(len(text), at + draw(st.integers(1, 12)))
            text = text[:at] + text[end:]
        elif kind == "replace":
            end = min(len(text), at + draw(st.integers(1, 6)))
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[end:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


def test_sources_exist():
    assert TEXTS, "no valid .kdl sources to mutate"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_raise_only_kdl_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "m.kdl"
    path.write_text(text, encoding="utf-8")
    try:
        load(str(path))
    except KdlErrors as e:
        rendered = e.render()
        assert rendered and "Traceback" not in rendered
        for err in e.errors:
            assert err.message
