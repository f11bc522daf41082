"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization.

Axes count the batch axis as 0, as in Keras (`axis=-1` is the last axis). The model's
data_format does not change the default axis: with channels_first write `axis=1`, as in
Keras.
"""

from __future__ import annotations

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.args import (
    ArgError,
    boolean,
    describe,
    float_in,
    int_list,
    integer,
    is_int,
    no_constraint,
    non_negative_float,
    number,
)
from transpiler.layers.base import Arg, Layer, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.regularizers import regularizer


def _no_renorm(value) -> bool:
    if boolean(value):
        raise ArgError("renorm=true (batch renormalization) is not supported")
    return False


def _no_renorm_clipping(value):
    if value is not None:
        raise ArgError("renorm_clipping is not supported (renorm is not supported)")
    return None


def _groups(value) -> int:
    if not is_int(value) or (value <= 0 and value != -1):
        raise ArgError(
            f"expected a positive integer (or -1 for one group per channel), got {describe(value)}"
        )
    return value


def _int_or_ints(value) -> int | tuple[int, ...]:
    if is_int(value):
        return value
    axes = int_list(value)
    if not axes:
        raise ArgError("expected an axis or a non-empty list of axes, got []")
    return axes


class _Normalization(Layer):
    family = "normalization"
    supports_masking = True

    def axis_index(self, x: TensorType, axis: int) -> int:
        """The non-negative index of `axis` in x; the batch axis is refused."""
        index = axis + x.rank if axis < 0 else axis
        if not 0 <= index < x.rank:
            self.fail(
                f"{self.keras_class()}: axis {axis} is out of bounds for input shape "
                f"{format_shape(x.shape)}",
                f"the input has axes 1 to {x.rank - 1} (or -1 to -{x.rank - 1}) after the "
                "batch axis",
                arg="axis",
            )
        if index == 0:
            self.fail(
                f"{self.keras_class()}: axis {axis} is the batch axis",
                "normalize over a feature axis such as -1 (channels_last) or 1 (channels_first)",
                arg="axis",
            )
        return index

    def affine(self, shape: tuple[int, ...], gamma: bool, beta: bool) -> list[Weight]:
        weights = []
        if gamma:
            weights.append(
                self.weight(
                    "gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer
                )
            )
        if beta:
            weights.append(
                self.weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer)
            )
        return weights

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def affine_lowered(self, ctx, x, y: str, channel: int) -> str:
        """y * gamma + beta with gamma and beta (n,) on logical axis `channel`, broadcast
        on the axis where x stores it."""
        p = x.physical_axis(channel)
        trailing = (1,) * (x.rank - 1 - p)
        key = f"axis{p}of{x.rank}"
        if self.scale:
            gamma = ctx.weight("gamma", lambda g: g.reshape(-1, *trailing), key)
            y = ctx.op("Mul", [y, gamma])
        if self.center:
            beta = ctx.weight("beta", lambda b: b.reshape(-1, *trailing), key)
            y = ctx.op("Add", [y, beta])
        return y


def _moments_normalized(ctx, x: str, axes: list[int], epsilon: float, center: bool = True):
    """(x - mean) / sqrt(var + epsilon) over `axes` (stored axes); without `center`,
    x / sqrt(var + epsilon) (the variance is centered either way)."""
    axes_c = ctx.ints(sorted(axes), "axes")
    mean = ctx.op("ReduceMean", [x, axes_c], keepdims=1)
    d = ctx.op("Sub", [x, mean])
    var = ctx.op("ReduceMean", [ctx.op("Mul", [d, d]), axes_c], keepdims=1)
    std = ctx.op("Sqrt", [ctx.op("Add", [var, ctx.const(epsilon)])])
    return ctx.op("Div", [d if center else x, std])


_AFFINE_INITIALIZERS = (
    Arg("beta_initializer", initializer, "zeros"),
    Arg("gamma_initializer", initializer, "ones"),
)
_AFFINE_REGULARIZERS = (
    Arg("beta_regularizer", regularizer, None),
    Arg("gamma_regularizer", regularizer, None),
    Arg("beta_constraint", no_constraint, None),
    Arg("gamma_constraint", no_constraint, None),
)


@register
class BatchNormalization(_Normalization):
    """Normalizes with the batch's mean and variance in training and with moving averages
    at inference: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    Args: axis=-1 (the feature axis; write axis=1 for channels_first), momentum=0.99,
    epsilon=1e-3, center=true, scale=true, beta_initializer=zeros, gamma_initializer=ones,
    moving_mean_initializer=zeros, moving_variance_initializer=ones, beta_regularizer,
    gamma_regularizer, renorm=false (true is not supported), synchronized=false (no effect
    on one device).
    Input shape: any, with a known size on `axis`. Output shape: as input.
    Weights: gamma (n,) if scale, beta (n,) if center, moving_mean (n,) and
    moving_variance (n,) (non-trainable), n = the size of `axis`.
    """

    has_training_mode = True
    signature = (
        Arg("axis", integer, -1),
        Arg("momentum", float_in(0.0, 1.0), 0.99),
        Arg("epsilon", non_negative_float, 1e-3),
        Arg("center", boolean, True),
        Arg("scale", boolean, True),
        *_AFFINE_INITIALIZERS,
        Arg("moving_mean_initializer", initializer, "zeros"),
        Arg("moving_variance_initializer", initializer, "ones"),
        *_AFFINE_REGULARIZERS,
        Arg("renorm", _no_renorm, False),
        Arg("renorm_clipping", _no_renorm_clipping, None),
        Arg("renorm_momentum", number, 0.99),
        Arg("synchronized", boolean, False),
    )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        index = self.axis_index(x, self.axis)
        n = self.need_known(x.shape[index], f"size on axis {self.axis}")
        return [
            *self.affine((n,), self.scale, self.center),
            self.weight("moving_mean", (n,), self.moving_mean_initializer, trainable=False),
            self.weight("moving_variance", (n,), self.moving_variance_initializer, trainable=False),
        ]

    def lower(self, ctx, inputs):
        if ctx.training:  # batch statistics over the unmasked steps, as Keras's
            from transpiler.emit.train.norm_training import batch_norm_training

            return [batch_norm_training(ctx, self, inputs[0])]
        import numpy as np

        (x,) = inputs
        index = self.axis_index(x.type, self.axis)
        n = x.type.shape[index]
        if x.physical_axis(index) == 1:
            # the channel axis is where ONNX's BatchNormalization wants it, as stored
            ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
            scale = ctx.weight("gamma") if self.scale else ctx.const(ones, name="gamma")
            bias = ctx.weight("beta") if self.center else ctx.const(zeros, name="beta")
            mean, var = ctx.weight("moving_mean"), ctx.weight("moving_variance")
            y = ctx.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=self.epsilon)
            return [x.like(y)]
        # x * scale + shift on the stored axis, scale and shift computed in the graph from
        # the four (n,) weights (onnxruntime folds them once): the initializers stay
        # Keras's own, as the training model and `--weights` name them
        eps = ctx.const(np.float32(self.epsilon))
        inv = ctx.op(
            "Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [ctx.weight("moving_variance"), eps])])]
        )
        scale = ctx.op("Mul", [inv, ctx.weight("gamma")]) if self.scale else inv
        shift = ctx.op("Mul", [ctx.weight("moving_mean"), scale])
        if self.center:
            shift = ctx.op("Sub", [ctx.weight("beta"), shift])
        else:
            shift = ctx.op("Neg", [shift])
        trailing = [1] * (x.rank - 1 - x.physical_axis(index))
        if trailing:
            on_axis = ctx.ints([n, *trailing])
            scale = ctx.op("Reshape", [scale, on_axis])
            shift = ctx.op("Reshape", [shift, on_axis])
        y = ctx.op("Add", [ctx.op("Mul", [x, scale]), shift])
        return [x.like(y)]


@register
class LayerNormalization(_Normalization):
    """Normalizes each sample over `axis` with its own mean and variance:
    `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    Args: axis=-1 (an axis or a list of axes), epsilon=1e-3, center=true, scale=true,
    beta_initializer=zeros, gamma_initializer=ones, beta_regularizer, gamma_regularizer,
    rms_scaling=false (deprecated in Keras: scale by the variance, no centering).
    Input shape: any, with known sizes on `axis`. Output shape: as input.
    Weights: gamma if scale (or rms_scaling), beta if center (and not rms_scaling); their
    shape is the sizes of the axes in `axis`, in Keras's order (the axis values sorted).
    """

    signature = (
        Arg("axis", _int_or_ints, -1),
        Arg("epsilon", non_negative_float, 1e-3),
        Arg("center", boolean, True),
        Arg("scale", boolean, True),
        *_AFFINE_INITIALIZERS,
        *_AFFINE_REGULARIZERS,
        Arg("rms_scaling", boolean, False),
    )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        # Keras sorts the axis values as written (so -1 comes before 1) for the weight shape
        axes = sorted(self.axis) if isinstance(self.axis, tuple) else [self.axis]
        indices = [self.axis_index(x, a) for a in axes]
        if len(set(indices)) != len(indices):
            self.fail(
                f"LayerNormalization: axis {describe(list(self.axis))} names an axis twice "
                f"for input shape {format_shape(x.shape)}",
                arg="axis",
            )
        shape = tuple(
            self.need_known(x.shape[i], f"size on axis {a}") for a, i in zip(axes, indices)
        )
        return self.affine(
            shape, self.scale or self.rms_scaling, self.center and not self.rms_scaling
        )

    def lower(self, ctx, inputs):
        if ctx.training:
            from transpiler.emit.train.norm_training import layer_norm_training

            return [layer_norm_training(ctx, self, inputs[0])]
        import numpy as np

        (x,) = inputs
        rank = x.rank
        axes = sorted(self.axis) if isinstance(self.axis, tuple) else [self.axis]
        logical = [a % rank for a in axes]
        # Keras reshapes gamma / beta (whose shape lists the axes in `axes` order) into
        # the input's rank with those sizes in place
        full = [1] * rank
        for i in logical:
            full[i] = x.type.shape[i]
        perm = x.perm or tuple(range(rank))

        def stored(v):
            return np.transpose(v.reshape(full), perm)

        physical = sorted(x.physical_axis(i) for i in logical)
        k = len(physical)
        scale = self.scale or self.rms_scaling
        center = self.center and not self.rms_scaling
        if not self.rms_scaling and physical == list(range(rank - k, rank)):
            # the normalized axes are stored last: ONNX's LayerNormalization
            tail = tuple(x.physical_shape()[rank - k :])
            key = f"tail{perm}"
            if scale:
                gamma = ctx.weight("gamma", lambda g: stored(g).reshape(tail), key)
            else:
                gamma = ctx.const(np.ones(tail, np.float32), name="gamma")
            args = [x.name, gamma]
            if center:
                args.append(ctx.weight("beta", lambda b: stored(b).reshape(tail), key))
            y = ctx.op("LayerNormalization", args, axis=rank - k, epsilon=self.epsilon)
            return [x.like(y)]
        y = _moments_normalized(ctx, x.name, physical, self.epsilon, center=not self.rms_scaling)
        key = f"full{perm}"
        if scale:
            y = ctx.op("Mul", [y, ctx.weight("gamma", stored, key)])
        if center:
            y = ctx.op("Add", [y, ctx.weight("beta", stored, key)])
        return [x.like(y)]


@register
class GroupNormalization(_Normalization):
    """Splits the channels into groups and normalizes each group of each sample
    (Wu & He 2018); groups=1 is LayerNormalization over the channels and spatial axes,
    groups=-1 (one channel per group) is InstanceNormalization.

    Args: groups=32, axis=-1 (the channel axis), epsilon=1e-3, center=true, scale=true,
    beta_initializer=zeros, gamma_initializer=ones, beta_regularizer, gamma_regularizer.
    Input shape: any, with a known number of channels on `axis`, divisible by groups.
    Output shape: as input.
    Weights: gamma (channels,) if scale, beta (channels,) if center.
    """

    signature = (
        Arg("groups", _groups, 32),
        Arg("axis", integer, -1),
        Arg("epsilon", non_negative_float, 1e-3),
        Arg("center", boolean, True),
        Arg("scale", boolean, True),
        *_AFFINE_INITIALIZERS,
        *_AFFINE_REGULARIZERS,
    )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        index = self.axis_index(x, self.axis)
        channels = self.need_known(x.shape[index], f"number of channels (axis {self.axis})")
        groups = channels if self.groups == -1 else self.groups
        if channels < groups:
            self.fail(
                f"GroupNormalization: groups ({groups}) cannot be more than the number of "
                f"channels ({channels}); input is {format_shape(x.shape)}",
                f"use a divisor of {channels} for groups",
                arg="groups",
            )
        if channels % groups:
            self.fail(
                f"GroupNormalization: {channels} channels cannot be split into {groups} "
                f"groups; input is {format_shape(x.shape)}",
                f"use a divisor of {channels} for groups",
                arg="groups",
            )
        return self.affine((channels,), self.scale, self.center)

    def lower(self, ctx, inputs):
        # Keras splits the channel axis into (groups, channels // groups) and normalizes
        # over everything but batch and groups; on the stored layout that is a Reshape to
        # (batch, ..., groups, -1), moments over all axes but 0 and the groups axis, and
        # a Reshape back; then gamma and beta per channel.
        (x,) = inputs
        index = self.axis_index(x.type, self.axis)
        channels = x.type.shape[index]
        groups = channels if self.groups == -1 else self.groups
        p = x.physical_axis(index)
        grouped = ctx.op("Reshape", [x, ctx.ints([0] * p + [groups, -1])])
        axes = [*range(1, p), p + 1]
        y = _moments_normalized(ctx, grouped, axes, self.epsilon)
        y = ctx.op("Reshape", [y, ctx.op("Shape", [x])])
        return [x.like(self.affine_lowered(ctx, x, y, index))]
