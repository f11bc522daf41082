"""Loads the Lark parser once per process, from parse tables shipped in the package.

Building the LALR tables from grammar/kdl.lark takes about half a second, so they are
built ahead of time (`python tools/gen_parser.py`) into grammar/kdl_parser.json, which
ships beside the grammar. The file is plain JSON read from the package itself, never a
pickle and never a file in a shared folder: lark's own `cache=True` unpickles a file of a
predictable name in the temp directory, which any user of the machine can plant.

The tables carry a key (the grammar's SHA-256, lark's version, the options); when it does
not match (the grammar was edited, or another lark is installed) the parser is built from
the grammar in memory instead: slower to start, never wrong. tests/test_parser_tables.py
fails until the tables are regenerated.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

import lark
from lark import Lark

OPTIONS = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": True,
    "maybe_placeholders": True,
    "strict": False,
}
TABLES = "kdl_parser.json"
_TUPLE, _ITEMS = "\x00tuple", "\x00items"  # JSON has neither tuples nor integer keys


def _grammar_file(name: str):
    try:
        return resources.files("transpiler.grammar").joinpath(name)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "grammar" / name


def grammar_text() -> str:
    """The grammar source: from the installed package, else from the source tree."""
    try:
        return _grammar_file("kdl.lark").read_text("utf-8")
    except FileNotFoundError:
        here = Path(__file__).resolve().parents[2] / "grammar" / "kdl.lark"
        return here.read_text("utf-8")


def tables_key(grammar: str) -> str:
    """What the tables were built from: the grammar, lark's version and the options."""
    text = json.dumps([grammar, lark.__version__, OPTIONS], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def parser() -> Lark:
    grammar = grammar_text()
    loaded = load_tables(tables_key(grammar))
    if loaded is not None:
        return loaded
    return Lark(grammar, **OPTIONS)  # no cache: nothing is read from or written to disk


def load_tables(key: str) -> Lark | None:
    """The parser from the packaged tables, or None when they are missing or stale."""
    try:
        text = _grammar_file(TABLES).read_text("utf-8")
    except (FileNotFoundError, OSError):
        return None
    stored = json.loads(text, object_hook=_decode)
    if stored.get("key") != key:
        return None
    return Lark._load_from_dict(stored["data"], stored["memo"])


def tables_json(grammar: str) -> str:
    """The tables of `grammar` as the JSON text tools/gen_parser.py writes."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = Lark(grammar, **OPTIONS).memo_serialize([TerminalDef, Rule])
    stored = {"key": tables_key(grammar), "data": data, "memo": memo}
    return json.dumps(_encode(stored), separators=(",", ":")) + "\n"


def _encode(value):
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("\x00") for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {_ITEMS: [[_encode(k), _encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the parse tables")


def _decode(obj: dict):
    if _TUPLE in obj:
        return tuple(obj[_TUPLE])
    if _ITEMS in obj:
        return {_hashable(k): v for k, v in obj[_ITEMS]}
    return obj


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key
