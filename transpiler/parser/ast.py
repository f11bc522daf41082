"""The syntax tree: frozen dataclasses, each carrying the `Span` it came from."""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.errors import Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class Literal(Expr):
    """A number, string, boolean or none."""

    value: object


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class DictExpr(Expr):
    items: tuple[tuple[str, Span, Expr], ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # one of + - * / @ **
    left: Expr
    right: Expr


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # - or +
    operand: Expr


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # and, or, not (not has right None)
    left: Expr
    right: Expr | None


@dataclass(frozen=True)
class Pipe(Expr):
    """`value |> layer`: apply `layer` to `value`."""

    value: Expr
    target: Expr


@dataclass(frozen=True)
class Keyword:
    name: str
    span: Span
    value: Expr


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]


@dataclass(frozen=True)
class Slice(Expr):
    start: Expr | None
    stop: Expr | None
    step: Expr | None


@dataclass(frozen=True)
class EllipsisExpr(Expr):
    pass


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    subscripts: tuple[Expr, ...]


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Stmt:
    span: Span


@dataclass(frozen=True)
class Dim:
    span: Span
    value: int | str | None  # int, a const name, or None for `?`


@dataclass(frozen=True)
class TensorTypeExpr:
    span: Span
    dtype: str
    dtype_span: Span
    dims: tuple[Dim, ...]


@dataclass(frozen=True)
class InputStmt(Stmt):
    name: str
    name_span: Span
    type: TensorTypeExpr | None


@dataclass(frozen=True)
class OutputStmt(Stmt):
    name: str | None
    name_span: Span | None
    value: Expr


@dataclass(frozen=True)
class Assign(Stmt):
    targets: tuple[tuple[str, Span], ...]
    value: Expr


@dataclass(frozen=True)
class ExprStmt(Stmt):
    value: Expr


@dataclass(frozen=True)
class Repeat(Stmt):
    count: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class If(Stmt):
    """`if cond { ... } else { ... }`: the condition is known when the graph is built."""

    condition: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True)
class ConstDef(Stmt):
    name: str
    name_span: Span
    value: Expr


# ---------------------------------------------------------------- top level


@dataclass(frozen=True)
class Import:
    span: Span
    path: str


@dataclass(frozen=True)
class Param:
    span: Span
    name: str
    type: str | None
    default: Expr | None


@dataclass(frozen=True)
class ModelDef:
    span: Span
    name: str
    name_span: Span
    options: tuple[Keyword, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class BlockDef:
    span: Span
    name: str
    name_span: Span
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class TrainSection:
    """A named group of settings inside a train block: `data { image_size = 28 }`."""

    name: str
    span: Span  # the section's name
    items: tuple[Keyword, ...]


@dataclass(frozen=True)
class TrainDef:
    span: Span
    model: str
    model_span: Span
    name: str  # "default" unless `train Model as name`
    items: tuple[Keyword, ...]
    sections: tuple[TrainSection, ...] = ()


@dataclass(frozen=True)
class Module:
    """One parsed file."""

    file: str
    imports: tuple[Import, ...]
    consts: tuple[ConstDef, ...]
    models: tuple[ModelDef, ...]
    blocks: tuple[BlockDef, ...]
    trains: tuple[TrainDef, ...]
