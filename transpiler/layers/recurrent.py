"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras 3 signatures, weight layouts and outputs).

The wrappers Bidirectional and TimeDistributed live in `recurrent_wrappers.py` (imported at
the end of this module so that they register with the recurrent family).

Calls take the sequence, optionally followed by initial states: `[x]`, or `[x, h]`
(SimpleRNN, GRU) / `[x, h, c]` (LSTM), each state of shape (batch, units) — Keras's
`initial_state=` call argument, which a .kdl call names too (`LSTM(8)(x,
initial_state=[h, c])`, see `call_signature`), as it may `mask=`.

Split in three: this module holds the layer classes (signatures, build, output types);
`recurrent_onnx.py` their ONNX lowering (a mixin of `Recurrent`); `recurrent_cells.py` the
Keras cell math and the unrolled loop used for training and for activations ONNX lacks.
"""

from __future__ import annotations

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
    no_constraint,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg, CallArg, Layer, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.masking import MASK_ARG, check_mask_arg
from transpiler.layers.recurrent_cells import (  # noqa: F401  (re-exported)
    BACKWARD_STREAMS,
    RECURRENT_STREAMS,
    TIME_MAJOR,
    CellOps,
    RecurrentWeights,
    dropout_masks,
    gru_step,
    lower_unrolled,
    lstm_step,
    simple_rnn_step,
)
from transpiler.layers.recurrent_onnx import (  # noqa: F401  (re-exported)
    ONNX_RNN_ACTIVATIONS,
    RecurrentLowering,
    flip_time,
    time_major,
)
from transpiler.layers.regularizers import regularizer


def _stateless(value) -> bool:
    if boolean(value):
        raise ArgError(  # after "LSTM: stateful "
            "is not supported: a ktrans model keeps no state between batches",
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
    Arg("kernel_constraint", no_constraint, None),
    Arg("recurrent_constraint", no_constraint, None),
    Arg("bias_constraint", no_constraint, None),
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


class Recurrent(RecurrentLowering, Layer):
    """Shared behaviour of SimpleRNN, LSTM and GRU (Keras's RNN over a cell); the ONNX
    lowering comes from RecurrentLowering (recurrent_onnx.py)."""

    family = "recurrent"
    has_training_mode = True  # dropout / recurrent_dropout
    supports_masking = True  # masked timesteps are skipped (see compute_mask)
    #: gate blocks stacked along the last axis of kernel, recurrent_kernel and bias
    gates: ClassVar[int] = 1
    #: the cell's states, in Keras's order
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    num_inputs = (1, 2)
    call_signature = (
        CallArg("sequences", "tensor", True),
        CallArg("initial_state", "states"),
        MASK_ARG,
    )

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

    def check_call(self, inputs, call) -> None:
        check_mask_arg(self, inputs[0], call)

    def check_states(self, x: TensorType, states: list[TensorType]) -> None:
        n = len(self.state_names)
        if states and len(states) != n:
            names = ", ".join(self.state_names)
            self.fail(
                f"{self.keras_class()} takes {n} initial state{'s' if n > 1 else ''} "
                f"({names}); got {len(states)}",
                f"pass every state, initial_state=[{names}], or none (the states then start "
                "at zeros)",
                arg="initial_state",
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
                    arg="initial_state",
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


@register
class SimpleRNN(Recurrent):
    """Fully connected RNN: `h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

    Args: units, activation=tanh, use_bias=true, kernel_initializer=glorot_uniform,
    recurrent_initializer=orthogonal, bias_initializer=zeros, kernel/recurrent/bias/activity
    regularizers, dropout=0.0, recurrent_dropout=0.0, return_sequences=false,
    return_state=false, go_backwards=false, stateful=false (true is rejected), unroll=false,
    seed=None.
    Input shape: (batch, timesteps, features), optionally followed by the initial state
    (batch, units). Call arguments: sequences, initial_state=[h], mask (batch, timesteps).
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
    h and c, each (batch, units). Call arguments: sequences, initial_state=[h, c], mask
    (batch, timesteps).
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
    (batch, units). Call arguments: sequences, initial_state=[h], mask (batch, timesteps).
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
