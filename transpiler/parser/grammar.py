"""Loads the Lark grammar once per process (a few tens of milliseconds)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark


def grammar_text() -> str:
    """The grammar source: from the installed package, else from the source tree."""
    try:
        return resources.files("transpiler.grammar").joinpath("kdl.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        here = Path(__file__).resolve().parents[2] / "grammar" / "kdl.lark"
        return here.read_text("utf-8")


@functools.cache
def parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        strict=False,
        cache=True,  # a pickled parser in the temp dir, keyed by grammar and lark version
    )
