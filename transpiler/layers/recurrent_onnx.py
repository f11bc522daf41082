"""The ONNX lowering of SimpleRNN, LSTM and GRU: ONNX's RNN / LSTM / GRU ops, or the unrolled
cell math (recurrent_cells.py) where they cannot serve, with gate reordering and weight layouts.

Inference runs on ONNX's RNN / LSTM / GRU ops, time-major (onnxruntime implements only
layout=0): one Transpose to (time, batch, features) on the way in, and a returned sequence
stays stored time-major (an LTensor with perm (1, 0, 2)), so stacked recurrent layers and
TimeDistributed need no Transposes between them. An activation that ONNX's recurrent ops do
not offer is lowered as an unrolled loop of the Keras cell math, and that needs a known
number of timesteps; training always unrolls it (see recurrent_cells.py).

No numpy at module level: `ktrans check` imports the layers without it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from transpiler.graph.types import format_shape
from transpiler.layers.recurrent_cells import (
    TIME_MAJOR,
    CellOps,
    RecurrentWeights,
    lower_unrolled,
    simple_rnn_step,
)

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


class RecurrentLowering:
    """The ONNX lowering half of `recurrent.Recurrent` (a mixin ahead of Layer in its bases):
    the op, its activations and weight layouts, and the choice between op and unrolled loop.
    """

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
        if states and x.mask is not None and "mask" not in ctx.call.tensors:
            # Keras hands a layer the mask only when the sequence is its one tensor
            # argument (or mask= is given): with initial states it passes on unused
            x = replace(x, mask=None)
        return self.lower_sequence(ctx, x, states, RecurrentWeights(ctx, ctx.layer))

    def compute_mask(self, ctx, inputs, outputs):
        """Keras's RNN.compute_mask: a returned sequence keeps the input's mask."""
        mask = inputs[0].mask if self.return_sequences else None
        return [mask] + [None] * (len(outputs) - 1)

    def lower_sequence(
        self, ctx, x, states, weights: RecurrentWeights, flip_output=False, zero_output=False
    ):
        """Keras's outputs [y, *final states] for sequence `x` and initial `states`; with
        `flip_output` a returned sequence is reversed in time (what Bidirectional does to
        its backward layer's). A Keras mask on `x` skips the masked timesteps; a masked
        step outputs zeros with `zero_output` (Keras's zero_output_for_mask), else the
        previous output."""
        out_types = self.output_types([x.type, *(s.type for s in states)])
        steps = x.type.shape[1]
        attrs = self.onnx_attributes()
        if ctx.training:
            if not isinstance(steps, int):
                raise NotImplementedError(
                    f"{self.keras_class()} trains as its cell math unrolled over the "
                    "timesteps, so training needs a known number of them; the input is "
                    f"{format_shape(x.type.shape)}: declare the time axis with a number, or "
                    "give `ktrans train` (or `codegen --target train`) --data, whose length "
                    "then fixes it"
                )
            y, last, finals = lower_unrolled(
                self, ctx, x, steps, states, weights, attrs is not None, flip_output, zero_output
            )
        elif attrs is not None and x.mask is not None:
            y, last, finals = lower_onnx_masked(
                self, ctx, x, states, weights, attrs, flip_output, zero_output
            )
        elif attrs is not None:
            y, finals = self._lower_onnx(ctx, time_major(ctx, x), states, weights, attrs)
            last = finals[0] if finals else None
            if y is not None and self.go_backwards != flip_output:
                y = flip_time(ctx, y)
        elif isinstance(steps, int):
            y, last, finals = lower_unrolled(
                self, ctx, x, steps, states, weights, False, flip_output, zero_output
            )
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
            outs.append(replace(x, name=last, type=out_types[0], perm=None))
        if self.return_state:
            outs += [replace(x, name=f, type=t, perm=None) for f, t in zip(finals, out_types[1:])]
        return outs

    def onnx_op_call(self, ctx, xt, lengths, states, w: RecurrentWeights, attrs, direction):
        """The ONNX LSTM/GRU/RNN node over time-major `xt` (`lengths`: sequence_lens, or
        "" when every sequence is whole): its outputs [Y, *final states]."""
        args = [
            xt,
            w("kernel", self.onnx_matrix, "onnx"),
            w("recurrent_kernel", self.onnx_matrix, "onnx"),
            w("bias", self.onnx_bias, "onnx") if self.use_bias else "",
            lengths,
        ]
        args += [ctx.op("Unsqueeze", [ctx.logical(s), ctx.ints([0], "axes")]) for s in states]
        while args[-1] == "":
            args.pop()
        if self.onnx_op == "GRU":
            attrs = {**attrs, "linear_before_reset": int(self.reset_after)}
        return ctx.op(
            self.onnx_op,
            args,
            1 + len(self.state_names),
            hidden_size=self.units,
            direction=direction,
            **attrs,
        )

    def _finals_needed(self) -> int:
        if self.return_state:
            return len(self.state_names)
        return 0 if self.return_sequences else 1

    def _lower_onnx(self, ctx, xt, states, w: RecurrentWeights, attrs: dict):
        """The ONNX op: (time-major sequence or None, [final states (batch, units)])."""
        direction = "reverse" if self.go_backwards else "forward"
        outs = self.onnx_op_call(ctx, xt, "", states, w, attrs, direction)
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


def lower_onnx_masked(layer, ctx, x, states, w: RecurrentWeights, attrs, flip_output, zero_output):
    """ONNX's recurrent op over a sequence with a Keras mask, exactly as Keras runs it
    (a masked step leaves the states alone), for any mask and a known or dynamic number
    of timesteps: the kept steps of each sample are moved to the front, in order
    (ScatterElements), the op runs over them with `sequence_lens` = their count, and each
    step's output is gathered back from the op's output at the last kept step up to it.
    Returns (the time-major sequence in Keras's order, or reversed with `flip_output`,
    or None; the last output; [final states, with return_state]) as lower_unrolled."""
    import numpy as np

    i64 = np.int64
    xt = time_major(ctx, x)
    kept = ctx.op("Transpose", [x.mask], perm=[1, 0])  # (time, batch)
    if layer.go_backwards:  # Keras reverses the sequence and its mask, then runs forwards
        xt, kept = flip_time(ctx, xt), flip_time(ctx, kept)
    flags = ctx.op("Cast", [kept], to=7)
    seen = ctx.op("CumSum", [flags, ctx.const(0, i64, "axis")])  # kept steps up to t
    count = ctx.op("ReduceSum", [flags, ctx.ints([0], "axes")], keepdims=0)  # (batch,)
    steps = ctx.op("Squeeze", [ctx.op("Shape", [xt], start=0, end=1), ctx.ints([0], "axes")])
    position = ctx.op("Range", [ctx.const(0, i64, "start"), steps, ctx.const(1, i64, "delta")])
    position = ctx.op("Unsqueeze", [position, ctx.ints([1], "axes")])  # (time, 1)
    # kept step t goes to seen_t - 1; the others after all the kept ones, in order
    later = ctx.op("Sub", [ctx.op("Add", [count, position]), seen])
    dest = ctx.op("Where", [kept, ctx.op("Sub", [seen, ctx.const(1, i64, "one")]), later])
    dest = ctx.op(
        "Expand", [ctx.op("Unsqueeze", [dest, ctx.ints([2], "axes")]), ctx.op("Shape", [xt])]
    )
    packed = ctx.op("ScatterElements", [xt, dest, xt], axis=0)
    # a sample with no kept step runs over one (its outputs and states are replaced below)
    lengths = ctx.op("Cast", [ctx.op("Max", [count, ctx.const(1, i64, "one")])], to=6)
    outs = layer.onnx_op_call(ctx, packed, lengths, states, w, attrs, "forward")
    zero = ctx.const(0.0)
    any_kept = ctx.op(
        "Unsqueeze", [ctx.op("Greater", [count, ctx.const(0, i64, "zero")]), ctx.ints([1], "axes")]
    )  # (batch, 1)
    y = last = None
    if layer.return_sequences:
        ys = ctx.op("Squeeze", [outs[0], ctx.ints([1], "axes")])  # (time, batch, units)
        at = ctx.op(
            "Max", [ctx.op("Sub", [seen, ctx.const(1, i64, "one")]), ctx.const(0, i64, "zero")]
        )
        at = ctx.op(
            "Expand", [ctx.op("Unsqueeze", [at, ctx.ints([2], "axes")]), ctx.op("Shape", [ys])]
        )
        gathered = ctx.op("GatherElements", [ys, at], axis=0)
        shown = kept if zero_output else ctx.op("Greater", [seen, ctx.const(0, i64, "zero")])
        shown = ctx.op("Unsqueeze", [shown, ctx.ints([2], "axes")])
        y = ctx.op("Where", [shown, gathered, zero])
        if flip_output:
            y = flip_time(ctx, y)
    else:
        h = ctx.op("Squeeze", [outs[1], ctx.ints([0], "axes")])
        shown = any_kept
        if zero_output:  # the last step's mask, (batch, 1)
            big = np.iinfo(i64).max
            args = [kept, ctx.ints([-1], "starts"), ctx.ints([big], "ends"), ctx.ints([0], "axes")]
            shown = ctx.op("Transpose", [ctx.op("Slice", args)], perm=[1, 0])
        last = ctx.op("Where", [shown, h, zero])
    finals = []
    if layer.return_state:
        for i in range(len(layer.state_names)):
            final = ctx.op("Squeeze", [outs[1 + i], ctx.ints([0], "axes")])
            before = ctx.logical(states[i]).name if states else zero
            finals.append(ctx.op("Where", [any_kept, final, before]))
    return y, last, finals
