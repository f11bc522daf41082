"""Tensors in a generated `forward`, with the axis order they are stored in.

A `TValue` is a local variable of the forward function, the value's logical (Keras) type,
`perm` (how the stored axes relate to the logical ones: stored = logical.permute(perm);
None means stored as Keras orders it) and `mask`, the variable holding its Keras mask (a
bool tensor shaped like the logical value without its last axis), if it carries one.

Convolutions and pooling ask for channels-first storage, layout-agnostic layers
(activations, BatchNormalization, Add...) keep whatever they get, and layers that need
Keras's order (Dense, Flatten, recurrent layers...) ask for the logical tensor: a
channels_last CNN permutes once after its input and once where it leaves the conv stack,
as transpiler/emit/onnx does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from transpiler.graph.types import TensorType


@dataclass(frozen=True)
class TValue:
    var: str
    type: TensorType
    perm: tuple[int, ...] | None = None
    mask: str | None = None

    @property
    def rank(self) -> int:
        return self.type.rank

    def physical_axis(self, logical_axis: int) -> int:
        """Where a logical axis (negative allowed) is stored."""
        axis = logical_axis % self.rank
        return axis if self.perm is None else self.perm.index(axis)

    def with_(self, **changes) -> TValue:
        return replace(self, **changes)


def channels_first_perm(rank: int) -> tuple[int, ...]:
    """channels_last (N, spatial..., C) stored as (N, C, spatial...)."""
    return (0, rank - 1, *range(1, rank - 1))


def inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def permute_between(src: tuple[int, ...] | None, dst: tuple[int, ...] | None, rank: int):
    """The torch `permute` dims taking a tensor stored with `src` to storage `dst`
    (None: nothing to do)."""
    a = src or tuple(range(rank))
    b = dst or tuple(range(rank))
    dims = tuple(a.index(axis) for axis in b)
    return None if dims == tuple(range(rank)) else dims
