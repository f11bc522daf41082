"""Activation layers with options: ReLU, LeakyReLU, PReLU, ELU, Softmax.

(`Activation(name)` for the plain functions is in core.py.) Axes count the batch axis as
0, as in Keras.
"""

from __future__ import annotations

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.args import (
    int_list,
    is_int,
    no_constraint,
    non_negative_float,
    number,
    optional,
)
from transpiler.layers.base import Arg, Layer, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.masking import no_mask_for
from transpiler.layers.regularizers import regularizer


def _axis_or_axes(value) -> int | tuple[int, ...]:
    return value if is_int(value) else int_list(value)


class _Elementwise(Layer):
    """A weightless activation: float input, output of the same type."""

    family = "activation"
    supports_masking = True

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        self.expect_float(inputs[0])
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]


@register
class ReLU(_Elementwise):
    """Rectified linear unit: `x` for x >= threshold (capped at max_value),
    `negative_slope * (x - threshold)` below.

    Args: max_value=None (no cap), negative_slope=0.0, threshold=0.0 (all non-negative).
    Output shape: as input.
    """

    signature = (
        Arg("max_value", optional(non_negative_float), None),
        Arg("negative_slope", non_negative_float, 0.0),
        Arg("threshold", non_negative_float, 0.0),
    )

    def lower(self, ctx, inputs):
        # Keras 3's ReLU.static_call, step by step
        (x,) = inputs
        slope, top, threshold = self.negative_slope, self.max_value, self.threshold
        if slope != 0 and top is None and threshold == 0:
            return [x.like(ctx.op("LeakyRelu", [x], alpha=float(slope)))]
        negative = None
        if slope != 0:
            below = ctx.op("Sub", [ctx.const(threshold), x]) if threshold else ctx.op("Neg", [x])
            negative = ctx.op("Relu", [below])
        clip = top is not None
        if threshold != 0:
            keep = ctx.op("Greater", [x, ctx.const(threshold)])
            y = ctx.op("Where", [keep, x, ctx.const(0.0)])
        elif top == 6:
            y = ctx.op("Clip", [x, ctx.const(0.0), ctx.const(6.0)])
            clip = False
        else:
            y = ctx.op("Relu", [x])
        if clip:
            y = ctx.op("Clip", [y, ctx.const(0.0), ctx.const(top)])
        if negative is not None:
            y = ctx.op("Sub", [y, ctx.op("Mul", [ctx.const(slope), negative])])
        return [x.like(y)]


@register
class LeakyReLU(_Elementwise):
    """`x` for x >= 0, `negative_slope * x` below. Args: negative_slope=0.3 (non-negative).
    Output shape: as input."""

    signature = (Arg("negative_slope", non_negative_float, 0.3),)

    def lower(self, ctx, inputs):
        (x,) = inputs
        return [x.like(ctx.op("LeakyRelu", [x], alpha=float(self.negative_slope)))]


@register
class ELU(_Elementwise):
    """Exponential linear unit: `x` for x > 0, `alpha * (exp(x) - 1)` below.
    Args: alpha=1.0. Output shape: as input."""

    signature = (Arg("alpha", number, 1.0),)

    def lower(self, ctx, inputs):
        (x,) = inputs
        return [x.like(ctx.op("Elu", [x], alpha=float(self.alpha)))]


@register
class Softmax(_Elementwise):
    """Softmax over `axis`: `exp(x) / sum(exp(x), axis)`.

    Args: axis=-1 (an axis or a list of axes, counting the batch axis as 0).
    Output shape: as input.
    """

    signature = (Arg("axis", _axis_or_axes, -1),)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        axes = (self.axis,) if is_int(self.axis) else self.axis
        for a in axes:
            if not -x.rank <= a < x.rank:
                self.fail(
                    f"Softmax: axis {a} is out of bounds for input shape {format_shape(x.shape)}",
                    f"the input has {x.rank} axes (the batch axis is 0; -1 is the last)",
                    arg="axis",
                )
        return []

    def lower(self, ctx, inputs):
        (x,) = inputs
        no_mask_for(
            self,
            inputs,
            "Keras's Softmax layer applies that mask aligned on the right (a (batch, time) "
            "mask against the (batch, time, features) input), which Keras rejects or applies "
            "to the wrong axes",
            "use Activation(softmax), or activation=softmax on the layer before, which pass "
            "the mask on unused",
        )
        axes = (self.axis,) if is_int(self.axis) else tuple(self.axis)
        physical = sorted({x.physical_axis(a) for a in axes})
        if len(physical) == 1:
            return [x.like(ctx.op("Softmax", [x], axis=physical[0]))]
        # several axes: exp(x - logsumexp(x)), computed as exp(x - max) / sum
        axes_c = ctx.ints(physical, "axes")
        top = ctx.op("ReduceMax", [x, axes_c], keepdims=1)
        e = ctx.op("Exp", [ctx.op("Sub", [x, top])])
        total = ctx.op("ReduceSum", [e, axes_c], keepdims=1)
        return [x.like(ctx.op("Div", [e, total]))]


@register
class PReLU(Layer):
    """Parametric ReLU: `x` for x >= 0, `alpha * x` below, with a learned alpha per element
    (or shared along `shared_axes`).

    Args: alpha_initializer=zeros, alpha_regularizer=None, alpha_constraint=None,
    shared_axes=None (axes, counting batch as 0, along which alpha is shared; e.g. [1, 2]
    for one alpha per channel of an image).
    Output shape: as input.
    Weights: alpha, the input shape without batch with the shared axes set to 1.
    """

    family = "activation"
    supports_masking = True
    signature = (
        Arg("alpha_initializer", initializer, "zeros"),
        Arg("alpha_regularizer", regularizer, None),
        Arg("alpha_constraint", no_constraint, None),
        Arg("shared_axes", optional(int_list), None),
    )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        shared = self.shared_axes or ()
        for a in shared:
            if not 1 <= a < x.rank:
                self.fail(
                    f"PReLU: shared axis {a} is not an axis of input shape {format_shape(x.shape)}",
                    f"shared_axes counts the batch axis as 0: use 1 to {x.rank - 1}",
                    arg="shared_axes",
                )
        shape = tuple(
            1 if i in shared else self.need_known(d, f"size on axis {i}")
            for i, d in enumerate(x.shape)
            if i > 0
        )
        return [
            self.weight("alpha", shape, self.alpha_initializer, regularizer=self.alpha_regularizer)
        ]

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def lower(self, ctx, inputs):
        # Keras: relu(x) - alpha * relu(-x), which is ONNX's PRelu; alpha (the input shape
        # without batch) laid out as x is stored
        import numpy as np

        (x,) = inputs
        perm = x.perm or tuple(range(x.rank))
        slope = ctx.weight("alpha", lambda a: np.transpose(a[None], perm), f"{perm}")
        return [x.like(ctx.op("PRelu", [x, slope]))]
