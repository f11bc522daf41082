"""What a .kdl expression can evaluate to, besides tensors (graph `Value`s) and plain
Python numbers, strings, lists and dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.errors import Span
from transpiler.parser import ast


@dataclass(frozen=True)
class LayerClass:
    """A layer's class name not yet called: `Dense` in `Dense(10)`."""

    cls: type
    kdl_kind = "a layer class"

    @property
    def symbol_name(self) -> str:
        return self.cls.__name__


@dataclass(frozen=True)
class Function:
    """An expression function: `relu` in `relu(x)`; also usable as an activation name."""

    name: str
    kdl_kind = "a function"

    @property
    def symbol_name(self) -> str:
        return self.name


@dataclass(frozen=True)
class BlockDefRef:
    """A block not yet given its arguments."""

    block: ast.BlockDef
    kdl_kind = "a block"

    @property
    def symbol_name(self) -> str:
        return self.block.name


@dataclass
class BlockInstance:
    """A block with its parameters bound, ready to be applied to tensors."""

    block: ast.BlockDef
    params: dict[str, object]
    span: Span
    kdl_kind = "a block"


@dataclass
class Poison:
    """The value of something that already failed; using it reports nothing more."""

    kdl_kind = "an invalid value"


@dataclass
class Scope:
    """Names bound in one model or block body, and where each was bound."""

    names: dict[str, object] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)
