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

Without a mask nothing here adds a node: models without one lower exactly as before.
"""

from __future__ import annotations

from dataclasses import replace

from transpiler.layers.base import autocast_type


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
