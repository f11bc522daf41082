"""Recurrent layers: SimpleRNN, LSTM, GRU (templates/torch_layers/recurrent.py: the Keras
loop and cells, with Keras's weights), Bidirectional, and TimeDistributed (time folded
into the batch around the wrapped layer's own code).

Keras hands a recurrent layer the sequence's mask only when the sequence is its one
tensor argument: with initial states that mask goes unused, and still travels on with a
returned sequence. A call's own `mask=` is used either way (the scope makes it the
sequence's mask for that call, so it is also the one passed on).
"""

from __future__ import annotations

from dataclasses import replace

from transpiler.emit.torch.activations import activation_callable
from transpiler.emit.torch.code import Atom, Seq, call, method, num, pystr
from transpiler.emit.torch.layer_emit import Out, Unpack
from transpiler.emit.torch.registry import TORCH_LAYERS, torch_layer
from transpiler.emit.torch.values import TValue


def recurrent_ctor(e, layer, input_size: int):
    """The constructor of the Keras-exact module for a SimpleRNN, LSTM or GRU."""
    kwargs = {}
    if layer.activation != "tanh":
        kwargs["activation"] = activation_callable(layer.activation)
    recurrent = getattr(layer, "recurrent_activation", "sigmoid")
    if recurrent != "sigmoid":
        kwargs["recurrent_activation"] = activation_callable(recurrent)
    for flag in ("return_sequences", "return_state", "go_backwards"):
        if getattr(layer, flag):
            kwargs[flag] = Atom("True")
    if not layer.use_bias:
        kwargs["use_bias"] = Atom("False")
    for rate in ("dropout", "recurrent_dropout"):
        if getattr(layer, rate):
            kwargs[rate] = num(float(getattr(layer, rate)))
    if not getattr(layer, "reset_after", True):
        kwargs["reset_after"] = Atom("False")
    cls = e.helper(layer.keras_class())
    return call(cls, num(input_size), num(layer.units), **kwargs)


def _weights(layer, prefix: str = "") -> dict:
    names = ["kernel", "recurrent_kernel"] + (["bias"] if layer.use_bias else [])
    return {f"{layer.name}/{n}" if prefix else n: (f"{prefix}{n}", "") for n in names}


def _call(e, module, x: TValue, states: list[TValue]):
    """`module(x, mask=..., initial_state=[...])`, with what Keras hands the layer."""
    kwargs = {}
    if x.mask is not None and (not states or "mask" in e.call.tensors):
        kwargs["mask"] = Atom(x.mask)
    if states:
        kwargs["initial_state"] = Seq("[", "]", [e.ref(s) for s in states])
    return call(module, e.ref(x), **kwargs)


@torch_layer("SimpleRNN", "LSTM", "GRU", sets_masks=True)
def recurrent(e, inputs):
    layer = e.layer
    x, *states = (e.logical(t) for t in inputs)
    module = e.module(recurrent_ctor(e, layer, x.type.shape[2]), _weights(layer))
    expr = _call(e, module, x, states)
    mask = Atom(x.mask) if layer.return_sequences and x.mask else None
    types = e.types
    if layer.return_state:
        return Unpack(expr, [Out(None, types[0], None, mask)] + [Out(None, t) for t in types[1:]])
    return [Out(expr, types[0], None, mask)]


@torch_layer("Bidirectional", sets_masks=True)
def bidirectional(e, inputs):
    layer = e.layer
    x, *states = (e.logical(t) for t in inputs)
    fwd, bwd = layer.forward_layer, layer.backward_layer
    features = x.type.shape[2]
    kwargs = {}
    if layer.merge_mode != "concat":
        mode = layer.merge_mode
        kwargs["merge_mode"] = Atom("None" if mode is None else pystr(mode))
    ctor = call(
        e.helper("Bidirectional"),
        recurrent_ctor(e, fwd, features),
        recurrent_ctor(e, bwd, features),
        **kwargs,
    )
    weights = _weights(fwd, "forward_layer.") | _weights(bwd, "backward_layer.")
    module = e.module(ctor, weights)
    expr = _call(e, module, x, states)
    mask = Atom(x.mask) if layer.return_sequences and x.mask else None
    types = e.types
    sequences = 1 if layer.merge_mode else 2
    outs = [Out(None, t, None, mask if i < sequences else None) for i, t in enumerate(types)]
    if len(outs) == 1:
        outs[0].expr = expr
        return outs
    return Unpack(expr, outs)


#: wrapped layers that act on each time step alike without folding time into batch
STEPWISE = ("Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "GaussianNoise")


@torch_layer("TimeDistributed")
def time_distributed(e, inputs):
    """The wrapped layer's code on (batch * time, ...), then back to (batch, time, ...)."""
    x = e.logical(inputs[0])
    inner = e.layer.layer
    out_type = e.types[0]
    child_out = out_type.with_shape((out_type.shape[0], *out_type.shape[2:]))
    emitter = TORCH_LAYERS.get(type(inner).__name__)
    if emitter is None:
        e.fail(f"no PyTorch code is written for {inner.keras_class()} yet")
    if x.mask is not None:
        takes = inner.keras_class() in ("SimpleRNN", "LSTM", "GRU", "Bidirectional")
        takes = takes or inner.keras_class() in ("TimeDistributed", "Softmax")
        takes = takes or inner.keras_class() == "GlobalAveragePooling1D"
        if takes:
            e.fail(
                "its input carries a Keras mask, which Keras hands, one time slice at a "
                f"time, to the wrapped {inner.keras_class()}; that is not reproduced"
            )
        x = replace(x, mask=None)
    if inner.keras_class() in STEPWISE:
        (out,) = emitter.emit(e.wrapped(inner, f"{inner.name}/", [out_type]), [x])
        out.perm = None
        return [out]
    child_in = x.type.with_shape((x.type.shape[0], *x.type.shape[2:]))
    folded = e.temp(method(e.ref(x), "flatten", num(0), num(1)), x, child_in, perm=None)
    result = emitter.emit(e.wrapped(inner, f"{inner.name}/", [child_out]), [folded])
    (out,) = result if isinstance(result, list) else result.outs
    y = e.logical(e.temp(out.expr, folded, child_out, perm=out.perm))
    unfolded = method(e.ref(y), "unflatten", num(0), Atom(f"{x.name}.shape[:2]"))
    return [Out(unfolded, out_type)]
