"""Keras masks in lowering: where `Embedding(mask_zero=true)`'s mask goes and what it changes.

Keras 3 attaches a boolean mask to a tensor and carries it from layer to layer
(keras/src/layers/layer.py: `supports_masking`, `compute_mask`, `_set_mask_metadata`).
ktrans does the same while lowering: an `LTensor` carries `mask`, the name of a bool ONNX
value shaped like the logical value without its last axis ((batch, time) for a sequence),
and `lower_layer` (which the model emitters call for every node) sets the masks of a
layer's outputs by Keras's rules:

- `Embedding(mask_zero=true)` makes one: `ids != 0`;
- a layer with `supports_masking` passes its first input's mask to its (first) output;
  one without drops it, as Keras does (Keras warns, then computes as if there were none);
- a layer's `compute_mask` says otherwise where Keras's does: recurrent layers and
  Bidirectional keep it only with return_sequences, element-wise merges keep the OR of
  their inputs' masks when every input has one, Concatenate joins them, Dot and
  GlobalAveragePooling1D end it.

A layer that uses the mask reads `inputs[i].mask` in its `lower`: LSTM, GRU, SimpleRNN and
Bidirectional skip masked timesteps (recurrent_onnx.py, recurrent_cells.py),
GlobalAveragePooling1D averages the unmasked steps, MultiHeadAttention turns query, value
and key masks into its attention mask, Maximum / Minimum / Multiply leave masked entries
out; the training losses weight timesteps by the mask of the output they are computed on
(transpiler.emit.train.losses). Where Keras uses a mask in a way ktrans does not
reproduce, the layer raises NotImplementedError saying so, which the emitters report at
the layer's call site: never a silently different model.

A call may also pass a mask explicitly, as Keras's call() takes one (`LSTM(8)(x, mask=m)`,
GlobalAveragePooling1D, Bidirectional): `lower_node` makes it the first input's mask for
that call, and it is what `compute_mask` passes on (Keras's `previous_mask` is the
explicit mask). Nonzero entries keep a step, as Keras's casts to bool do.

Without a mask nothing here adds a node: models without one lower exactly as before.
"""

from __future__ import annotations

from dataclasses import replace

from transpiler.graph.types import dims_compatible, format_shape
from transpiler.layers.base import NO_CALL_ARGS, CallArg, CallArgs, autocast_type

#: the explicit `mask=` call argument of the layers whose Keras call() takes one
MASK_ARG = CallArg("mask", "keyword")


def lower_node(ctx, node, values: dict) -> list:
    """Lowers one graph node (`values`: id(graph Value) -> LTensor): the positional
    tensors go to `layer.lower`, the keyword tensors and flags are `ctx.call` meanwhile."""
    inputs = [values[id(v)] for v in node.positional]
    call = node.call
    if call is not NO_CALL_ARGS:
        tensors = {k: values[id(v)] for k, v in call.tensors.items()}
        call = CallArgs(tensors, dict(call.options))
        if "mask" in tensors:
            inputs[0] = replace(inputs[0], mask=bool_mask(ctx, tensors["mask"]))
    ctx.call = call
    try:
        return lower_layer(ctx, node.layer, inputs)
    finally:
        ctx.call = NO_CALL_ARGS


def bool_mask(ctx, t) -> str:
    """A mask tensor as bool (nonzero: keep), in Keras's axis order."""
    from transpiler.emit.onnx.builder import DTYPE_TO_ONNX

    t = ctx.logical(t)
    if t.type.dtype == "bool":
        return t.name
    return ctx.op("Cast", [t], to=DTYPE_TO_ONNX["bool"])


def check_mask_arg(layer, x, call: CallArgs) -> None:
    """An explicit mask= must be shaped like `x` without its last axis: (batch, steps)."""
    mask = call.tensors.get("mask")
    if mask is None:
        return
    want = x.shape[:-1]
    if mask.rank != len(want) or not all(map(dims_compatible, mask.shape, want)):
        layer.fail(
            f"{layer.keras_class()}: mask should have shape {format_shape(want)} (the input "
            f"{format_shape(x.shape)} without its last axis); got {format_shape(mask.shape)}",
            "a mask has one entry per sample and step: nonzero (or true) keeps the step",
            arg="mask",
        )


def lower_layer(ctx, layer, inputs: list) -> list:
    """`layer.lower(ctx, inputs)`, with its float inputs cast to float32 first where the
    layer autocasts (as Keras's layers do), and the Keras masks of its outputs set."""
    if layer.autocast:
        inputs = [_autocast(ctx, t) for t in inputs]
    outputs = layer.lower(ctx, inputs)
    if any(t.mask is not None for t in inputs):
        masks = layer.compute_mask(ctx, inputs, outputs)
        outputs = [t if t.mask == m else replace(t, mask=m) for t, m in zip(outputs, masks)]
    for t in outputs:
        if t.mask is not None:
            ctx.b.masks[t.name] = t.mask
        elif ctx.b.masks:
            ctx.b.masks.pop(t.name, None)
    return outputs


def _autocast(ctx, t):
    cast = autocast_type(t.type)
    if cast == t.type:
        return t
    return replace(t, name=ctx.op("Cast", [t.name], to=1), type=cast)  # 1: float32


def expand(ctx, mask: str) -> str:
    """(batch, time) -> (batch, time, 1): a mask against the logical value it belongs to."""
    return ctx.op("Unsqueeze", [mask, ctx.ints([-1], "axes")])


def mask_and(ctx, a: str | None, b: str | None) -> str | None:
    """Both masks (None: no mask, all true)."""
    if a is None or b is None:
        return a if b is None else b
    return ctx.op("And", [a, b])


def mask_or(ctx, masks: list[str]) -> str:
    out = masks[0]
    for m in masks[1:]:
        out = ctx.op("Or", [out, m])
    return out


def no_mask_for(layer, inputs: list, what: str, hint: str) -> None:
    """Raises the error of a layer that gets a mask Keras would use in a way ktrans does
    not reproduce (`what`: what Keras does)."""
    if any(t.mask is not None for t in inputs):
        raise NotImplementedError(
            f"its input carries a Keras mask (from Embedding(mask_zero=true)), and {what}; "
            f"ktrans does not reproduce that: {hint}"
        )
