"""Runs Lark and turns its tree (and its exceptions) into our AST (and our errors)."""

from __future__ import annotations

import math
from pathlib import Path

from lark import Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, v_args
from lark.exceptions import VisitError
from lark.visitors import Transformer_NonRecursive

from transpiler.errors import KdlError, KdlErrors, Span
from transpiler.input_files import read_regular
from transpiler.limits import (
    MAX_INT_DIGITS,
    MAX_INT_MAGNITUDE,
    MAX_NESTING,
    MAX_SOURCE_BYTES,
    MAX_STRING_CHARS,
)
from transpiler.parser import ast
from transpiler.parser.grammar import parser
from transpiler.parser.syntax_errors import char_error, eof_error, token_error


def read_source(path: str | Path, span: Span | None = None) -> str:
    """Reads a .kdl file as UTF-8, with errors that say where the bad byte is. Only a
    regular file within MAX_SOURCE_BYTES is read (a FIFO or /dev/zero is refused at once)."""
    data = read_regular(path, None, MAX_SOURCE_BYTES, span, "split it into files that import")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise KdlErrors(
            [
                KdlError(
                    Span(str(path), line, col),
                    f"the file is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                    "save the file as UTF-8",
                )
            ]
        ) from None


def parse_file(path: str | Path) -> ast.Module:
    return parse_text(read_source(path), str(path))


def parse_text(text: str, file: str = "<string>") -> ast.Module:
    """Parses one file's text. Raises KdlErrors on a syntax error."""
    if text.lstrip("\ufeff").strip() == "":
        raise KdlErrors(
            [
                KdlError(
                    Span(file, 1, 1),
                    "the file is empty",
                    "a .kdl file defines at least one `model Name { ... }` or `block`",
                )
            ]
        )
    text = text.lstrip("\ufeff")
    if len(text) > MAX_SOURCE_BYTES:
        raise KdlErrors(
            [
                KdlError(
                    Span(file, 1, 1),
                    f"the text is {len(text):,} characters; the limit is {MAX_SOURCE_BYTES:,}",
                )
            ]
        )
    _check_nesting(text, file)
    try:
        tree = parser().parse(text)
    except UnexpectedEOF:
        raise KdlErrors([eof_error(text, file)]) from None
    except UnexpectedToken as e:
        raise KdlErrors([token_error(text, file, e)]) from None
    except UnexpectedCharacters as e:
        raise KdlErrors([char_error(file, e)]) from None
    try:  # bottom up without recursion: a 1,000-term sum is a tree 1,000 deep
        return _ToAst(file, text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, KdlErrors):
            raise e.orig_exc from None
        if isinstance(e.orig_exc, KdlError):
            raise KdlErrors([e.orig_exc]) from None
        raise


def _check_nesting(text: str, file: str) -> None:
    """Deeply nested brackets would exhaust Python's stack later; refuse them early."""
    depth = 0
    line, col = 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise KdlErrors(
                    [
                        KdlError(
                            Span(file, line, col),
                            f"brackets are nested more than {MAX_NESTING} deep",
                            "split the expression into named steps",
                        )
                    ]
                )
        elif ch in ")]}":
            depth = max(0, depth - 1)


def _span(file: str, meta) -> Span:
    if getattr(meta, "empty", True):
        return Span(file, 0, 0)
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _unquote(file: str, tok: Token) -> str:
    body = str(tok)[1:-1]
    if len(body) > MAX_STRING_CHARS:
        raise KdlError(
            _tok_span(file, tok),
            f"this string is {len(body):,} characters long; the limit is {MAX_STRING_CHARS:,}",
        )
    return bytes(body, "utf-8").decode("unicode_escape") if "\\" in body else body


def _number(text: str):
    return text.replace("_", "")


def _integer(file: str, tok: Token) -> int:
    """An integer literal, refused beyond int64 before Python converts a 5,000-digit one."""
    digits = _number(tok).lstrip("0") or "0"
    if len(digits) > MAX_INT_DIGITS or int(digits) > MAX_INT_MAGNITUDE:
        shown = f"{digits[:12]}... ({len(digits):,} digits)" if len(digits) > 24 else digits
        raise KdlError(
            _tok_span(file, tok),
            f"the integer {shown} is too large: the limit is {MAX_INT_MAGNITUDE:,} (int64)",
            "write a large number as a float (1e30)",
        )
    return int(digits)


@v_args(meta=True, inline=True)
class _ToAst(Transformer_NonRecursive):
    """Lark tree -> ast dataclasses, bottom up."""

    def __init__(self, file: str, text: str = "") -> None:
        super().__init__()
        self.file = file
        self.text = text
        self._line_starts: list[int] | None = None

    def offset(self, line: int, column: int) -> int:
        """The text offset of a 1-based (line, column)."""
        if self._line_starts is None:
            starts, i = [0], self.text.find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = self.text.find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts[line - 1] + column - 1

    def check_same_line(self, before: ast.Expr, bracket: str, what: str) -> None:
        """Newlines are whitespace (a pipeline may go on over lines), so a line that begins
        with '(' or '[' would call or index the previous line's value: an error that says
        so, instead of a puzzling one about the merged expression."""
        span = before.span
        if span.end_line is None or not self.text:
            return
        i = self.offset(span.end_line, span.end_column)
        newline = False
        while i < len(self.text) and self.text[i] != bracket:
            if self.text[i] == "#" or self.text.startswith("//", i):  # a comment
                i = self.text.find("\n", i)
                i = len(self.text) if i < 0 else i
                continue
            newline = newline or self.text[i] == "\n"
            i += 1
        if not newline or i >= len(self.text):
            return
        line = self.text.count("\n", 0, i) + 1
        column = i - self.offset(line, 1) + 1
        raise KdlError(
            Span(self.file, line, column, line, column + 1),
            f"this '{bracket}' begins a line, so it {what} the value before it on line "
            f"{span.end_line} (newlines do not end statements)",
            "to begin a statement with a parenthesis, assign it (y = (a * 2) |> LSTM(8)); "
            f"to {what.removesuffix('s')} across lines, put '{bracket}' on the line before",
        )

    def s(self, meta) -> Span:
        return _span(self.file, meta)

    # ---- top level
    @v_args(meta=True, inline=False)
    def start(self, meta, items):
        groups: dict[type, list] = {
            ast.Import: [],
            ast.ConstDef: [],
            ast.ModelDef: [],
            ast.BlockDef: [],
            ast.TrainDef: [],
        }
        for item in items:
            groups[type(item)].append(item)
        return ast.Module(
            file=self.file,
            imports=tuple(groups[ast.Import]),
            consts=tuple(groups[ast.ConstDef]),
            models=tuple(groups[ast.ModelDef]),
            blocks=tuple(groups[ast.BlockDef]),
            trains=tuple(groups[ast.TrainDef]),
        )

    def import_stmt(self, meta, path):
        return ast.Import(self.s(meta), _unquote(self.file, path))

    def const_stmt(self, meta, name, value):
        return ast.ConstDef(self.s(meta), str(name), _tok_span(self.file, name), value)

    @v_args(meta=True, inline=False)
    def model_def(self, meta, children):
        name, options, *body = children
        return ast.ModelDef(
            self.s(meta), str(name), _tok_span(self.file, name), tuple(options or ()), tuple(body)
        )

    @v_args(meta=True, inline=False)
    def model_args(self, meta, children):
        return tuple(c for c in children if c is not None)

    @v_args(meta=True, inline=False)
    def block_def(self, meta, children):
        name, *rest = children
        params = tuple(c for c in rest if isinstance(c, ast.Param))
        body = tuple(c for c in rest if isinstance(c, ast.Stmt))
        return ast.BlockDef(self.s(meta), str(name), _tok_span(self.file, name), params, body)

    def param(self, meta, name, type_, default):
        return ast.Param(self.s(meta), str(name), str(type_) if type_ else None, default)

    @v_args(meta=True, inline=False)
    def train_def(self, meta, children):
        model, alias, *items = children
        return ast.TrainDef(
            self.s(meta),
            str(model),
            _tok_span(self.file, model),
            str(alias) if alias else "default",
            tuple(i for i in items if isinstance(i, ast.Keyword)),
            tuple(i for i in items if isinstance(i, ast.TrainSection)),
        )

    def train_item(self, meta, name, value):
        return ast.Keyword(str(name), _tok_span(self.file, name), value)

    @v_args(meta=True, inline=False)
    def train_section(self, meta, children):
        name, *items = children
        return ast.TrainSection(str(name), _tok_span(self.file, name), tuple(items))

    # ---- statements
    def input_stmt(self, meta, name, type_):
        return ast.InputStmt(self.s(meta), str(name), _tok_span(self.file, name), type_)

    @v_args(meta=True, inline=False)
    def tensor_type(self, meta, children):
        dtype, *dims = children
        return ast.TensorTypeExpr(
            self.s(meta),
            str(dtype),
            _tok_span(self.file, dtype),
            tuple(d for d in dims if d is not None),
        )

    def dim_int(self, meta, tok):
        return ast.Dim(_tok_span(self.file, tok), _integer(self.file, tok))

    def dim_any(self, meta):
        return ast.Dim(self.s(meta), None)

    def dim_name(self, meta, tok):
        return ast.Dim(_tok_span(self.file, tok), str(tok))

    def output_named(self, meta, name, value):
        return ast.OutputStmt(self.s(meta), str(name), _tok_span(self.file, name), value)

    def output_bare(self, meta, value):
        return ast.OutputStmt(self.s(meta), None, None, value)

    def assign_stmt(self, meta, name, value):
        return ast.Assign(self.s(meta), ((str(name), _tok_span(self.file, name)),), value)

    @v_args(meta=True, inline=False)
    def unpack_stmt(self, meta, children):
        *names, value = children
        targets = tuple((str(n), _tok_span(self.file, n)) for n in names)
        return ast.Assign(self.s(meta), targets, value)

    def expr_stmt(self, meta, value):
        return ast.ExprStmt(self.s(meta), value)

    @v_args(meta=True, inline=False)
    def repeat_stmt(self, meta, children):
        count, *body = children
        return ast.Repeat(self.s(meta), count, tuple(body))

    @v_args(meta=True, inline=False)
    def if_stmt(self, meta, children):
        condition, body, orelse = children
        if isinstance(orelse, ast.If):
            orelse = (orelse,)
        return ast.If(self.s(meta), condition, tuple(body), tuple(orelse or ()))

    @v_args(meta=True, inline=False)
    def then_body(self, meta, children):
        return tuple(children)

    @v_args(meta=True, inline=False)
    def else_body(self, meta, children):
        return tuple(children)

    # ---- expressions
    def compare(self, meta, left, op, right):
        return ast.Compare(self.s(meta), str(op), left, right)

    def or_(self, meta, left, right):
        return ast.BoolOp(self.s(meta), "or", left, right)

    def and_(self, meta, left, right):
        return ast.BoolOp(self.s(meta), "and", left, right)

    def not_(self, meta, operand):
        return ast.BoolOp(self.s(meta), "not", operand, None)

    def pipe(self, meta, value, target):
        return ast.Pipe(self.s(meta), value, target)

    def _binop(self, meta, op, left, right):
        return ast.BinOp(self.s(meta), op, left, right)

    def add(self, meta, left, right):
        return self._binop(meta, "+", left, right)

    def sub(self, meta, left, right):
        return self._binop(meta, "-", left, right)

    def mul(self, meta, left, right):
        return self._binop(meta, "*", left, right)

    def div(self, meta, left, right):
        return self._binop(meta, "/", left, right)

    def matmul(self, meta, left, right):
        return self._binop(meta, "@", left, right)

    def pow(self, meta, left, right):
        return self._binop(meta, "**", left, right)

    def neg(self, meta, operand):
        return ast.UnaryOp(self.s(meta), "-", operand)

    def pos(self, meta, operand):
        return ast.UnaryOp(self.s(meta), "+", operand)

    @v_args(meta=True, inline=False)
    def call(self, meta, children):
        func, *args = children
        self.check_same_line(func, "(", "calls")
        positional, keywords = [], []
        for a in args:
            if a is None:
                continue
            if isinstance(a, ast.Keyword):
                keywords.append(a)
            elif keywords:
                raise KdlError(
                    a.span,
                    "a positional argument follows a keyword argument",
                    "put positional arguments first, as in Python",
                )
            else:
                positional.append(a)
        seen = set()
        for k in keywords:
            if k.name in seen:
                raise KdlError(k.span, f"argument '{k.name}' is given twice")
            seen.add(k.name)
        return ast.Call(self.s(meta), func, tuple(positional), tuple(keywords))

    def kwarg(self, meta, name, value):
        return ast.Keyword(str(name), _tok_span(self.file, name), value)

    @v_args(meta=True, inline=False)
    def index(self, meta, children):
        value, *subs = children
        self.check_same_line(value, "[", "indexes")
        return ast.Index(self.s(meta), value, tuple(s for s in subs if s is not None))

    def slice(self, meta, start, stop, step):
        return ast.Slice(self.s(meta), start, stop, step)

    def ellipsis(self, meta):
        return ast.EllipsisExpr(self.s(meta))

    def float(self, meta, tok):
        value = float(_number(tok))
        if not math.isfinite(value):
            raise KdlError(_tok_span(self.file, tok), f"the number {tok} is too large for a float")
        return ast.Literal(_tok_span(self.file, tok), value)

    def int(self, meta, tok):
        return ast.Literal(_tok_span(self.file, tok), _integer(self.file, tok))

    def string(self, meta, tok):
        return ast.Literal(_tok_span(self.file, tok), _unquote(self.file, tok))

    def true(self, meta):
        return ast.Literal(self.s(meta), True)

    def false(self, meta):
        return ast.Literal(self.s(meta), False)

    def none(self, meta):
        return ast.Literal(self.s(meta), None)

    def name(self, meta, tok):
        return ast.Name(_tok_span(self.file, tok), str(tok))

    @v_args(meta=True, inline=False)
    def list(self, meta, items):
        return ast.ListExpr(self.s(meta), tuple(i for i in items if i is not None))

    @v_args(meta=True, inline=False)
    def tuple(self, meta, items):
        return ast.TupleExpr(self.s(meta), tuple(i for i in items if i is not None))

    @v_args(meta=True, inline=False)
    def dict(self, meta, items):
        return ast.DictExpr(self.s(meta), tuple(i for i in items if i is not None))

    def dict_item(self, meta, key, value):
        text = _unquote(self.file, key) if key.type == "STRING" else str(key)
        return (text, _tok_span(self.file, key), value)
