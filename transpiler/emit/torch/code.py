"""Python code pieces for the PyTorch generator: expression trees (shared with the Keras
generator, rendered as `ruff format` writes them), statements, literals."""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.emit.code.keras_names import lit, pystr
from transpiler.emit.code.keras_render import (
    INDENT,
    KW,
    LINE,
    Atom,
    BareTuple,
    Call,
    Comprehension,
    Expr,
    Pair,
    Seq,
    call,
    render,
)

__all__ = [
    "INDENT",
    "KW",
    "LINE",
    "Atom",
    "BareTuple",
    "Call",
    "Comprehension",
    "Expr",
    "Pair",
    "Seq",
    "Stmt",
    "call",
    "kwargs_if",
    "lit",
    "method",
    "num",
    "pystr",
    "render",
    "render_block",
    "size",
]


@dataclass
class Stmt:
    """One statement of a generated function: `prefix + expr` (an assignment, a return,
    an expression), a comment line (`expr` None), or a compound statement (`header`
    and `body`)."""

    prefix: str = ""
    expr: Expr | None = None
    comment: str = ""
    header: str = ""
    body: list[Stmt] = field(default_factory=list)


def render_block(stmts: list[Stmt], indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for s in stmts:
        if s.comment:
            lines.append(f"{pad}# {s.comment}")
        if s.header:
            lines.append(f"{pad}{s.header}")
            lines += render_block(s.body, indent + INDENT)
        elif s.expr is not None:
            lines += render(s.expr, indent, s.prefix)
    return lines


def method(obj: Expr | str, name: str, *args: Expr, **kwargs: Expr) -> Call:
    """`obj.name(args)`."""
    text = obj if isinstance(obj, str) else obj.flat()
    return call(f"{text}.{name}", *args, **kwargs)


def num(value) -> Atom:
    """A number (or tuple, string, bool, None) literal."""
    return Atom(lit(value))


def size(values) -> Atom:
    """A kernel size, stride... as torch takes it: one int if all are equal."""
    values = tuple(values)
    return num(values[0]) if len(set(values)) == 1 else num(values)


def kwargs_if(**pairs) -> dict[str, Expr]:
    """Keyword arguments, leaving out those given as None (the defaults)."""
    return {k: v for k, v in pairs.items() if v is not None}
