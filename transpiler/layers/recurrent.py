"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras 3 signatures, weight layouts and outputs).

The wrappers Bidirectional and TimeDistributed live in `recurrent_wrappers.py` (imported at
the end of this module so that they register with the recurrent family).

Calls take the sequence, optionally followed by initial states: `[x]`, or `[x, h]`
(SimpleRNN, GRU) / `[x, h, c]` (LSTM), each state of shape (batch, units) — Keras's
`initial_state=` call argument.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from transpiler.graph.types import TensorType, dims_compatible, format_shape
from transpiler.layers.activations import activation
from transpiler.layers.args import (
    ArgError,
    boolean,
    describe,
    float_in,
    integer,
    name_of,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg, Layer, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.regularizers import regularizer


def _no_constraint(value):
    if value is not None:
        raise ArgError("constraints are not supported yet; remove the argument")
    return None


def _stateless(value) -> bool:
    if boolean(value):
        raise ArgError(
            "stateful=true is not supported: a ktrans model keeps no state between batches",
            "remove stateful, or pass the previous states in as initial-state inputs",
        )
    return False


def _use_cudnn(value):
    """'auto', true or false: a backend choice that does not change the model."""
    if isinstance(value, bool):
        return value
    if name_of(value) == "auto":
        return "auto"
    raise ArgError(f"expected auto, true or false, got {describe(value)}")


_RATE = float_in(0.0, 1.0, hi_open=True)


def _head(with_recurrent_activation: bool) -> tuple[Arg, ...]:
    acts = (Arg("activation", activation, "tanh"),)
    if with_recurrent_activation:
        acts += (Arg("recurrent_activation", activation, "sigmoid"),)
    return (
        Arg("units", positive_int),
        *acts,
        Arg("use_bias", boolean, True),
        Arg("kernel_initializer", initializer, "glorot_uniform"),
        Arg("recurrent_initializer", initializer, "orthogonal"),
        Arg("bias_initializer", initializer, "zeros"),
    )


_REGULARIZERS = (
    Arg("kernel_regularizer", regularizer, None),
    Arg("recurrent_regularizer", regularizer, None),
    Arg("bias_regularizer", regularizer, None),
    Arg("activity_regularizer", regularizer, None),
    Arg("kernel_constraint", _no_constraint, None),
    Arg("recurrent_constraint", _no_constraint, None),
    Arg("bias_constraint", _no_constraint, None),
    Arg("dropout", _RATE, 0.0),
    Arg("recurrent_dropout", _RATE, 0.0),
)

_SEED = Arg("seed", optional(integer), None)

_SEQUENCE = (
    Arg("return_sequences", boolean, False),
    Arg("return_state", boolean, False),
    Arg("go_backwards", boolean, False),
    Arg("stateful", _stateless, False),
    Arg("unroll", boolean, False),
)


# ---------------------------------------------------------------- ONNX lowering
#
# Inference runs on ONNX's RNN / LSTM / GRU ops, time-major (onnxruntime implements only
# layout=0): one Transpose to (time, batch, features) on the way in, and a returned
# sequence stays stored time-major (an LTensor with perm (1, 0, 2)), so stacked recurrent
# layers and TimeDistributed need no Transposes between them. An activation that ONNX's
# recurrent ops do not offer is lowered as an unrolled loop of the Keras cell math (the
# `*_step` helpers below), and that needs a known number of timesteps.
#
# Training (ctx.training) always unrolls the cell math, since ONNX's recurrent ops have no
# gradient rule, on the very tensors the inference lowering reads (so a trained state
# drops into the inference model by name): for a layer that inference runs on ONNX's op,
# its W (1, gates * units, in), R (1, gates * units, units) and B (1, 2 * gates * units),
# gates in ONNX's order; otherwise the Keras-layout weights. Every matmul is a Gemm (its
# gradient needs no Transpose; ONNX-layout weights are read with transB=1), the input
# projection is one Gemm over all timesteps, and Keras's dropout / recurrent_dropout masks
# are drawn once per sequence from ctx.uniform_noise.

#: a sequence stored (time, batch, features)
TIME_MAJOR = (1, 0, 2)

#: Keras activation -> (ONNX recurrent-op activation, alpha, beta); None = not needed
ONNX_RNN_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),  # Keras 3: relu6(x + 3) / 6
    "linear": ("Affine", 1.0, 0.0),
    "elu": ("Elu", 1.0, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
}

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


class Recurrent(Layer):
    """Shared behaviour of SimpleRNN, LSTM and GRU (Keras's RNN over a cell)."""

    family = "recurrent"
    has_training_mode = True  # dropout / recurrent_dropout
    #: gate blocks stacked along the last axis of kernel, recurrent_kernel and bias
    gates: ClassVar[int] = 1
    #: the cell's states, in Keras's order
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    num_inputs = (1, 2)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        x, *states = inputs
        self.expect_float(x)
        self.expect_rank(x, 3, "timesteps, features")
        features = self.need_known(x.shape[2], "feature size (last axis)")
        if self.unroll and not isinstance(x.shape[1], int):
            self.fail(
                f"{self.keras_class()}: cannot unroll over an unknown number of timesteps; "
                f"input is {format_shape(x.shape)}",
                "declare the time axis with a number, or remove unroll=true",
                arg="unroll",
            )
        self.check_states(x, states)
        width = self.gates * self.units
        weights = [
            self.weight(
                "kernel",
                (features, width),
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            ),
            self.weight(
                "recurrent_kernel",
                (self.units, width),
                self.recurrent_initializer,
                regularizer=self.recurrent_regularizer,
            ),
        ]
        if self.use_bias:
            weights.append(
                self.weight(
                    "bias",
                    self.bias_shape(),
                    self.bias_initializer,
                    regularizer=self.bias_regularizer,
                )
            )
        return weights

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def check_states(self, x: TensorType, states: list[TensorType]) -> None:
        n = len(self.state_names)
        if states and len(states) != n:
            names = ", ".join(self.state_names)
            self.fail(
                f"{self.keras_class()} takes {n} initial state{'s' if n > 1 else ''} "
                f"({names}); got {len(states)}",
                "pass the sequence alone, or the sequence followed by every state",
            )
        for name, s in zip(self.state_names, states):
            want = (x.shape[0], self.units)
            ok = (
                s.rank == 2
                and dims_compatible(s.shape[0], x.shape[0])
                and dims_compatible(s.shape[1], self.units)
            )
            if not ok:
                self.fail(
                    f"{self.keras_class()}: initial state {name} should have shape "
                    f"{format_shape(want)}; got {format_shape(s.shape)}",
                    f"a state has one row of {self.units} units per sample",
                )

    def output_types(self, inputs: list[TensorType]) -> list[TensorType]:
        x = inputs[0]
        batch, steps = x.shape[0], x.shape[1]
        shape = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        outputs = [TensorType(x.dtype, shape)]
        if self.return_state:
            outputs += [TensorType(x.dtype, (batch, self.units)) for _ in self.state_names]
        return outputs

    @property
    def num_outputs(self) -> int:
        return 1 + (len(self.state_names) if self.return_state else 0)

    def describe_config(self) -> str:
        flags = [f for f in ("return_sequences", "return_state", "go_backwards") if self.config[f]]
        return f"{self.keras_class()}({', '.join([str(self.units), *flags])})"

    # ------------------------------------------------------------ ONNX lowering

    #: the ONNX op, and the Keras gate blocks in ONNX's gate order
    onnx_op: ClassVar[str] = "RNN"
    onnx_gate_order: ClassVar[tuple[int, ...]] = (0,)

    def keras_activations(self) -> list[str]:
        """The cell's activations in the order of the ONNX op's `activations`."""
        return [self.activation]

    def onnx_attributes(self) -> dict | None:
        """activations / activation_alpha / activation_beta for the ONNX op; {} for the
        defaults; None when an activation has no ONNX recurrent-op equivalent."""
        names = self.keras_activations()
        if any(a not in ONNX_RNN_ACTIVATIONS for a in names):
            return None
        defaults = {"RNN": ["tanh"], "GRU": ["sigmoid", "tanh"]}.get(
            self.onnx_op, ["sigmoid", "tanh", "tanh"]
        )
        if names == defaults:
            return {}
        specs = [ONNX_RNN_ACTIVATIONS[a] for a in names]
        attrs = {"activations": [s[0] for s in specs]}
        for i, key in ((1, "activation_alpha"), (2, "activation_beta")):
            values = [s[i] for s in specs if s[i] is not None]
            if values:
                # onnxruntime takes the values in order for the functions that use them
                attrs[key] = values
        return attrs

    def _gates(self, a):
        """Keras gate blocks (last axis) in ONNX's order."""
        import numpy as np

        n = self.units
        return np.concatenate([a[..., g * n : (g + 1) * n] for g in self.onnx_gate_order], -1)

    def onnx_matrix(self, a):
        """Keras kernel (in, gates * units) -> ONNX W / R (1, gates * units, in)."""
        import numpy as np

        return np.ascontiguousarray(self._gates(a).T[None])

    def onnx_bias(self, b):
        """Keras bias -> ONNX B (1, 2 * gates * units): input biases, recurrent biases."""
        import numpy as np

        return np.concatenate([self._gates(b), np.zeros_like(b)])[None]

    def lower(self, ctx, inputs):
        x, *states = inputs
        return self.lower_sequence(ctx, x, states, RecurrentWeights(ctx, ctx.layer))

    def lower_sequence(self, ctx, x, states, weights: RecurrentWeights, flip_output=False):
        """Keras's outputs [y, *final states] for sequence `x` and initial `states`; with
        `flip_output` a returned sequence is reversed in time (what Bidirectional does to
        its backward layer's)."""
        out_types = self.output_types([x.type, *(s.type for s in states)])
        steps = x.type.shape[1]
        attrs = self.onnx_attributes()
        if ctx.training:
            if not isinstance(steps, int):
                raise NotImplementedError(
                    f"{self.keras_class()} trains as its cell math unrolled over the "
                    "timesteps, so training needs a known number of them; the input is "
                    f"{format_shape(x.type.shape)}: declare the time axis with a number"
                )
            y, finals = self._lower_unrolled(
                ctx, x, steps, states, weights, attrs is not None, flip_output
            )
        elif attrs is not None:
            y, finals = self._lower_onnx(ctx, time_major(ctx, x), states, weights, attrs)
            if y is not None and self.go_backwards != flip_output:
                y = flip_time(ctx, y)
        elif isinstance(steps, int):
            y, finals = self._lower_unrolled(ctx, x, steps, states, weights, False, flip_output)
        else:
            odd = [a for a in self.keras_activations() if a not in ONNX_RNN_ACTIVATIONS]
            raise NotImplementedError(
                f"activation '{odd[0]}' has no equivalent in ONNX's {self.onnx_op} op "
                f"(it offers {', '.join(sorted(ONNX_RNN_ACTIVATIONS))}), and the cell can "
                "only be unrolled over a known number of timesteps; declare the time axis "
                "with a number"
            )
        outs = []
        if self.return_sequences:
            outs.append(replace(x, name=y, type=out_types[0], perm=TIME_MAJOR))
        else:
            outs.append(replace(x, name=finals[0], type=out_types[0], perm=None))
        if self.return_state:
            outs += [replace(x, name=f, type=t, perm=None) for f, t in zip(finals, out_types[1:])]
        return outs

    def _finals_needed(self) -> int:
        if self.return_state:
            return len(self.state_names)
        return 0 if self.return_sequences else 1

    def _lower_onnx(self, ctx, xt, states, w: RecurrentWeights, attrs: dict):
        """The ONNX op: (time-major sequence or None, [final states (batch, units)])."""
        args = [
            xt,
            w("kernel", self.onnx_matrix, "onnx"),
            w("recurrent_kernel", self.onnx_matrix, "onnx"),
            w("bias", self.onnx_bias, "onnx") if self.use_bias else "",
            "",  # sequence_lens: every sequence is whole
        ]
        args += [ctx.op("Unsqueeze", [ctx.logical(s), ctx.ints([0], "axes")]) for s in states]
        while args[-1] == "":
            args.pop()
        if self.onnx_op == "GRU":
            attrs = {**attrs, "linear_before_reset": int(self.reset_after)}
        outs = ctx.op(
            self.onnx_op,
            args,
            1 + len(self.state_names),
            hidden_size=self.units,
            direction="reverse" if self.go_backwards else "forward",
            **attrs,
        )
        y = ctx.op("Squeeze", [outs[0], ctx.ints([1], "axes")]) if self.return_sequences else None
        finals = [
            ctx.op("Squeeze", [o, ctx.ints([0], "axes")])
            for o in outs[1 : 1 + self._finals_needed()]
        ]
        return y, finals

    def unrolled_weights(self, w: RecurrentWeights) -> dict[str, str]:
        """The initializers the `*_step` helpers read (Keras layouts)."""
        return {"kernel": w("kernel"), "recurrent_kernel": w("recurrent_kernel")} | (
            {"bias": w("bias")} if self.use_bias else {}
        )

    def onnx_cell_weights(self, ctx, w: RecurrentWeights) -> dict[str, str]:
        """What the `*_step` helpers read, taken from the ONNX op's W, R and B (training a
        layer whose inference runs on the op): kernel (gates * units, in) and
        recurrent_kernel (gates * units, units), gates in ONNX's order, and the bias
        (1, gates * units), B's input half. B's recurrent half, zeros for a Keras layer
        with one bias, is left out (it gets no gradient, so it stays zeros)."""
        axis0 = ctx.ints([0], "axes")
        out = {
            "kernel": ctx.op("Squeeze", [w("kernel", self.onnx_matrix, "onnx"), axis0]),
            "recurrent_kernel": ctx.op(
                "Squeeze", [w("recurrent_kernel", self.onnx_matrix, "onnx"), axis0]
            ),
        }
        if self.use_bias:
            out["bias"] = self._bias_half(ctx, w, 0)
        return out

    def _bias_half(self, ctx, w: RecurrentWeights, half: int) -> str:
        """B's input (0) or recurrent (1) half, (1, gates * units)."""
        width = self.gates * self.units
        bias = w("bias", self.onnx_bias, "onnx")
        args = [ctx.ints([half * width], "starts"), ctx.ints([(half + 1) * width], "ends")]
        return ctx.op("Slice", [bias, *args, ctx.ints([1], "axes")])

    def step(self, ops: CellOps, xw: str, states: list, w: dict) -> list:
        """One cell step: the new states (Keras order) from x @ kernel + bias."""
        return [simple_rnn_step(ops, self, xw, states[0], w)]

    def _dropout_mask_count(self) -> int:
        """Keras draws one mask for all gates, or (LSTM and GRU with recurrent_dropout,
        Keras's implementation 1) one per gate, for the input and for the state alike."""
        return self.gates if self.recurrent_dropout > 0 else 1

    def _lower_unrolled(
        self, ctx, x, steps: int, states, w: RecurrentWeights, onnx_layout: bool, flip_output
    ):
        """The cell math unrolled over `steps` timesteps, in Keras's order of operations:
        (the sequence as stored time-major, in Keras's output order or reversed with
        `flip_output`, or None; [the final states needed]). `onnx_layout`: on the ONNX
        op's W, R and B (training), else on the Keras-layout weights."""
        n, parts = self.units, self.gates
        if x.perm not in (None, TIME_MAJOR):
            x = ctx.logical(x)
        time_axis, batch_axis = x.physical_axis(1), x.physical_axis(0)
        features = x.type.shape[2]
        if onnx_layout:
            weights = self.onnx_cell_weights(ctx, w)
            transposed = [v for k, v in weights.items() if "kernel" in k]
            order = self.onnx_gate_order
        else:
            weights, transposed, order = self.unrolled_weights(w), [], None
        training = ctx.training
        input_masks = recurrent_masks = None
        count = self._dropout_mask_count()
        if training and self.dropout > 0:
            input_masks = dropout_masks(
                ctx, x.name, batch_axis, features, self.dropout, count, w.streams
            )
        if training and self.recurrent_dropout > 0:
            first = w.streams + RECURRENT_STREAMS
            recurrent_masks = dropout_masks(
                ctx, x.name, batch_axis, n, self.recurrent_dropout, count, first
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

        current = [ctx.logical(s).name for s in states] or [None] * len(self.state_names)
        outputs: dict[int, str] = {}
        order_t = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        for t in order_t:
            current = self.step(ops, slices[t], current, weights)
            outputs[t] = current[0]
        y = None
        if self.return_sequences:
            # Keras's order is the order of processing; Bidirectional's flip_output reverses
            # the backward layer's into time order
            keras_order = list(order_t)
            if flip_output:
                keras_order.reverse()
            axes = ctx.ints([0], "axes")
            y = ctx.op(
                "Concat", [ctx.op("Unsqueeze", [outputs[t], axes]) for t in keras_order], axis=0
            )
        return y, current[: self._finals_needed()]


@register
class SimpleRNN(Recurrent):
    """Fully connected RNN: `h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

    Args: units, activation=tanh, use_bias=true, kernel_initializer=glorot_uniform,
    recurrent_initializer=orthogonal, bias_initializer=zeros, kernel/recurrent/bias/activity
    regularizers, dropout=0.0, recurrent_dropout=0.0, return_sequences=false,
    return_state=false, go_backwards=false, stateful=false (true is rejected), unroll=false,
    seed=None.
    Input shape: (batch, timesteps, features), optionally followed by the initial state
    (batch, units).
    Output shape: (batch, units), or (batch, timesteps, units) with return_sequences; with
    return_state also the last state h (batch, units).
    Weights: kernel (features, units), recurrent_kernel (units, units), bias (units,).
    """

    signature = (*_head(False), *_REGULARIZERS, *_SEQUENCE, _SEED)


@register
class LSTM(Recurrent):
    """Long Short-Term Memory (Hochreiter 1997); gates in Keras's order i, f, c, o.

    Args: units, activation=tanh, recurrent_activation=sigmoid, use_bias=true,
    kernel_initializer=glorot_uniform, recurrent_initializer=orthogonal,
    bias_initializer=zeros, unit_forget_bias=true (the forget-gate block of the bias starts
    at 1), kernel/recurrent/bias/activity regularizers, dropout=0.0, recurrent_dropout=0.0,
    seed=None, return_sequences=false, return_state=false, go_backwards=false,
    stateful=false (true is rejected), unroll=false, use_cudnn=auto (no effect).
    Input shape: (batch, timesteps, features), optionally followed by the initial states
    h and c, each (batch, units).
    Output shape: (batch, units), or (batch, timesteps, units) with return_sequences; with
    return_state also the last states h and c, each (batch, units).
    Weights: kernel (features, 4*units), recurrent_kernel (units, 4*units), bias (4*units,).
    """

    gates = 4
    state_names = ("h", "c")
    num_inputs = (1, 3)
    signature = (
        *_head(True),
        Arg("unit_forget_bias", boolean, True),
        *_REGULARIZERS,
        _SEED,
        *_SEQUENCE,
        Arg("use_cudnn", _use_cudnn, "auto"),
    )

    onnx_op = "LSTM"
    onnx_gate_order = (0, 3, 1, 2)  # Keras i, f, c, o -> ONNX i, o, f, c

    def keras_activations(self) -> list[str]:
        return [self.recurrent_activation, self.activation, self.activation]

    def adjust_initial_value(self, weight: Weight, value):
        """unit_forget_bias: the forget-gate block of the initial bias is ones."""
        import numpy as np

        if weight.name == "bias" and self.unit_forget_bias:
            value = np.array(value, copy=True)
            value[self.units : 2 * self.units] = 1.0
        return value

    def step(self, ops, xw, states, w):
        return list(lstm_step(ops, self, xw, states[0], states[1], w))


@register
class GRU(Recurrent):
    """Gated Recurrent Unit (Cho et al. 2014); gates in Keras's order z, r, h.

    Args: units, activation=tanh, recurrent_activation=sigmoid, use_bias=true,
    kernel_initializer=glorot_uniform, recurrent_initializer=orthogonal,
    bias_initializer=zeros, kernel/recurrent/bias/activity regularizers, dropout=0.0,
    recurrent_dropout=0.0, seed=None, return_sequences=false, return_state=false,
    go_backwards=false, stateful=false (true is rejected), unroll=false,
    reset_after=true (apply the reset gate after the recurrent matmul, CuDNN-style),
    use_cudnn=auto (no effect).
    Input shape: (batch, timesteps, features), optionally followed by the initial state
    (batch, units).
    Output shape: (batch, units), or (batch, timesteps, units) with return_sequences; with
    return_state also the last state h (batch, units).
    Weights: kernel (features, 3*units), recurrent_kernel (units, 3*units), bias
    (2, 3*units) with reset_after (input bias row, recurrent bias row), else (3*units,).
    """

    gates = 3
    signature = (
        *_head(True),
        *_REGULARIZERS,
        _SEED,
        *_SEQUENCE,
        Arg("reset_after", boolean, True),
        Arg("use_cudnn", _use_cudnn, "auto"),
    )

    def bias_shape(self) -> tuple[int, ...]:
        width = self.gates * self.units
        return (2, width) if self.reset_after else (width,)

    onnx_op = "GRU"
    onnx_gate_order = (0, 1, 2)  # z, r, h in both

    def keras_activations(self) -> list[str]:
        return [self.recurrent_activation, self.activation]

    def onnx_bias(self, b):
        import numpy as np

        if self.reset_after:  # (2, 3 * units): input bias row, recurrent bias row
            return b.reshape(1, -1)
        return np.concatenate([b, np.zeros_like(b)])[None]

    def unrolled_weights(self, w):
        n = self.units
        out = {"kernel": w("kernel")}
        if self.reset_after:
            out["recurrent_kernel"] = w("recurrent_kernel")
        else:
            out["recurrent_kernel_zr"] = w("recurrent_kernel", lambda a: a[:, : 2 * n], "zr")
            out["recurrent_kernel_h"] = w("recurrent_kernel", lambda a: a[:, 2 * n :], "h")
        if self.use_bias:
            if self.reset_after:
                out["bias"] = w("bias", lambda b: b[0], "input")
                out["recurrent_bias"] = w("bias", lambda b: b[1], "recurrent")
            else:
                out["bias"] = w("bias")
        return out

    def onnx_cell_weights(self, ctx, w):
        out = super().onnx_cell_weights(ctx, w)
        n = self.units
        if not self.reset_after:
            rk = out.pop("recurrent_kernel")  # (3 * units, units): z, r | h
            for key, lo, hi in (
                ("recurrent_kernel_zr", 0, 2 * n),
                ("recurrent_kernel_h", 2 * n, 3 * n),
            ):
                args = [ctx.ints([lo], "starts"), ctx.ints([hi], "ends"), ctx.ints([0], "axes")]
                out[key] = ctx.op("Slice", [rk, *args])
        elif self.use_bias:
            out["recurrent_bias"] = self._bias_half(ctx, w, 1)
        return out

    def step(self, ops, xw, states, w):
        return [gru_step(ops, self, xw, states[0], w)]


# The wrappers register themselves on import; keep this at the end (they subclass nothing
# here but check for `Recurrent`).
from transpiler.layers import recurrent_wrappers  # noqa: E402, F401
