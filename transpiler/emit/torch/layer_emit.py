"""What an emitter in this package works with: `LayerEmit`, one layer's view of the
forward function being written (its module attribute, intermediate statements, layout
conversions), and `Out` / `Unpack`, how an emitter hands back its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from transpiler.emit.code.keras_names import CodegenError
from transpiler.emit.torch.code import Atom, Expr
from transpiler.emit.torch.values import TValue, channels_first_perm
from transpiler.graph.types import TensorType
from transpiler.layers.base import NO_CALL_ARGS, CallArgs

#: `perm=SAME`: the output is stored as the first input is
SAME = object()
#: Out.mask of an Unpack whose expression returns the output's mask after the outputs
RETURNED = Atom("<returned mask>")


@dataclass
class Out:
    """One output: its expression, logical type, storage order and Keras mask (an
    expression, or None)."""

    expr: Expr | None
    type: TensorType
    perm: tuple[int, ...] | None = None
    mask: Expr | None = None


@dataclass
class Unpack:
    """Several outputs of one expression that returns a tuple (`a, b = expr`)."""

    expr: Expr
    outs: list[Out] = field(default_factory=list)


class LayerEmit:
    """An emitter's handle on the scope it writes into, for one layer.

    `owner` is the layer whose attribute the module becomes (a wrapper, for the layer it
    wraps) and `prefix` what that wrapper puts before the wrapped layer's weight names.
    `call` holds the call's keyword tensors (TValues, as stored: `attention_mask`, `mask`)
    and flags (`use_causal_mask`); the emitter gets the positional tensors as `inputs`,
    the first one carrying the call's `mask=` as its mask.
    """

    def __init__(
        self,
        scope,
        layer,
        node=None,
        owner=None,
        prefix: str = "",
        call: CallArgs = NO_CALL_ARGS,
    ) -> None:
        self.scope = scope
        self.layer = layer
        self.node = node
        self.call = call
        self.owner = owner or layer
        self.prefix = prefix
        self.out_types: list[TensorType] | None = None  # a wrapper sets them

    @property
    def types(self) -> list[TensorType]:
        """The logical types of the layer's outputs here."""
        if self.out_types is not None:
            return self.out_types
        return [v.type for v in self.node.outputs]

    # ------------------------------------------------------------ the layer's module

    @property
    def shared(self) -> bool:
        """Whether the layer is called more than once (one module serves every call, so
        it cannot depend on one call's input size)."""
        return self.scope.gen.called_again(self.owner)

    @property
    def data_format(self) -> str:
        return getattr(self.layer, "data_format", None) or "channels_last"

    def module(self, ctor: Expr, weights: dict[str, tuple[str, str]] | None = None) -> Expr:
        """Declares the layer's module (constructed by `ctor`; `weights` maps each Keras
        weight name to the parameter or buffer holding it and its layout, see
        templates/torch_layers/weights.py) and returns how forward refers to it. A
        shared layer's later calls get the module of its first call."""
        named = {f"{self.prefix}{k}": v for k, v in (weights or {}).items()}
        return self.scope.layer_module(self.owner, ctor, named)

    def helper(self, name: str) -> str:
        """Marks a definition of templates/torch_layers as used; returns its name."""
        return self.scope.gen.use_helper(name)

    def wrapped(self, inner, prefix: str, types: list[TensorType]) -> LayerEmit:
        """The handle for a layer that this one wraps (its module becomes this layer's),
        with its output types."""
        e = LayerEmit(self.scope, inner, None, self.owner, f"{self.prefix}{prefix}")
        e.out_types = types
        return e

    def fail(self, message: str):
        raise CodegenError(f"{self.layer.keras_class()} ('{self.owner.name}'): {message}")

    # ------------------------------------------------------------ values

    def ref(self, v: TValue) -> Atom:
        """The variable holding v, for use in an expression."""
        return self.scope.ref(v)

    def temp(self, expr: Expr, like: TValue, type: TensorType | None = None, perm=SAME):
        """An intermediate statement `name = expr`; returns its value."""
        perm = like.perm if perm is SAME else perm
        return self.scope.temp(expr, replace(like, type=type or like.type, perm=perm))

    def logical(self, v: TValue) -> TValue:
        """v in Keras's axis order (one permute, shared by every use of v)."""
        return self.scope.stored_as(v, None)

    def stored_as(self, v: TValue, perm) -> TValue:
        return self.scope.stored_as(v, perm)

    def channels_first(self, v: TValue, data_format: str | None = None) -> TValue:
        """v stored as (batch, channels, *spatial), what torch's convolutions read."""
        if (data_format or self.data_format) == "channels_first":
            return self.logical(v)
        return self.stored_as(v, channels_first_perm(v.rank))

    def result_perm(self, rank: int, data_format: str | None = None):
        """How a channels-first op's output is stored, for the layer's data_format."""
        if (data_format or self.data_format) == "channels_first":
            return None
        return channels_first_perm(rank)
