"""Tensors in a generated `forward`, with the axis order they are stored in.

A `TValue` (the ONNX emitter's LTensor) is a local variable of the forward function
(`name`), the value's logical (Keras) type, `perm` (how the stored axes relate to the
logical ones: stored = logical.permute(perm); None means stored as Keras orders it) and
`mask`, the variable holding its Keras mask (a bool tensor shaped like the logical value
without its last axis), if it carries one.

Convolutions and pooling ask for channels-first storage, layout-agnostic layers
(activations, BatchNormalization, Add...) keep whatever they get, and layers that need
Keras's order (Dense, Flatten, recurrent layers...) ask for the logical tensor: a
channels_last CNN permutes once after its input and once where it leaves the conv stack,
as transpiler/emit/onnx does.
"""

from __future__ import annotations

from transpiler.emit.onnx.tensors import LTensor, channels_first_perm, inverse

__all__ = ["TValue", "channels_first_perm", "inverse", "permute_between"]


#: the ONNX emitter's tensor: its `name` here is the forward function's variable
TValue = LTensor


def permute_between(src: tuple[int, ...] | None, dst: tuple[int, ...] | None, rank: int):
    """The torch `permute` dims taking a tensor stored with `src` to storage `dst`
    (None: nothing to do)."""
    a = src or tuple(range(rank))
    b = dst or tuple(range(rank))
    dims = tuple(a.index(axis) for axis in b)
    return None if dims == tuple(range(rank)) else dims
