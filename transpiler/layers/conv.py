"""Convolution layers: Conv1D/2D/3D, Conv1DTranspose/Conv2DTranspose, DepthwiseConv2D,
SeparableConv2D (Keras 3 signatures, weight layouts and output-shape rules)."""

from __future__ import annotations

from typing import ClassVar

from transpiler.graph.types import Dim, TensorType, format_shape
from transpiler.layers.activations import activation
from transpiler.layers.args import (
    boolean,
    choice,
    data_format,
    describe,
    int_tuple,
    no_constraint,
    optional,
    positive_int,
)
from transpiler.layers.base import Arg, Layer, LayerError, Weight, register
from transpiler.layers.initializers import initializer
from transpiler.layers.lowering_utils import (
    conv_kernel,
    conv_transpose_kernel,
    conv_transpose_pads,
    depthwise_kernel,
    onnx_pads,
    window_pads,
)
from transpiler.layers.regularizers import regularizer
from transpiler.layers.shapes import (
    bad_lengths,
    conv_length,
    conv_transpose_length,
    spatial_axes,
    spatial_layout,
)


def _ones(rank: int) -> int | tuple[int, ...]:
    return 1 if rank == 1 else (1,) * rank


def _window(rank: int, padding_modes: tuple[str, ...] = ("valid", "same")) -> tuple[Arg, ...]:
    return (
        Arg("kernel_size", int_tuple(rank)),
        Arg("strides", int_tuple(rank), _ones(rank)),
        Arg("padding", choice(*padding_modes), "valid"),
    )


def _weights_args(*kinds: str) -> tuple[Arg, ...]:
    """initializers, regularizers (with activity_regularizer), constraints, in Keras order."""
    names = (*kinds, "bias")
    return (
        *(
            Arg(f"{k}_initializer", initializer, "zeros" if k == "bias" else "glorot_uniform")
            for k in names
        ),
        *(Arg(f"{k}_regularizer", regularizer, None) for k in names),
        Arg("activity_regularizer", regularizer, None),
        *(Arg(f"{k}_constraint", no_constraint, None) for k in names),
    )


FILTERS = Arg("filters", positive_int)
DATA_FORMAT = Arg("data_format", data_format, None)
ACTIVATION = (Arg("activation", activation, None), Arg("use_bias", boolean, True))
DEPTH_MULTIPLIER = Arg("depth_multiplier", positive_int, 1)


def _dilation(rank: int) -> Arg:
    return Arg("dilation_rate", int_tuple(rank), _ones(rank))


def _check_strides_dilation(name: str, config: dict) -> None:
    if max(config["strides"]) > 1 and max(config["dilation_rate"]) > 1:
        raise LayerError(
            f"{name}: strides > 1 cannot be combined with dilation_rate > 1; got "
            f"strides={describe(config['strides'])}, "
            f"dilation_rate={describe(config['dilation_rate'])}",
            "use strides=1 with a dilated kernel, or dilation_rate=1 with strides",
            arg="dilation_rate",
        )


class _Conv(Layer):
    """Shared checks and output shape of the convolution family."""

    family = "conv"
    rank: ClassVar[int] = 2

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        self.expect_rank(x, self.rank + 2, spatial_layout(self.rank, self.data_format))
        n_in = self.need_known(self.channels(x), "channel axis")
        lengths = self.spatial_output(x)
        if bad_lengths(lengths):
            self.fail(
                f"{self.keras_class()}: the output would have a zero or negative size "
                f"{describe(lengths)} for input {format_shape(x.shape)} with kernel_size="
                f"{describe(self.kernel_size)}, strides={describe(self.strides)}, "
                f"dilation_rate={describe(self.dilation_rate)}, padding={self.padding}",
                self.size_hint,
            )
        return self.make_weights(n_in)

    #: how to fix an empty output
    size_hint: ClassVar[str] = "use padding=same, a smaller kernel_size, or a larger input"

    def make_weights(self, n_in: int) -> list[Weight]:
        raise NotImplementedError

    def out_channels(self, n_in: Dim) -> Dim:
        return self.filters

    def spatial_output(self, x: TensorType) -> list[Dim]:
        axes = spatial_axes(x.rank, self.data_format)
        return [
            conv_length(x.shape[a], k, s, self.padding, d)
            for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)
        ]

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        lengths = tuple(self.spatial_output(x))
        c = self.out_channels(self.channels(x))
        if self.data_format == "channels_first":
            return x.with_shape((x.shape[0], c, *lengths))
        return x.with_shape((x.shape[0], *lengths, c))

    def _bias(self, size: int) -> list[Weight]:
        if not self.use_bias:
            return []
        return [
            self.weight("bias", (size,), self.bias_initializer, regularizer=self.bias_regularizer)
        ]

    def describe_config(self) -> str:
        parts = [str(self.filters)] if hasattr(self, "filters") else []
        parts.append("x".join(str(k) for k in self.kernel_size))
        if max(self.strides) > 1:
            parts.append(f"strides={describe(self.strides)}")
        if self.padding != "valid":
            parts.append(self.padding)
        if self.activation != "linear":
            parts.append(self.activation)
        return f"{self.keras_class()}({', '.join(parts)})"

    # ------------------------------------------------------------ ONNX lowering

    def _window_attrs(self, x) -> dict:
        """kernel_shape, strides, dilations and Keras's padding as explicit pads."""
        lengths = [x.type.shape[a] for a in spatial_axes(x.rank, self.data_format)]
        return {
            "kernel_shape": list(self.kernel_size),
            "strides": list(self.strides),
            "dilations": list(self.dilation_rate),
            **window_pads(
                lengths, self.kernel_size, self.strides, self.padding, self.dilation_rate
            ),
        }

    def _bias_input(self, ctx) -> list[str]:
        return [ctx.weight("bias")] if self.use_bias else []

    def _finish(self, ctx, x, y: str):
        """The NC... output `y` as the layer's output, with its activation."""
        out = ctx.result(y, self.output_types([x.type]), self.data_format)
        return [ctx.activation(out, self.activation)]


# ---------------------------------------------------------------- Conv1D/2D/3D


class _ConvND(_Conv):
    """Conv1D/2D/3D: `activation(conv(inputs, kernel) + bias)`, optionally grouped."""

    @classmethod
    def validate(cls, config: dict) -> None:
        if config["filters"] % config["groups"]:
            raise LayerError(
                f"{cls.__name__}: filters ({config['filters']}) must be divisible by "
                f"groups ({config['groups']})",
                arg="groups",
            )
        _check_strides_dilation(cls.__name__, config)

    def make_weights(self, n_in: int) -> list[Weight]:
        if n_in % self.groups:
            self.fail(
                f"{self.keras_class()}: the input's {n_in} channels must be divisible by "
                f"groups ({self.groups})",
                "change groups or the number of input channels",
            )
        shape = (*self.kernel_size, n_in // self.groups, self.filters)
        kernel = self.weight(
            "kernel", shape, self.kernel_initializer, regularizer=self.kernel_regularizer
        )
        return [kernel, *self._bias(self.filters)]

    def lower(self, ctx, inputs):
        (x,) = inputs
        xc = ctx.channels_first(x, self.data_format)
        kernel = ctx.weight("kernel", conv_kernel)
        y = ctx.op(
            "Conv",
            [xc, kernel, *self._bias_input(ctx)],
            group=self.groups,
            **self._window_attrs(x),
        )
        return self._finish(ctx, x, y)


def _conv_signature(rank: int, padding_modes: tuple[str, ...] = ("valid", "same")):
    return (
        FILTERS,
        *_window(rank, padding_modes),
        DATA_FORMAT,
        _dilation(rank),
        Arg("groups", positive_int, 1),
        *ACTIVATION,
        *_weights_args("kernel"),
    )


@register
class Conv1D(_ConvND):
    """1D convolution over steps: `activation(conv(inputs, kernel) + bias)`.

    Args: filters, kernel_size, strides=1, padding=valid (valid, same or causal),
    data_format=None, dilation_rate=1, groups=1, activation=None, use_bias=true,
    kernel_initializer=glorot_uniform, bias_initializer=zeros, kernel_regularizer,
    bias_regularizer, activity_regularizer.
    padding=causal pads dilation_rate * (kernel_size - 1) zeros on the left only, so
    output[t] depends on no input after t.
    Input shape: (batch, steps, channels) (channels_first: (batch, channels, steps)).
    Output shape: (batch, new_steps, filters).
    Weights: kernel (kernel_size, channels // groups, filters), bias (filters,).
    """

    rank = 1
    signature = _conv_signature(1, ("valid", "same", "causal"))


@register
class Conv2D(_ConvND):
    """2D convolution over images: `activation(conv(inputs, kernel) + bias)`.

    Args: filters, kernel_size, strides=1, padding=valid, data_format=None,
    dilation_rate=1, groups=1, activation=None, use_bias=true,
    kernel_initializer=glorot_uniform, bias_initializer=zeros, kernel_regularizer,
    bias_regularizer, activity_regularizer.
    Input shape: (batch, height, width, channels) (channels_first: (batch, channels,
    height, width)). Output shape: (batch, new_height, new_width, filters).
    Weights: kernel (kh, kw, channels // groups, filters), bias (filters,).
    """

    rank = 2
    signature = _conv_signature(2)


@register
class Conv3D(_ConvND):
    """3D convolution over volumes: `activation(conv(inputs, kernel) + bias)`.

    Args: as Conv2D (filters, kernel_size, strides=1, padding=valid, data_format=None,
    dilation_rate=1, groups=1, activation, use_bias, initializers, regularizers).
    Input shape: (batch, depth, height, width, channels) (channels_first: channels at
    axis 1). Output shape: (batch, new_depth, new_height, new_width, filters).
    Weights: kernel (kd, kh, kw, channels // groups, filters), bias (filters,).
    """

    rank = 3
    signature = _conv_signature(3)


# ---------------------------------------------------------------- transposed


class _ConvTranspose(_Conv):
    """Transposed convolution (the gradient of a convolution), used to upsample.

    Args: filters, kernel_size, strides=1, padding=valid, output_padding=None,
    data_format=None, dilation_rate=1, activation=None, use_bias=true, kernel_initializer,
    bias_initializer, kernel_regularizer, bias_regularizer, activity_regularizer.
    Output length per spatial axis (k = dilation_rate * (kernel_size - 1) + 1):
    valid: (n - 1) * strides + max(k, strides), or (n - 1) * strides + k + output_padding;
    same: n * strides, or (n - 1) * strides + k % 2 + output_padding.
    Weights: kernel (*kernel_size, filters, in_channels), bias (filters,).
    """

    @classmethod
    def validate(cls, config: dict) -> None:
        _check_strides_dilation(cls.__name__, config)
        out_pad = config["output_padding"]
        if out_pad is not None and any(p >= s for p, s in zip(out_pad, config["strides"])):
            raise LayerError(
                f"{cls.__name__}: output_padding must be smaller than strides on every "
                f"axis; got output_padding={describe(out_pad)}, "
                f"strides={describe(config['strides'])}",
                arg="output_padding",
            )

    size_hint = "leave output_padding out, or use a larger input"

    def spatial_output(self, x: TensorType) -> list[Dim]:
        axes = spatial_axes(x.rank, self.data_format)
        out_pad = self.output_padding or (None,) * self.rank
        return [
            conv_transpose_length(x.shape[a], k, s, self.padding, p, d)
            for a, k, s, p, d in zip(
                axes, self.kernel_size, self.strides, out_pad, self.dilation_rate
            )
        ]

    def make_weights(self, n_in: int) -> list[Weight]:
        shape = (*self.kernel_size, self.filters, n_in)
        kernel = self.weight(
            "kernel", shape, self.kernel_initializer, regularizer=self.kernel_regularizer
        )
        return [kernel, *self._bias(self.filters)]

    def lower(self, ctx, inputs):
        (x,) = inputs
        xc = ctx.channels_first(x, self.data_format)
        out_pad = self.output_padding or (None,) * self.rank
        pads, extra = [], []
        for k, s, p, d in zip(self.kernel_size, self.strides, out_pad, self.dilation_rate):
            begin, end, more = conv_transpose_pads(k, s, self.padding, p, d)
            pads.append((begin, end))
            extra.append(more)
        kernel = ctx.weight("kernel", conv_transpose_kernel)
        y = ctx.op(
            "ConvTranspose",
            [xc, kernel, *self._bias_input(ctx)],
            kernel_shape=list(self.kernel_size),
            strides=list(self.strides),
            dilations=list(self.dilation_rate),
            pads=onnx_pads(pads),
            output_padding=extra if any(extra) else None,
        )
        return self._finish(ctx, x, y)


def _transpose_signature(rank: int):
    return (
        FILTERS,
        *_window(rank),
        Arg("output_padding", optional(int_tuple(rank, minimum=0)), None),
        DATA_FORMAT,
        _dilation(rank),
        *ACTIVATION,
        *_weights_args("kernel"),
    )


@register
class Conv1DTranspose(_ConvTranspose):
    """1D transposed convolution (see the output-length rule of the transposed family).

    Args: filters, kernel_size, strides=1, padding=valid, output_padding=None,
    data_format=None, dilation_rate=1, activation=None, use_bias=true, initializers,
    regularizers. Input shape: (batch, steps, channels).
    Output shape: (batch, new_steps, filters).
    Weights: kernel (kernel_size, filters, channels), bias (filters,).
    """

    rank = 1
    signature = _transpose_signature(1)


@register
class Conv2DTranspose(_ConvTranspose):
    """2D transposed convolution, the usual learned upsampling of decoders and GANs.

    Args: filters, kernel_size, strides=1, padding=valid, output_padding=None,
    data_format=None, dilation_rate=1, activation=None, use_bias=true, initializers,
    regularizers. Input shape: (batch, height, width, channels).
    Output shape: (batch, new_height, new_width, filters); with padding=same and no
    output_padding, new_height = height * strides.
    Weights: kernel (kh, kw, filters, channels), bias (filters,).
    """

    rank = 2
    signature = _transpose_signature(2)


# ---------------------------------------------------------------- depthwise / separable


@register
class DepthwiseConv2D(_Conv):
    """Convolves each input channel with its own `depth_multiplier` filters.

    Args: kernel_size, strides=1, padding=valid, depth_multiplier=1, data_format=None,
    dilation_rate=1, activation=None, use_bias=true, depthwise_initializer=glorot_uniform,
    bias_initializer=zeros, depthwise_regularizer, bias_regularizer, activity_regularizer.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, new_height, new_width, channels * depth_multiplier).
    Weights (Keras 3 names): kernel (kh, kw, channels, depth_multiplier),
    bias (channels * depth_multiplier,).
    """

    rank = 2
    signature = (
        *_window(2),
        DEPTH_MULTIPLIER,
        DATA_FORMAT,
        _dilation(2),
        *ACTIVATION,
        *_weights_args("depthwise"),
    )

    def out_channels(self, n_in: Dim) -> Dim:
        return n_in * self.depth_multiplier if isinstance(n_in, int) else None

    def make_weights(self, n_in: int) -> list[Weight]:
        shape = (*self.kernel_size, n_in, self.depth_multiplier)
        kernel = self.weight(
            "kernel", shape, self.depthwise_initializer, regularizer=self.depthwise_regularizer
        )
        return [kernel, *self._bias(n_in * self.depth_multiplier)]

    def lower(self, ctx, inputs):
        (x,) = inputs
        xc = ctx.channels_first(x, self.data_format)
        kernel = ctx.weight("kernel", depthwise_kernel)
        y = ctx.op(
            "Conv",
            [xc, kernel, *self._bias_input(ctx)],
            group=self.channels(x.type),
            **self._window_attrs(x),
        )
        return self._finish(ctx, x, y)


@register
class SeparableConv2D(_Conv):
    """A depthwise convolution followed by a 1x1 (pointwise) convolution to `filters`.

    Args: filters, kernel_size, strides=1, padding=valid, data_format=None,
    dilation_rate=1, depth_multiplier=1, activation=None, use_bias=true,
    depthwise_initializer, pointwise_initializer (glorot_uniform), bias_initializer=zeros,
    depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, new_height, new_width, filters).
    Weights: depthwise_kernel (kh, kw, channels, depth_multiplier),
    pointwise_kernel (1, 1, channels * depth_multiplier, filters), bias (filters,).
    """

    rank = 2
    signature = (
        FILTERS,
        *_window(2),
        DATA_FORMAT,
        _dilation(2),
        DEPTH_MULTIPLIER,
        *ACTIVATION,
        *_weights_args("depthwise", "pointwise"),
    )

    def make_weights(self, n_in: int) -> list[Weight]:
        mid = n_in * self.depth_multiplier
        return [
            self.weight(
                "depthwise_kernel",
                (*self.kernel_size, n_in, self.depth_multiplier),
                self.depthwise_initializer,
                regularizer=self.depthwise_regularizer,
            ),
            self.weight(
                "pointwise_kernel",
                (1,) * self.rank + (mid, self.filters),
                self.pointwise_initializer,
                regularizer=self.pointwise_regularizer,
            ),
            *self._bias(self.filters),
        ]

    def lower(self, ctx, inputs):
        (x,) = inputs
        xc = ctx.channels_first(x, self.data_format)
        depthwise = ctx.op(
            "Conv",
            [xc, ctx.weight("depthwise_kernel", depthwise_kernel)],
            name="DepthwiseConv",
            group=self.channels(x.type),
            **self._window_attrs(x),
        )
        pointwise = [ctx.weight("pointwise_kernel", conv_kernel), *self._bias_input(ctx)]
        y = ctx.op(
            "Conv",
            [depthwise, *pointwise],
            name="PointwiseConv",
            kernel_shape=[1] * self.rank,
        )
        return self._finish(ctx, x, y)
