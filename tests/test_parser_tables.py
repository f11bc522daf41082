"""The parse tables shipped in grammar/kdl_parser.json: current, and the same parser as
one built from the grammar."""

from __future__ import annotations

from pathlib import Path

from lark import Lark

from transpiler.parser.grammar import OPTIONS, grammar_text, load_tables, parser, tables_key

ROOT = Path(__file__).resolve().parents[1]


def test_tables_match_the_grammar():
    """Fails after an edit of grammar/kdl.lark: run `.venv/bin/python tools/gen_parser.py`
    (until then ktrans builds the parser at each start, half a second)."""
    assert load_tables(tables_key(grammar_text())) is not None, (
        "grammar/kdl_parser.json is stale: run .venv/bin/python tools/gen_parser.py"
    )


def test_stale_tables_are_not_used():
    assert load_tables(tables_key(grammar_text() + "\n// edited\n")) is None


def test_tables_parse_as_the_grammar_does():
    built = Lark(grammar_text(), **OPTIONS)
    texts = [p.read_text() for p in sorted(ROOT.glob("examples/*.kdl"))]
    texts += [p.read_text() for p in sorted(ROOT.glob("tests/fixtures/valid/*.kdl"))]
    assert len(texts) > 5
    for text in texts:
        assert parser().parse(text) == built.parse(text)
