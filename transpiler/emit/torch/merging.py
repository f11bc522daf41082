"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Inputs stored in one layout merge as they are (a residual Add of two channels-first
conv outputs needs no permute); mixed layouts, and inputs of different ranks (which
Keras broadcasts by adding axes after the batch axis), merge in Keras's order. Keras
masks: the output of an element-wise merge carries the OR of its inputs' masks when
every input has one; Multiply, Maximum and Minimum leave masked entries out;
Concatenate joins the masks.
"""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, Seq, call, method, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer

ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


def common_layout(e, inputs):
    """The inputs as stored if they share a layout, else all in Keras's order."""
    if len({t.perm for t in inputs}) == 1 and len({t.rank for t in inputs}) == 1:
        return list(inputs)
    return [e.logical(t) for t in inputs]


def or_masks(masks):
    """The OR of the masks, or None when an input has none."""
    if not masks or any(m is None for m in masks):
        return None
    return Atom(" | ".join(masks))


@torch_layer(*ELEMENTWISE, sets_masks=True)
def elementwise(e, inputs):
    name = e.layer.keras_class()
    masks = [t.mask for t in inputs]
    module = e.module(call(e.helper(name)))
    if any(masks) and name in ("Multiply", "Maximum", "Minimum"):
        if len({t.rank for t in inputs}) > 1:
            e.fail(
                "inputs of different ranks, one of them with a Keras mask (from "
                "Embedding(mask_zero=true)): Keras reshapes the smaller ones and their "
                "masks no longer line up; give the inputs one rank"
            )
        ts = [e.logical(t) for t in inputs]
        given = Seq("(", ")", [Atom(m or "None") for m in masks])
        y = call(module, *(e.ref(t) for t in ts), masks=given)
        return [Out(y, e.types[0], None, or_masks(masks))]
    ts = common_layout(e, inputs)
    y = call(module, *(e.ref(t) for t in ts))
    return [Out(y, e.types[0], ts[0].perm, or_masks(masks))]


@torch_layer("Concatenate", sets_masks=True)
def concatenate(e, inputs):
    masks = [t.mask for t in inputs]
    ts = [e.logical(t) for t in inputs] if any(masks) else common_layout(e, inputs)
    axis = ts[0].physical_axis(e.layer.axis)
    dim = -1 if axis == ts[0].rank - 1 else axis
    module = e.module(call(e.helper("Concatenate"), **({} if dim == -1 else {"dim": num(dim)})))
    refs = [e.ref(t) for t in ts]
    mask = None
    if any(masks):
        given = Seq("(", ")", [Atom(m or "None") for m in masks])
        mask = method(module, "compute_mask", Seq("(", ")", refs), given)
    if len(ts) == 1:
        return [Out(refs[0], e.types[0], ts[0].perm, Atom(masks[0]) if masks[0] else None)]
    return [Out(call(module, *refs), e.types[0], ts[0].perm, mask)]


@torch_layer("Dot")
def dot(e, inputs):
    ts = [e.logical(t) for t in inputs]
    raw = e.layer.axes if isinstance(e.layer.axes, tuple) else (e.layer.axes,) * 2
    axes = tuple(a % t.rank for a, t in zip(raw, ts))
    kwargs = {"normalize": Atom("True")} if e.layer.normalize else {}
    module = e.module(call(e.helper("Dot"), num(axes), **kwargs))
    return [Out(call(module, *(e.ref(t) for t in ts)), e.types[0])]
