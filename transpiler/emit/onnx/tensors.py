"""Tensors during lowering, with the physical layout they are stored in.

A layer sees `LTensor`s: an ONNX value name, the logical (Keras) type, and `perm`, how the
stored axes relate to the logical ones (`physical = transpose(logical, perm)`; None means
stored as declared). Convolutions ask for channels-first storage, layout-agnostic layers
(activations, BatchNormalization, Add...) pass the layout through, and anything that needs
Keras's order asks for the logical tensor. So a channels_last CNN gets one Transpose after
its input and one before its Flatten, not one per layer.

`mask` is the value's Keras mask, when it carries one (Embedding(mask_zero=true) and the
layers that pass it on): the name of a bool tensor shaped like the logical value without
its last axis, (batch, time) for a sequence. Which layers carry, combine, consume or drop
it is transpiler.layers.masking's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.graph.types import TensorType


@dataclass(frozen=True)
class LTensor:
    name: str
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

    def physical_shape(self) -> tuple:
        shape = self.type.shape
        return shape if self.perm is None else tuple(shape[p] for p in self.perm)

    def like(self, name: str, type: TensorType | None = None) -> LTensor:
        """A new value with this one's layout (for layout-agnostic ops)."""
        return LTensor(name, type or self.type, self.perm)


def channels_first_perm(rank: int) -> tuple[int, ...]:
    """channels_last (N, spatial..., C) stored as (N, C, spatial...)."""
    return (0, rank - 1, *range(1, rank - 1))


def inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)
