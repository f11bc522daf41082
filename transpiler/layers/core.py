"""Core layers: Dense, Activation, Dropout and noise, Embedding."""

from __future__ import annotations

from dataclasses import replace

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.activations import activation
from transpiler.layers.args import (
    ArgError,
    boolean,
    data_format,
    describe,
    float_in,
    integer,
    is_int,
    no_constraint,
    non_negative_float,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg, Layer, register
from transpiler.layers.initializers import initializer
from transpiler.layers.regularizers import regularizer


@register
class Dense(Layer):
    """Densely connected layer: `activation(inputs @ kernel + bias)`.

    Args: units, activation=None, use_bias=true, kernel_initializer=glorot_uniform,
    bias_initializer=zeros, kernel_regularizer, bias_regularizer, activity_regularizer.
    Input shape: (batch, ..., input_dim). Output shape: (batch, ..., units).
    Weights: kernel (input_dim, units), bias (units,).
    """

    family = "dense"
    supports_masking = True
    signature = (
        Arg("units", positive_int),
        Arg("activation", activation, None),
        Arg("use_bias", boolean, True),
        Arg("kernel_initializer", initializer, "glorot_uniform"),
        Arg("bias_initializer", initializer, "zeros"),
        Arg("kernel_regularizer", regularizer, None),
        Arg("bias_regularizer", regularizer, None),
        Arg("activity_regularizer", regularizer, None),
        Arg("kernel_constraint", no_constraint, None),
        Arg("bias_constraint", no_constraint, None),
    )

    def build(self, inputs):
        (x,) = inputs
        self.expect_float(x)
        if x.rank < 2:
            self.fail(f"Dense expects at least a rank-2 input; got {x.rank}")
        n_in = self.need_known(x.shape[-1], "last axis")
        weights = [
            self.weight(
                "kernel",
                (n_in, self.units),
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
        ]
        if self.use_bias:
            weights.append(
                self.weight(
                    "bias",
                    (self.units,),
                    self.bias_initializer,
                    regularizer=self.bias_regularizer,
                )
            )
        return weights

    def output_types(self, inputs):
        (x,) = inputs
        return x.with_shape(x.shape[:-1] + (self.units,))

    def describe_config(self) -> str:
        act = "" if self.activation == "linear" else f", {self.activation}"
        return f"Dense({self.units}{act})"

    def lower(self, ctx, inputs):
        (x,) = inputs
        x = ctx.logical(x)
        out_type = self.output_types([x.type])
        kernel = ctx.weight("kernel")
        if x.rank == 2:
            args = [x.name, kernel] + ([ctx.weight("bias")] if self.use_bias else [])
            y = x.like(ctx.op("Gemm", args), out_type)
        else:
            y = x.like(ctx.op("MatMul", [x.name, kernel]), out_type)
            if self.use_bias:
                y = y.like(ctx.op("Add", [y.name, ctx.weight("bias")]))
        return [ctx.activation(y, self.activation)]


@register
class Activation(Layer):
    """Applies an activation function. Args: activation. Output shape: as input."""

    family = "activation"
    supports_masking = True
    signature = (Arg("activation", activation),)

    def build(self, inputs):
        self.expect_float(inputs[0])
        return []

    def output_types(self, inputs):
        return inputs[0]

    def lower(self, ctx, inputs):
        return [ctx.activation(inputs[0], self.activation)]


def _noise_shape(value) -> tuple:
    """Keras's noise_shape: one entry per input axis, the batch axis first; none takes
    the input's size on that axis."""
    if isinstance(value, (list, tuple)) and all(v is None or (is_int(v) and v > 0) for v in value):
        return tuple(value)
    raise ArgError(
        f"expected a list of positive integers or none, got {describe(value)}",
        "one entry per axis, the batch axis first: noise_shape=[none, 1, 64]",
    )


class _RateLayer(Layer):
    """Shared shape of the dropout family: identity at inference, random in training."""

    family = "regularization"
    has_training_mode = True
    supports_masking = True
    signature = (
        Arg("rate", float_in(0.0, 1.0, hi_open=True)),
        Arg("noise_shape", optional(_noise_shape), None),
        Arg("seed", optional(integer), None),
    )
    expected_rank: int | None = None
    layout = ""

    def build(self, inputs):
        (x,) = inputs
        self.expect_float(x)
        if self.expected_rank is not None:
            self.expect_rank(x, self.expected_rank, self.layout)
        noise = getattr(self, "noise_shape", None)
        if noise is not None:
            if len(noise) != x.rank:
                self.fail(
                    f"{self.keras_class()}: noise_shape has {len(noise)} entries; the input "
                    f"{format_shape(x.shape)} has {x.rank} axes",
                    "one entry per axis, the batch axis first: none keeps the input's size",
                    arg="noise_shape",
                )
            for d, n in zip(x.shape, noise):
                if n is not None and n != 1 and isinstance(d, int) and n != d:
                    self.fail(
                        f"{self.keras_class()}: noise_shape {describe(list(noise))} does not "
                        f"broadcast to the input {format_shape(x.shape)}",
                        "each entry is 1, none or the input's size on that axis",
                        arg="noise_shape",
                    )
        return []

    def output_types(self, inputs):
        return inputs[0]

    def lower(self, ctx, inputs):
        (x,) = inputs
        if not ctx.training or self.rate == 0:
            return [x]  # inference: the identity
        like = self.noise_like(ctx, x)
        keep = ctx.op("GreaterOrEqual", [ctx.uniform_noise(like), ctx.const(self.rate)])
        scale = ctx.op("Mul", [ctx.op("Cast", [keep], to=1), ctx.const(1.0 / (1.0 - self.rate))])
        return [x.like(ctx.op("Mul", [x, scale]))]

    def noise_like(self, ctx, x):
        """The tensor whose shape the random mask takes, as stored: x, or Keras's
        noise_shape (none: x's size) for Dropout, whole channels for spatial dropout."""
        noise = getattr(self, "noise_shape", None)
        if noise is None:
            return x
        perm = x.perm or tuple(range(x.rank))
        sizes = ctx.op("Shape", [x])
        dims = []
        for axis in perm:  # the stored order
            if noise[axis] is None:
                dims.append(ctx.op("Gather", [sizes, ctx.ints([perm.index(axis)], "index")]))
            else:
                dims.append(ctx.ints([noise[axis]], "size"))
        shape = ctx.op("Concat", dims, axis=0)
        return x.like(ctx.op("ConstantOfShape", [shape]))


@register
class Dropout(_RateLayer):
    """Randomly zeroes inputs with probability `rate` in training and scales the rest by
    1/(1-rate) (inverted dropout). Args: rate, noise_shape=None (the mask's shape, one
    entry per input axis with the batch axis first: 1 shares the mask along that axis,
    none takes the input's size), seed=None."""


@register
class SpatialDropout1D(_RateLayer):
    """Dropout of whole channels of a (batch, steps, channels) tensor. Args: rate, seed."""

    signature = (
        Arg("rate", float_in(0.0, 1.0, hi_open=True)),
        Arg("seed", optional(integer), None),
    )
    expected_rank = 3
    layout = "steps, channels"

    def noise_like(self, ctx, x):
        steps = x.physical_axis(1)
        return x.like(ctx.op("ReduceMax", [x, ctx.ints([steps], "axes")], keepdims=1))


@register
class SpatialDropout2D(_RateLayer):
    """Dropout of whole feature maps. Args: rate, data_format=None, seed=None."""

    signature = (
        Arg("rate", float_in(0.0, 1.0, hi_open=True)),
        Arg("data_format", data_format, None),
        Arg("seed", optional(integer), None),
    )
    expected_rank = 4
    layout = "height, width, channels"

    def noise_like(self, ctx, x):
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        axes = sorted(x.physical_axis(a) for a in spatial)
        return x.like(ctx.op("ReduceMax", [x, ctx.ints(axes, "axes")], keepdims=1))


@register
class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise in training; identity at inference.
    Args: stddev, seed=None."""

    family = "regularization"
    has_training_mode = True
    supports_masking = True
    signature = (Arg("stddev", non_negative_float), Arg("seed", optional(integer), None))

    def build(self, inputs):
        self.expect_float(inputs[0])
        return []

    def output_types(self, inputs):
        return inputs[0]

    def lower(self, ctx, inputs):
        (x,) = inputs
        if not ctx.training or self.stddev == 0:
            return [x]  # inference: the identity
        # Box-Muller from two independent uniform streams
        u1 = ctx.op("Sub", [ctx.const(1.0), ctx.uniform_noise(x, stream=0)])  # (0, 1]
        u2 = ctx.uniform_noise(x, stream=1)
        radius = ctx.op("Sqrt", [ctx.op("Mul", [ctx.const(-2.0), ctx.op("Log", [u1])])])
        angle = ctx.op("Cos", [ctx.op("Mul", [u2, ctx.const(2 * 3.141592653589793)])])
        noise = ctx.op("Mul", [ctx.op("Mul", [radius, angle]), ctx.const(self.stddev)])
        return [x.like(ctx.op("Add", [x, noise]))]


@register
class Embedding(Layer):
    """Turns integer indices into dense vectors: `embeddings[inputs]`.

    Args: input_dim (vocabulary size), output_dim, embeddings_initializer=uniform
    (RandomUniform(-0.05, 0.05)), embeddings_regularizer=None, mask_zero=false (id 0 is
    padding: the output carries the Keras mask `ids != 0`, which recurrent layers,
    GlobalAveragePooling1D, MultiHeadAttention and the training losses honour; see
    docs/language.md, "Masking").
    Input shape: (batch, ...) integers. Output shape: (batch, ..., output_dim).
    """

    family = "embedding"
    signature = (
        Arg("input_dim", positive_int),
        Arg("output_dim", positive_int),
        Arg("embeddings_initializer", initializer, "random_uniform"),
        Arg("embeddings_regularizer", regularizer, None),
        Arg("embeddings_constraint", no_constraint, None),
        Arg("mask_zero", boolean, False),
        Arg("input_length", optional(positive_int), None),
    )

    def build(self, inputs):
        (x,) = inputs
        if x.dtype not in ("int64", "int32", "int8", "uint8"):
            self.fail(
                f"Embedding expects integer token ids; got {x.dtype}",
                "declare the input as int64[...]",
            )
        return [
            self.weight(
                "embeddings",
                (self.input_dim, self.output_dim),
                self.embeddings_initializer,
                regularizer=self.embeddings_regularizer,
            )
        ]

    def output_types(self, inputs):
        (x,) = inputs
        return TensorType("float32", x.shape + (self.output_dim,))

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        ids = x.name
        if x.type.dtype not in ("int64", "int32"):
            ids = ctx.op("Cast", [ids], to=7)  # int64
        out = ctx.op("Gather", [ctx.weight("embeddings"), ids], axis=0)
        y = x.like(out, self.output_types([x.type]))
        if self.mask_zero:  # Keras: ops.not_equal(inputs, 0)
            import numpy as np

            zero = ctx.const([0], np.int32 if x.type.dtype == "int32" else np.int64, "zero")
            y = replace(y, mask=ctx.op("Not", [ctx.op("Equal", [ids, zero])]))
        return [y]

    def compute_mask(self, ctx, inputs, outputs):
        return [outputs[0].mask]
