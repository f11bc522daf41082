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
# `*_step` helpers below, which a training lowering can reuse), and that needs a known
# number of timesteps.

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


class RecurrentWeights:
    """Where a recurrent layer's weights live: `<prefix><name>` of `owner` (the layer
    itself, or the Bidirectional / TimeDistributed wrapper holding them)."""

    def __init__(self, ctx, owner, prefix: str = "") -> None:
        self.ctx, self.owner, self.prefix = ctx, owner, prefix

    def __call__(self, name: str, transform=None, key: str = "") -> str:
        """The initializer holding the weight, converted by `transform`."""
        return self.ctx.weight(self.prefix + name, transform, key, layer=self.owner)


class CellOps:
    """The ops the unrolled cell math is written with, on ONNX value names."""

    def __init__(self, ctx, template) -> None:
        self.ctx = ctx
        self.template = template  # an LTensor whose dtype the activations see

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
        return self.ctx.op("MatMul", [a, b])

    def split(self, v: str, parts: int, size: int) -> list[str]:
        """`parts` blocks of `size` along the last axis."""
        return self.ctx.op("Split", [v, self.ctx.ints([size] * parts, "split")], parts, axis=-1)


def simple_rnn_step(ops: CellOps, layer, xw: str, h: str | None, w: dict) -> str:
    """Keras SimpleRNNCell: h = activation(x @ kernel + bias + h @ recurrent_kernel);
    `xw` is x @ kernel + bias, `h` None for a zero state."""
    z = xw if h is None else ops.add(xw, ops.matmul(h, w["recurrent_kernel"]))
    return ops.act(layer.activation, z)


def lstm_step(ops: CellOps, layer, xw: str, h: str | None, c: str | None, w: dict):
    """Keras LSTMCell (gates i, f, c, o): returns (h, c); None states are zeros."""
    z = xw if h is None else ops.add(xw, ops.matmul(h, w["recurrent_kernel"]))
    zi, zf, zc, zo = ops.split(z, 4, layer.units)
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
    xz, xr, xh = ops.split(xw, 3, n)
    if layer.reset_after:
        if h is None:
            inner = w.get("recurrent_bias")
            rz = rr = rh = None
            if inner is not None:
                rz, rr, rh = ops.split(inner, 3, n)
        else:
            inner = ops.matmul(h, w["recurrent_kernel"])
            if "recurrent_bias" in w:
                inner = ops.add(inner, w["recurrent_bias"])
            rz, rr, rh = ops.split(inner, 3, n)
        z = ops.act(layer.recurrent_activation, xz if rz is None else ops.add(xz, rz))
        r = ops.act(layer.recurrent_activation, xr if rr is None else ops.add(xr, rr))
        pre = xh if rh is None else ops.add(xh, ops.mul(r, rh))
    else:
        if h is None:
            z = ops.act(layer.recurrent_activation, xz)
            pre = xh
        else:
            rz, rr = ops.split(ops.matmul(h, w["recurrent_kernel_zr"]), 2, n)
            z = ops.act(layer.recurrent_activation, ops.add(xz, rz))
            r = ops.act(layer.recurrent_activation, ops.add(xr, rr))
            pre = ops.add(xh, ops.matmul(ops.mul(r, h), w["recurrent_kernel_h"]))
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
        xt = time_major(ctx, x)
        steps = x.type.shape[1]
        attrs = self.onnx_attributes()
        if attrs is not None:
            y, finals = self._lower_onnx(ctx, xt, states, weights, attrs)
        elif isinstance(steps, int):
            y, finals = self._lower_unrolled(ctx, x, xt, steps, states, weights)
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
            if self.go_backwards != flip_output:
                y = flip_time(ctx, y)
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

    def step(self, ops: CellOps, xw: str, states: list, w: dict) -> list:
        """One cell step: the new states (Keras order) from x @ kernel + bias."""
        return [simple_rnn_step(ops, self, xw, states[0], w)]

    def _lower_unrolled(self, ctx, x, xt, steps: int, states, w: RecurrentWeights):
        """The cell math unrolled over `steps` timesteps (Keras's order of operations)."""
        import numpy as np

        ops = CellOps(ctx, replace(x, type=x.type.with_shape((x.type.shape[0], self.units))))
        weights = self.unrolled_weights(w)
        xw = ops.matmul(xt, weights["kernel"])  # (time, batch, gates * units)
        if "bias" in weights:
            xw = ops.add(xw, weights["bias"])
        current = [ctx.logical(s).name for s in states] or [None] * len(self.state_names)
        outputs: dict[int, str] = {}
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        for t in order:
            xw_t = ctx.op("Gather", [xw, ctx.const(t, np.int64, "step")], axis=0)
            current = self.step(ops, xw_t, current, weights)
            outputs[t] = current[0]
        y = None
        if self.return_sequences:
            axes = ctx.ints([0], "axes")
            y = ctx.op(
                "Concat", [ctx.op("Unsqueeze", [outputs[t], axes]) for t in range(steps)], axis=0
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

    def step(self, ops, xw, states, w):
        return [gru_step(ops, self, xw, states[0], w)]


# The wrappers register themselves on import; keep this at the end (they subclass nothing
# here but check for `Recurrent`).
from transpiler.layers import recurrent_wrappers  # noqa: E402, F401
