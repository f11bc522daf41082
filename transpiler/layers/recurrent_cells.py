"""The Keras cell math of SimpleRNN, LSTM and GRU, written as ONNX ops, and the unrolled loop.

Training (ctx.training) always unrolls the cell math, since ONNX's recurrent ops have no
gradient rule, on the very tensors the inference lowering reads (so a trained state drops
into the inference model by name): for a layer that inference runs on ONNX's op, its W
(1, gates * units, in), R (1, gates * units, units) and B (1, 2 * gates * units), gates in
ONNX's order; otherwise the Keras-layout weights. Inference unrolls it too for an
activation ONNX's recurrent ops lack. Every matmul is a Gemm (its gradient needs no
Transpose; ONNX-layout weights are read with transB=1), the input projection is one Gemm
over all timesteps, and Keras's dropout / recurrent_dropout masks are drawn once per
sequence from ctx.uniform_noise.

No numpy at module level: `ktrans check` imports the layers without it.
"""

from __future__ import annotations

from dataclasses import replace

#: a sequence stored (time, batch, features)
TIME_MAJOR = (1, 0, 2)


#: uniform_noise streams of one recurrent layer: input masks from 0, recurrent masks from
#: RECURRENT_STREAMS (one per Keras gate); a Bidirectional's backward layer adds
#: BACKWARD_STREAMS
RECURRENT_STREAMS = 8
BACKWARD_STREAMS = 16


class RecurrentWeights:
    """Where a recurrent layer's weights live: `<prefix><name>` of `owner` (the layer
    itself, or the Bidirectional / TimeDistributed wrapper holding them). `streams` is the
    first ctx.uniform_noise stream of the layer's dropout masks (a wrapper holding two
    layers gives them different ones)."""

    def __init__(self, ctx, owner, prefix: str = "", streams: int = 0) -> None:
        self.ctx, self.owner, self.prefix, self.streams = ctx, owner, prefix, streams

    def __call__(self, name: str, transform=None, key: str = "") -> str:
        """The initializer holding the weight, converted by `transform`."""
        return self.ctx.weight(self.prefix + name, transform, key, layer=self.owner)


class CellOps:
    """The ops the unrolled cell math is written with, on ONNX value names.

    `gate_order`: storage block k of the gate-stacked weights holds Keras gate
    gate_order[k] (None: Keras's order); `transposed`: weights stored (gates * units, in),
    ONNX's layout, rather than Keras's (in, gates * units); `recurrent_masks`: Keras's
    recurrent-dropout masks (batch, units), one for all gates or one per Keras gate."""

    def __init__(self, ctx, template, gate_order=None, transposed=(), recurrent_masks=None):
        self.ctx = ctx
        self.template = template  # an LTensor whose dtype the activations see
        self.gate_order = tuple(gate_order) if gate_order else None
        self.transposed = set(transposed)
        self.recurrent_masks = recurrent_masks or None
        self._blocks: dict[tuple, str] = {}

    def act(self, name: str, v: str) -> str:
        t = replace(self.template, name=v, perm=None)
        return self.ctx.activation(t, name).name

    def add(self, a: str, b: str) -> str:
        return self.ctx.op("Add", [a, b])

    def sub(self, a: str, b: str) -> str:
        return self.ctx.op("Sub", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.ctx.op("Mul", [a, b])

    def matmul(self, a: str, b: str) -> str:
        """a (rows, in) @ the weight b; a Gemm, whose gradient needs no Transpose."""
        return self.ctx.op("Gemm", [a, b], transB=1 if b in self.transposed else None)

    def split(self, v: str, parts: int, size: int) -> list[str]:
        """`parts` blocks of `size` along the last axis."""
        return self.ctx.op("Split", [v, self.ctx.ints([size] * parts, "split")], parts, axis=-1)

    def gates(self, parts: int) -> tuple[int, ...]:
        """The Keras gates of a weight's `parts` stored blocks, in storage order."""
        if self.gate_order and len(self.gate_order) == parts:
            return self.gate_order
        return tuple(range(parts))

    def split_gates(self, v: str, parts: int, size: int) -> list[str]:
        """The `parts` gate blocks of `v` (stored in the weights' order), in Keras's order."""
        blocks = self.split(v, parts, size)
        out = [""] * parts
        for block, gate in zip(blocks, self.gates(parts)):
            out[gate] = block
        return out

    def block(self, weight: str, k: int, size: int) -> str:
        """Block k (of `size` units) of a gate-stacked weight (or bias)."""
        key = (weight, k)
        if key not in self._blocks:
            axis = 0 if weight in self.transposed else -1
            args = [weight, self.ctx.ints([k * size], "starts"), self.ctx.ints([(k + 1) * size])]
            self._blocks[key] = self.ctx.op("Slice", [*args, self.ctx.ints([axis], "axes")])
            if weight in self.transposed:
                self.transposed.add(self._blocks[key])
        return self._blocks[key]

    def recur(self, h: str, kernel: str, parts: int, size: int) -> str:
        """h @ kernel (a weight of `parts` gate blocks of `size`), with Keras's
        recurrent-dropout masks on h: one for all gates, or one per gate."""
        masks = self.recurrent_masks
        if not masks:
            return self.matmul(h, kernel)
        if len(masks) == 1:
            return self.matmul(self.mul(h, masks[0]), kernel)
        gates = self.gates(parts)
        products = [
            self.matmul(self.mul(h, masks[gate]), self.block(kernel, k, size))
            for k, gate in enumerate(gates)
        ]
        return products[0] if parts == 1 else self.ctx.op("Concat", products, axis=-1)

    def masked(self, h: str, gate: int) -> str:
        """h with Keras gate `gate`'s recurrent-dropout mask (h itself without dropout)."""
        masks = self.recurrent_masks
        if not masks:
            return h
        return self.mul(h, masks[gate if len(masks) > 1 else 0])


def simple_rnn_step(ops: CellOps, layer, xw: str, h: str | None, w: dict) -> str:
    """Keras SimpleRNNCell: h = activation(x @ kernel + bias + h @ recurrent_kernel);
    `xw` is x @ kernel + bias, `h` None for a zero state."""
    n = layer.units
    z = xw if h is None else ops.add(xw, ops.recur(h, w["recurrent_kernel"], 1, n))
    return ops.act(layer.activation, z)


def lstm_step(ops: CellOps, layer, xw: str, h: str | None, c: str | None, w: dict):
    """Keras LSTMCell (gates i, f, c, o): returns (h, c); None states are zeros."""
    n = layer.units
    z = xw if h is None else ops.add(xw, ops.recur(h, w["recurrent_kernel"], 4, n))
    zi, zf, zc, zo = ops.split_gates(z, 4, n)
    i = ops.act(layer.recurrent_activation, zi)
    g = ops.mul(i, ops.act(layer.activation, zc))
    if c is None:
        c = g
    else:
        f = ops.act(layer.recurrent_activation, zf)
        c = ops.add(ops.mul(f, c), g)
    o = ops.act(layer.recurrent_activation, zo)
    return ops.mul(o, ops.act(layer.activation, c)), c


def gru_step(ops: CellOps, layer, xw: str, h: str | None, w: dict) -> str:
    """Keras GRUCell (gates z, r, h; reset_after applies the reset gate after the
    recurrent matmul): h = z * h + (1 - z) * hh; a None state is zeros."""
    n = layer.units
    xz, xr, xh = ops.split_gates(xw, 3, n)
    if layer.reset_after:
        if h is None:
            inner = w.get("recurrent_bias")
            rz = rr = rh = None
            if inner is not None:
                rz, rr, rh = ops.split_gates(inner, 3, n)
        else:
            inner = ops.recur(h, w["recurrent_kernel"], 3, n)
            if "recurrent_bias" in w:
                inner = ops.add(inner, w["recurrent_bias"])
            rz, rr, rh = ops.split_gates(inner, 3, n)
        z = ops.act(layer.recurrent_activation, xz if rz is None else ops.add(xz, rz))
        r = ops.act(layer.recurrent_activation, xr if rr is None else ops.add(xr, rr))
        pre = xh if rh is None else ops.add(xh, ops.mul(r, rh))
    else:
        if h is None:
            z = ops.act(layer.recurrent_activation, xz)
            pre = xh
        else:
            rz, rr = ops.split(ops.recur(h, w["recurrent_kernel_zr"], 2, n), 2, n)
            z = ops.act(layer.recurrent_activation, ops.add(xz, rz))
            r = ops.act(layer.recurrent_activation, ops.add(xr, rr))
            hr = ops.mul(r, ops.masked(h, 2))
            pre = ops.add(xh, ops.matmul(hr, w["recurrent_kernel_h"]))
    hh = ops.act(layer.activation, pre)
    one_minus_z = ops.sub(ops.ctx.const(1.0), z)
    new = ops.mul(one_minus_z, hh)
    return new if h is None else ops.add(ops.mul(z, h), new)


def time_major(ctx, x):
    """The (time, batch, features) value of a rank-3 LTensor, in one Transpose at most."""
    perm = [x.physical_axis(a) for a in TIME_MAJOR]
    if perm == [0, 1, 2]:
        return x.name
    return ctx.op("Transpose", [x], perm=perm)


def flip_time(ctx, y: str) -> str:
    """A time-major sequence reversed in time."""
    import numpy as np

    big = np.iinfo(np.int64).max
    args = [y, ctx.ints([-1], "starts"), ctx.ints([-big], "ends"), ctx.ints([0], "axes")]
    return ctx.op("Slice", [*args, ctx.ints([-1], "steps")])


def dropout_masks(ctx, x: str, batch_axis: int, width: int, rate: float, count: int, stream):
    """`count` Keras dropout masks (batch, width) for the batch of `x`: 0, or 1 / (1 - rate)
    with probability 1 - rate, from ctx.uniform_noise streams `stream`, `stream + 1`..."""
    from transpiler.emit.onnx.tensors import LTensor

    batch = ctx.op("Shape", [x], start=batch_axis, end=batch_axis + 1)
    shape = ctx.op("Concat", [batch, ctx.ints([width])], axis=0)
    like = LTensor(ctx.op("ConstantOfShape", [shape]), None)
    masks = []
    for j in range(count):
        keep = ctx.op("GreaterOrEqual", [ctx.uniform_noise(like, stream + j), ctx.const(rate)])
        scale = ctx.const(1.0 / (1.0 - rate))
        masks.append(ctx.op("Mul", [ctx.op("Cast", [keep], to=1), scale]))
    return masks


def lower_unrolled(
    layer,
    ctx,
    x,
    steps: int,
    states,
    w: RecurrentWeights,
    onnx_layout: bool,
    flip_output,
    zero_output: bool = False,
):
    """The cell math unrolled over `steps` timesteps, in Keras's order of operations:
    (the sequence as stored time-major, in Keras's output order or reversed with
    `flip_output`, or None; the last output; [the final states needed]). `onnx_layout`:
    on the ONNX op's W, R and B (training), else on the Keras-layout weights.

    With a Keras mask on `x` (batch, time), a masked step keeps the states as they were
    and outputs the previous step's output (zeros before the first kept step), or zeros
    with `zero_output` (Keras's zero_output_for_mask): keras.src.backend.torch.rnn."""
    n, parts = layer.units, layer.gates
    if x.perm not in (None, TIME_MAJOR):
        x = ctx.logical(x)
    time_axis, batch_axis = x.physical_axis(1), x.physical_axis(0)
    features = x.type.shape[2]
    if onnx_layout:
        weights = layer.onnx_cell_weights(ctx, w)
        transposed = [v for k, v in weights.items() if "kernel" in k]
        order = layer.onnx_gate_order
    else:
        weights, transposed, order = layer.unrolled_weights(w), [], None
    training = ctx.training
    input_masks = recurrent_masks = None
    count = layer._dropout_mask_count()
    if training and layer.dropout > 0:
        input_masks = dropout_masks(
            ctx, x.name, batch_axis, features, layer.dropout, count, w.streams
        )
    if training and layer.recurrent_dropout > 0:
        first = w.streams + RECURRENT_STREAMS
        recurrent_masks = dropout_masks(
            ctx, x.name, batch_axis, n, layer.recurrent_dropout, count, first
        )
    state_type = x.type.with_shape((x.type.shape[0], n))
    ops = CellOps(ctx, replace(x, type=state_type), order, transposed, recurrent_masks)

    # x @ kernel + bias for every timestep at once: (rows, gates * units)
    def rows(v: str) -> str:
        return ctx.op("Reshape", [v, ctx.ints([-1, features])])

    def per_sample(mask: str) -> str:  # (batch, features) against the stored x
        return mask if time_axis == 0 else ctx.op("Unsqueeze", [mask, ctx.ints([1], "axes")])

    kernel, bias = weights["kernel"], weights.get("bias")
    if input_masks and len(input_masks) > 1:
        blocks = [
            ops.matmul(
                rows(ctx.op("Mul", [x.name, per_sample(input_masks[gate])])),
                ops.block(kernel, k, n),
            )
            for k, gate in enumerate(ops.gates(parts))
        ]
        xw = ctx.op("Concat", blocks, axis=-1)
        if bias is not None:
            xw = ctx.op("Add", [xw, bias])
    else:
        xs = x.name
        if input_masks:
            xs = ctx.op("Mul", [xs, per_sample(input_masks[0])])
        args = [rows(xs), kernel] + ([bias] if bias is not None else [])
        xw = ctx.op("Gemm", args, transB=1 if kernel in transposed else None)
    stored = [-1, steps, parts * n] if time_axis == 1 else [steps, -1, parts * n]
    xw = ctx.op("Reshape", [xw, ctx.ints(stored)])
    axis = ctx.ints([time_axis], "axes")
    if steps == 1:
        slices = [ctx.op("Squeeze", [xw, axis])]
    else:
        pieces = ctx.op("Split", [xw, ctx.ints([1] * steps, "split")], steps, axis=time_axis)
        slices = [ctx.op("Squeeze", [p, axis]) for p in pieces]

    current = [ctx.logical(s).name for s in states] or [None] * len(layer.state_names)
    outputs: dict[int, str] = {}
    order_t = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
    keep = _step_masks(ctx, x.mask, steps)
    last = zero = ctx.const(0.0) if keep else None
    for t in order_t:
        new = layer.step(ops, slices[t], current, weights)
        if keep is None:
            current = new
            outputs[t] = last = current[0]
            continue
        m = keep[t]
        current = [ctx.op("Where", [m, n, zero if c is None else c]) for n, c in zip(new, current)]
        outputs[t] = last = ctx.op("Where", [m, new[0], zero if zero_output else last])
    y = None
    if layer.return_sequences:
        # Keras's order is the order of processing; Bidirectional's flip_output reverses
        # the backward layer's into time order
        keras_order = list(order_t)
        if flip_output:
            keras_order.reverse()
        axes = ctx.ints([0], "axes")
        y = ctx.op("Concat", [ctx.op("Unsqueeze", [outputs[t], axes]) for t in keras_order], axis=0)
    return y, last, current[: layer._finals_needed()]


def _step_masks(ctx, mask: str | None, steps: int) -> list[str] | None:
    """A (batch, time) Keras mask as one (batch, 1) mask per timestep."""
    if mask is None:
        return None
    if steps == 1:
        return [mask]
    return ctx.op("Split", [mask, ctx.ints([1] * steps, "split")], steps, axis=1)
