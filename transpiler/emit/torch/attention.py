"""MultiHeadAttention (templates/torch_layers/attention.py: Keras's projections, with its
weights, masks and softmax paths). Its forward takes query, value and key by position
and the masks by name, as Keras's call does: the inputs' Keras masks (query_mask,
value_mask, key_mask) and the call's own attention_mask (nonzero: may attend) and
use_causal_mask."""

from __future__ import annotations

from transpiler.emit.torch.code import Atom, call, num
from transpiler.emit.torch.layer_emit import Out
from transpiler.emit.torch.registry import torch_layer


@torch_layer("MultiHeadAttention")
def multi_head_attention(e, inputs):
    layer = e.layer
    ts = [e.logical(t) for t in inputs]
    query, value = ts[0], ts[1]
    key = ts[2] if len(ts) == 3 else value
    rank = query.rank
    if layer.attention_axes_of(rank) != tuple(range(1, rank - 1)):
        e.fail(
            f"attention_axes={list(layer.attention_axes)}: only the default attention axes "
            f"(all axes between batch and features, here {list(range(1, rank - 1))}) are "
            "written"
        )
    if layer.sliding_window is not None and rank != 3:
        e.fail("sliding_window with inputs of rank above 3")
    masks = [t.mask for t in inputs]
    if any(masks) and rank != 3:
        e.fail(
            "Keras masks (from Embedding(mask_zero=true)) on inputs of rank above 3: "
            "Keras lines them up with the wrong attention axes"
        )
    out_shape = layer.output_shape or (query.type.shape[-1],)
    args = [
        num(query.type.shape[-1]),
        num(value.type.shape[-1]),
        num(key.type.shape[-1]),
        num(layer.num_heads),
        num(layer.key_dim),
        num(layer.head_value_dim),
        num(tuple(out_shape)),
    ]
    kwargs = {}
    if not layer.use_bias:
        kwargs["use_bias"] = Atom("False")
    if layer.dropout:
        kwargs["dropout"] = num(float(layer.dropout))
    if layer.use_gate:
        kwargs["use_gate"] = Atom("True")
    if layer.sliding_window is not None:
        kwargs["sliding_window"] = num(layer.sliding_window)
    ctor = call(e.helper("MultiHeadAttention"), *args, **kwargs)
    weights = {w.name: (w.name.replace("/", "."), "") for w in layer.weights}
    module = e.module(ctor, weights)
    call_args = [e.ref(t) for t in ts]
    given = {}
    for name, mask in zip(("query_mask", "value_mask", "key_mask"), masks):
        if mask is not None:
            given[name] = Atom(mask)
    attention_mask = e.call.tensors.get("attention_mask")
    if attention_mask is not None:
        given["attention_mask"] = e.ref(e.logical(attention_mask))
    if e.call.options.get("use_causal_mask"):
        given["use_causal_mask"] = Atom("True")
    return [Out(call(module, *call_args, **given), e.types[0])]
