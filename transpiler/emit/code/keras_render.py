"""Code as `ruff format` writes it: expression trees (`Atom`, `Call`, `Seq`, ...) rendered
on one line when they fit, else split at their brackets with one item per line and a
magic trailing comma.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LINE = 88  # ruff format's default line length
INDENT = 4


class Expr:
    def flat(self) -> str:
        raise NotImplementedError


@dataclass
class Atom(Expr):
    text: str

    def flat(self) -> str:
        return self.text


@dataclass
class KW(Expr):
    name: str
    value: Expr

    def flat(self) -> str:
        return f"{self.name}={self.value.flat()}"


@dataclass
class Pair(Expr):
    key: str  # a literal
    value: Expr

    def flat(self) -> str:
        return f"{self.key}: {self.value.flat()}"


@dataclass
class Seq(Expr):
    open: str
    close: str
    items: list[Expr] = field(default_factory=list)

    def flat(self) -> str:
        inner = ", ".join(i.flat() for i in self.items)
        if self.open == "(" and len(self.items) == 1:
            inner += ","
        return f"{self.open}{inner}{self.close}"

    def args_or_items(self) -> list[Expr]:
        return self.items


@dataclass
class BareTuple(Seq):
    """`a, b` (a return value or an assignment's targets): parenthesised only when it is
    split over lines, as ruff writes it."""

    open: str = "("
    close: str = ")"

    def flat(self) -> str:
        return ", ".join(i.flat() for i in self.items)


@dataclass
class Call(Expr):
    func: Expr
    args: list[Expr] = field(default_factory=list)

    def flat(self) -> str:
        return f"{self.func.flat()}({', '.join(a.flat() for a in self.args)})"

    def args_or_items(self) -> list[Expr]:
        return self.args


@dataclass
class Comprehension(Expr):
    """`elt for ... in ...` inside `open`/`close` brackets (none: a call's lone
    generator argument, `nn.ModuleList(Block() for _ in range(3))`)."""

    open: str
    close: str
    elt: Expr
    tail: str  # "for _ in range(3)"

    def flat(self) -> str:
        return f"{self.open}{self.elt.flat()} {self.tail}{self.close}"


def call(func: str | Expr, *args: Expr, **kwargs: Expr) -> Call:
    f = Atom(func) if isinstance(func, str) else func
    return Call(f, [*args, *(KW(k, v) for k, v in kwargs.items())])


def render(expr: Expr, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """`prefix + expr + suffix` at `indent`: one line if it fits, else split at brackets
    with one item per line and a magic trailing comma."""
    pad = " " * indent
    one = f"{pad}{prefix}{expr.flat()}{suffix}"
    if len(one) <= LINE or (isinstance(expr, (Call, Seq)) and not expr.args_or_items()):
        return [one]
    if isinstance(expr, KW):
        return render(expr.value, indent, f"{prefix}{expr.name}=", suffix)
    if isinstance(expr, Pair):
        return render(expr.value, indent, f"{prefix}{expr.key}: ", suffix)
    if isinstance(expr, Comprehension):
        return _comprehension([pad + prefix + expr.open], expr, indent, pad + expr.close + suffix)
    if isinstance(expr, Call):
        if len(expr.args) == 1 and isinstance(expr.args[0], Comprehension):
            gen = expr.args[0]
            if not gen.open:  # a lone generator argument: no brackets, no trailing comma
                head = [f"{pad}{prefix}{expr.func.flat()}("]
                return _comprehension(head, gen, indent, pad + ")" + suffix)
        if isinstance(expr.func, Call):
            # `layers.Dense(...)(x)`: split the layer's arguments and keep the call's,
            # unless the layer has a lone argument and the call's can be split instead
            tail = "(" + ", ".join(a.flat() for a in expr.args) + ")" + suffix
            head = f"{pad}{prefix}{expr.func.flat()}("
            lone = len(expr.func.args) <= 1 and len(head) <= LINE
            if len(pad) + 1 + len(tail) <= LINE and not lone:
                return render(expr.func, indent, prefix, tail)
            lines = render(expr.func, indent, prefix, "(")
        else:
            lines = [f"{pad}{prefix}{expr.func.flat()}("]
        return _items(lines, expr.args, indent, pad + ")" + suffix)
    if isinstance(expr, Seq):
        return _items([pad + prefix + expr.open], expr.items, indent, pad + expr.close + suffix)
    return [one]  # an atom: nothing to split


def _comprehension(lines: list[str], gen: Comprehension, indent: int, close: str) -> list[str]:
    """The inside of a split comprehension: the element split, with a magic trailing
    comma, and the `for` clause on its own line. (A comprehension takes no trailing
    comma of its own, so ruff would join one that fits its line length: splitting the
    element is what keeps the layout the same at line length 88 and 100.)"""
    inner = " " * (indent + INDENT)
    return [*lines, *_split(gen.elt, indent + INDENT), inner + gen.tail, close]


def _split(expr: Expr, indent: int) -> list[str]:
    """A call split at its brackets even where it would fit on one line."""
    if isinstance(expr, Call) and expr.args and not isinstance(expr.func, Call):
        pad = " " * indent
        return _items([f"{pad}{expr.func.flat()}("], expr.args, indent, pad + ")")
    return render(expr, indent)


def _items(lines: list[str], items: list[Expr], indent: int, close: str) -> list[str]:
    for item in items:
        lines += render(item, indent + INDENT, "", ",")
    lines.append(close)
    return lines
