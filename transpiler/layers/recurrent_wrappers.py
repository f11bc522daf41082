"""Layer wrappers: Bidirectional (around an RNN) and TimeDistributed (over the time axis).

Both take an already-created layer as their `layer` argument. Their weights are the
wrapped layer's, named as Keras names them: `forward_lstm/kernel`, `backward_lstm/kernel`
for Bidirectional(LSTM(...)), `dense/kernel` for TimeDistributed(Dense(...)).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import replace

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.args import ArgError, choice, describe, optional
from transpiler.layers.base import Arg, CallArg, Layer, LayerError, Weight, register
from transpiler.layers.masking import MASK_ARG, check_mask_arg
from transpiler.layers.recurrent import BACKWARD_STREAMS, Recurrent, RecurrentWeights
from transpiler.layers.regularizers import activity_regularizer


def _layer_instance(value) -> Layer:
    if not isinstance(value, Layer):
        raise ArgError(
            f"expected a layer, got {describe(value)}",
            "pass a layer call, for example LSTM(64)",
        )
    return value


def _no_initial_weights(value):
    if value is not None:
        raise ArgError("initial weights are not supported; remove the argument")
    return None


def _prefixed(prefix: str, layer: Layer, weights: list[Weight]) -> list[Weight]:
    """The wrapped layer's weights under `prefix/`; a frozen wrapped layer's stay frozen."""
    return [
        replace(w, name=f"{prefix}/{w.name}", trainable=w.trainable and layer.trainable)
        for w in weights
    ]


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def _adjust_wrapped(layers: list[Layer], weight: Weight, value):
    """A wrapper's initial value: the wrapped layer's hook, on the unprefixed weight."""
    for layer in layers:
        prefix = f"{layer.name}/"
        if weight.name.startswith(prefix):
            return layer.adjust_initial_value(
                replace(weight, name=weight.name[len(prefix) :]), value
            )
    return value


@contextmanager
def _lowering_inner(ctx, inner: Layer):
    """Lowers `inner` (wrapped by ctx.layer, which holds its weights as `<inner>/<w>`) as
    a layer of its own: a copy named `<wrapper>/<inner>` becomes ctx.layer, with its
    weights under that name for the time being (so initializers are `<wrapper>/<inner>/<w>`).
    """
    owner = ctx.layer
    alias = copy.copy(inner)
    alias.name = f"{owner.name}/{inner.name}"
    prefix = f"{inner.name}/"
    own = ctx.weights.get(owner.name, {})
    saved = ctx.weights
    ctx.weights = {
        **saved,
        alias.name: {k[len(prefix) :]: v for k, v in own.items() if k.startswith(prefix)},
    }
    ctx.layer = alias
    try:
        yield alias
    finally:
        ctx.weights, ctx.layer = saved, owner


@register
class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards over the sequence and merges
    the two outputs.

    Args: layer (SimpleRNN, LSTM or GRU), merge_mode=concat (one of concat, sum, mul, ave,
    or none for the two outputs unmerged), weights=None (not supported), backward_layer=None
    (a recurrent layer with go_backwards=true and the same return_sequences / return_state;
    by default a copy of `layer` with go_backwards=true).
    Input shape: (batch, timesteps, features), optionally followed by the forward layer's
    initial states and then the backward layer's. Call arguments: sequences,
    initial_state (forward states, then backward), mask (batch, timesteps).
    Output shape: the wrapped layer's output, with the last axis doubled for concat; two
    outputs for merge_mode=none. With return_state, then the forward layer's states, then
    the backward layer's (as Keras: [merged, forward states..., backward states...]).
    Weights: forward_<name>/kernel, forward_<name>/recurrent_kernel, forward_<name>/bias,
    then the backward layer's (backward_<name>/...).
    """

    family = "recurrent"
    has_training_mode = True
    supports_masking = True
    call_signature = (
        CallArg("sequences", "tensor", True),
        CallArg("initial_state", "states"),
        MASK_ARG,
    )
    signature = (
        Arg("layer", _layer_instance),
        Arg("merge_mode", optional(choice("concat", "sum", "mul", "ave")), "concat"),
        Arg("weights", _no_initial_weights, None),
        Arg("backward_layer", optional(_layer_instance), None),
    )

    @classmethod
    def validate(cls, config: dict) -> None:
        fwd, bwd = config["layer"], config["backward_layer"]
        for key, layer in (("layer", fwd), ("backward_layer", bwd)):
            if layer is not None and not isinstance(layer, Recurrent):
                raise LayerError(
                    f"Bidirectional: {key} expected a recurrent layer "
                    f"(SimpleRNN, LSTM or GRU), got {layer.keras_class()}",
                    "to apply a layer to each time step use TimeDistributed",
                    arg=key,
                )
        if bwd is None:
            if fwd.go_backwards:
                raise LayerError(
                    "Bidirectional: the wrapped layer has go_backwards=true, so the forward "
                    "and the generated backward layer would both run backwards",
                    "remove go_backwards from the wrapped layer, or pass backward_layer",
                    arg="layer",
                )
            return
        if fwd.go_backwards == bwd.go_backwards:
            raise LayerError(
                "Bidirectional: layer and backward_layer should have different go_backwards; "
                f"both have go_backwards={describe(fwd.go_backwards)}",
                "give the backward layer go_backwards=true",
                arg="backward_layer",
            )
        for attr in ("return_sequences", "return_state"):
            a, b = getattr(fwd, attr), getattr(bwd, attr)
            if a != b:
                raise LayerError(
                    f"Bidirectional: layer and backward_layer should have the same {attr}; "
                    f"got {describe(a)} for layer and {describe(b)} for backward_layer",
                    arg="backward_layer",
                )

    def __init__(self, config: dict, name: str) -> None:
        super().__init__(config, name)
        src = config["layer"]
        self.forward_layer = type(src)(dict(src.config), f"forward_{_strip(src.name, 'forward_')}")
        bwd = config["backward_layer"]
        if bwd is None:
            self.backward_layer = type(src)(
                dict(src.config, go_backwards=True), f"backward_{_strip(src.name, 'backward_')}"
            )
        else:
            self.backward_layer = type(bwd)(dict(bwd.config), bwd.name)
        self.return_sequences = src.return_sequences
        self.return_state = src.return_state
        n_fwd = len(self.forward_layer.state_names)
        n_bwd = len(self.backward_layer.state_names)
        self.num_inputs = (1, 1 + n_fwd + n_bwd)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        x, *states = inputs
        n_fwd = len(self.forward_layer.state_names)
        if states and len(states) != self.num_inputs[1] - 1:
            self.fail(
                f"Bidirectional takes the sequence alone or with all "
                f"{self.num_inputs[1] - 1} initial states (forward then backward); "
                f"got {len(states)} states"
            )
        fwd_in = [x, *states[:n_fwd]]
        bwd_in = [x, *states[n_fwd:]]
        self._outputs = (self.forward_layer(fwd_in), self.backward_layer(bwd_in))
        return _prefixed(
            self.forward_layer.name, self.forward_layer, self.forward_layer.weights
        ) + _prefixed(self.backward_layer.name, self.backward_layer, self.backward_layer.weights)

    def check_call(self, inputs, call) -> None:
        check_mask_arg(self, inputs[0], call)

    def output_types(self, inputs: list[TensorType]) -> list[TensorType]:
        (y_f, *states_f), (y_b, *states_b) = self._outputs
        mode = self.merge_mode
        if mode is None:
            merged = [y_f, y_b]
        elif mode == "concat":
            a, b = y_f.shape[-1], y_b.shape[-1]
            last = a + b if isinstance(a, int) and isinstance(b, int) else None
            merged = [y_f.with_shape((*y_f.shape[:-1], last))]
        else:
            if y_f.shape != y_b.shape:
                self.fail(
                    f"Bidirectional: merge_mode={mode} needs equal forward and backward "
                    f"outputs; got {format_shape(y_f.shape)} and {format_shape(y_b.shape)}",
                    "give both layers the same units, or use merge_mode=concat",
                    arg="merge_mode",
                )
            merged = [y_f]
        return merged + states_f + states_b

    @property
    def num_outputs(self) -> int:
        states = self.forward_layer.num_outputs + self.backward_layer.num_outputs - 2
        return (1 if self.merge_mode else 2) + states

    def describe_config(self) -> str:
        return f"Bidirectional({self.layer.describe_config()})"

    def adjust_initial_value(self, weight: Weight, value):
        return _adjust_wrapped([self.forward_layer, self.backward_layer], weight, value)

    def lower(self, ctx, inputs):
        x, *states = inputs
        if states and x.mask is not None and "mask" not in ctx.call.tensors:
            x = replace(x, mask=None)  # as a recurrent layer: with states, Keras passes none
        fwd, bwd = self.forward_layer, self.backward_layer
        n_fwd = len(fwd.state_names)
        # with a mask, Keras sets zero_output_for_mask = return_sequences on both layers
        zero = self.return_sequences
        y, *states_f = fwd.lower_sequence(
            ctx,
            x,
            states[:n_fwd],
            RecurrentWeights(ctx, ctx.layer, f"{fwd.name}/"),
            zero_output=zero,
        )
        # Keras reverses the backward layer's output sequence back into time order
        y_rev, *states_b = bwd.lower_sequence(
            ctx,
            x,
            states[n_fwd:],
            RecurrentWeights(ctx, ctx.layer, f"{bwd.name}/", streams=BACKWARD_STREAMS),
            flip_output=self.return_sequences,
            zero_output=zero,
        )
        mode = self.merge_mode
        if mode is None:
            return [y, y_rev, *states_f, *states_b]
        if y.perm != y_rev.perm:
            y, y_rev = ctx.logical(y), ctx.logical(y_rev)
        out_type = self.output_types([x.type, *(s.type for s in states)])[0]
        if mode == "concat":
            out = ctx.op("Concat", [y, y_rev], axis=y.physical_axis(-1))
        elif mode == "sum":
            out = ctx.op("Add", [y, y_rev])
        elif mode == "mul":
            out = ctx.op("Mul", [y, y_rev])
        else:  # ave: (y + y_rev) / 2
            out = ctx.op("Div", [ctx.op("Add", [y, y_rev]), ctx.const(2.0)])
        return [y.like(out, out_type), *states_f, *states_b]

    def compute_mask(self, ctx, inputs, outputs):
        """Keras's Bidirectional.compute_mask: the input's mask on the returned sequence
        (on both with merge_mode=None); none on states."""
        mask = inputs[0].mask if self.return_sequences else None
        sequences = 1 if self.merge_mode else 2
        return [mask] * sequences + [None] * (len(outputs) - sequences)


@register
class TimeDistributed(Layer):
    """Applies a layer to every time slice of its input (axis 1).

    Args: layer (any layer taking one input and giving one output).
    Input shape: (batch, time, ...) of rank >= 3; the wrapped layer sees (batch, ...).
    Output shape: (batch, time) + the wrapped layer's output shape without batch.
    Weights: the wrapped layer's, named <layer name>/<weight> (dense/kernel, dense/bias).
    """

    family = "recurrent"
    supports_masking = True
    signature = (Arg("layer", _layer_instance),)

    @classmethod
    def validate(cls, config: dict) -> None:
        inner = config["layer"]
        lo = inner.num_inputs[0]
        if lo > 1:
            raise LayerError(
                f"TimeDistributed: layer expected a layer that takes one input; "
                f"{inner.keras_class()} takes {lo} or more",
                arg="layer",
            )
        if getattr(inner, "num_outputs", 1) != 1:
            raise LayerError(
                f"TimeDistributed: layer expected a layer with one output; "
                f"{inner.keras_class()} gives {inner.num_outputs}",
                "remove return_state from the wrapped layer",
                arg="layer",
            )

    def __init__(self, config: dict, name: str) -> None:
        super().__init__(config, name)
        self.has_training_mode = config["layer"].has_training_mode

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        if x.rank < 3:
            self.fail(
                f"TimeDistributed expects an input of rank 3 or more; got {format_shape(x.shape)}",
                "TimeDistributed needs (batch, time, ...): it applies the layer to each step",
            )
        inner: Layer = self.layer
        child = x.with_shape((x.shape[0], *x.shape[2:]))
        try:
            outs = inner([child])
        except LayerError as e:
            raise LayerError(
                f"TimeDistributed({inner.keras_class()}): {e.message}",
                e.hint or f"the wrapped layer sees each time slice, {format_shape(child.shape)}",
            ) from None
        if len(outs) != 1:
            self.fail(
                f"TimeDistributed: the wrapped {inner.keras_class()} gives {len(outs)} "
                "outputs; it needs exactly one",
                arg="layer",
            )
        self._child_output = outs[0]
        return _prefixed(inner.name, inner, inner.weights or [])

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        x, y = inputs[0], self._child_output
        return y.with_shape((y.shape[0], x.shape[1], *y.shape[1:]))

    def describe_config(self) -> str:
        return f"TimeDistributed({self.layer.describe_config()})"

    def cannot_train(self) -> str | None:
        # Keras's TimeDistributed runs its layer's `call` (no activity penalty of its own),
        # but a Bidirectional inside calls its two layers, which add theirs once per step
        inner = self.layer
        while isinstance(inner, TimeDistributed):
            inner = inner.layer
        if isinstance(inner, Bidirectional) and any(
            activity_regularizer(side) is not None
            for side in (inner.forward_layer, inner.backward_layer)
        ):
            return (
                "an activity_regularizer on a layer of a Bidirectional inside TimeDistributed "
                "(which Keras applies once per time step) is not applied in training"
            )
        return self.layer.cannot_train()

    def adjust_initial_value(self, weight: Weight, value):
        return _adjust_wrapped([self.layer], weight, value)

    def lower(self, ctx, inputs):
        # Folds time into batch, (batch * time, ...), runs the wrapped layer, unfolds. A
        # time-major input (a recurrent layer's sequence) folds as (time * batch, ...) and
        # stays time-major.
        (x,) = inputs
        if x.mask is not None:
            _check_inner_mask(ctx, self.layer)
        inner = self.layer
        if ctx.training and inner.keras_class() == "BatchNormalization" and inner.trainable:
            # Keras calls it on each time slice: batch statistics of each step
            from transpiler.emit.train.norm_training import batch_norm_training_per_step

            with _lowering_inner(ctx, inner) as alias:
                return [batch_norm_training_per_step(ctx, alias, ctx.logical(x))]
        time_major = (1, 0, *range(2, x.rank))
        if x.perm != time_major:
            x = ctx.logical(x)
        rest = x.type.shape[2:]
        if all(isinstance(d, int) for d in rest):
            fold = ctx.ints([-1, *rest])
        else:
            fold = ctx.op("Concat", [ctx.ints([-1]), ctx.op("Shape", [x], start=2)], axis=0)
        child_type = x.type.with_shape((x.type.shape[0], *rest))
        child = replace(x, name=ctx.op("Reshape", [x, fold]), type=child_type, perm=None, mask=None)
        with _lowering_inner(ctx, self.layer) as inner:
            (y,) = inner.lower(ctx, [child])
        y = ctx.logical(y)
        out_type = self.output_types([x.type])
        out_rest = out_type.shape[2:]
        if all(isinstance(d, int) for d in out_rest):
            tail = ctx.ints(out_rest)
        else:
            tail = ctx.op("Shape", [y], start=1)
        lead = ctx.op("Shape", [x], start=0, end=2)
        out = ctx.op("Reshape", [y, ctx.op("Concat", [lead, tail], axis=0)])
        perm = None if x.perm is None else (1, 0, *range(2, out_type.rank))
        return [replace(x, name=out, type=out_type, perm=perm)]


#: other layers whose Keras call takes a mask (BatchNormalization's, which only matters in
#: training, is applied per time step there: norm_training.batch_norm_training_per_step)
MASKED_CALLS = ("GlobalAveragePooling1D", "Softmax")


def _check_inner_mask(ctx, inner: Layer) -> None:
    """TimeDistributed hands each time slice's mask to a wrapped layer whose Keras call
    takes one; ktrans does not, so those are errors (the rest ignore it, as in Keras)."""
    wrapped = (Recurrent, Bidirectional, TimeDistributed)
    takes = isinstance(inner, wrapped) or inner.keras_class() in MASKED_CALLS
    if takes:
        raise NotImplementedError(
            f"its input carries a Keras mask (from Embedding(mask_zero=true)), which Keras "
            f"hands, one time slice at a time, to the wrapped {inner.keras_class()}; ktrans "
            "does not reproduce that: drop the mask before TimeDistributed (e.g. with a "
            "Conv1D), or apply the layer without TimeDistributed"
        )
