"""Writes grammar/kdl_parser.json, the parse tables ktrans loads at start-up, from
grammar/kdl.lark. Run it after editing the grammar (tests/test_parser_tables.py says so):

    .venv/bin/python tools/gen_parser.py
"""

from __future__ import annotations

from pathlib import Path

from transpiler.parser.grammar import TABLES, tables_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    grammar = (ROOT / "grammar" / "kdl.lark").read_text("utf-8")
    out = ROOT / "grammar" / TABLES
    out.write_text(tables_json(grammar), "utf-8")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
