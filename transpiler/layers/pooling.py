"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and their global versions
(Keras 3 signatures and output-shape rules; none has weights)."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from transpiler.graph.types import Dim, TensorType, format_shape
from transpiler.layers.args import boolean, data_format, describe, int_tuple, optional, padding
from transpiler.layers.base import REQUIRED, Arg, CallArg, Layer, Weight, register
from transpiler.layers.lowering_utils import spatial_physical_axes, window_pads
from transpiler.layers.masking import MASK_ARG, check_mask_arg, expand
from transpiler.layers.shapes import bad_lengths, pool_length, spatial_axes, spatial_layout


def _pool_signature(rank: int, default_pool: object) -> tuple[Arg, ...]:
    return (
        Arg("pool_size", int_tuple(rank), default_pool),
        Arg("strides", optional(int_tuple(rank)), None),
        Arg("padding", padding, "valid"),
        Arg("data_format", data_format, None),
    )


class _Pooling(Layer):
    """Sliding-window pooling. Args: pool_size, strides=None (= pool_size),
    padding=valid, data_format=None. Output length per spatial axis: valid:
    (n - pool_size) // strides + 1; same: ceil(n / strides)."""

    family = "pooling"
    rank: ClassVar[int] = 2

    @property
    def window_strides(self) -> tuple[int, ...]:
        """`strides`, defaulting to `pool_size` as in Keras."""
        return self.strides if self.strides is not None else self.pool_size

    def spatial_output(self, x: TensorType) -> list[Dim]:
        axes = spatial_axes(x.rank, self.data_format)
        return [
            pool_length(x.shape[a], p, s, self.padding)
            for a, p, s in zip(axes, self.pool_size, self.window_strides)
        ]

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        self.expect_rank(x, self.rank + 2, spatial_layout(self.rank, self.data_format))
        lengths = self.spatial_output(x)
        if bad_lengths(lengths):
            self.fail(
                f"{self.keras_class()}: the output would have a zero or negative size "
                f"{describe(lengths)}; input {format_shape(x.shape)} is smaller than "
                f"pool_size {describe(self.pool_size)}",
                "use padding=same, a smaller pool_size, or a larger input",
            )
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        shape = list(x.shape)
        for axis, n in zip(spatial_axes(x.rank, self.data_format), self.spatial_output(x)):
            shape[axis] = n
        return x.with_shape(shape)

    def describe_config(self) -> str:
        parts = ["x".join(str(p) for p in self.pool_size)]
        if self.window_strides != self.pool_size:
            parts.append(f"strides={describe(self.window_strides)}")
        if self.padding != "valid":
            parts.append(self.padding)
        return f"{self.keras_class()}({', '.join(parts)})"

    #: the ONNX op and its extra attributes
    onnx_op: ClassVar[str] = "MaxPool"
    onnx_attrs: ClassVar[dict] = {}

    def lower(self, ctx, inputs):
        (x,) = inputs
        xc = ctx.channels_first(x, self.data_format)
        lengths = [x.type.shape[a] for a in spatial_axes(x.rank, self.data_format)]
        y = ctx.op(
            self.onnx_op,
            [xc],
            kernel_shape=list(self.pool_size),
            strides=list(self.window_strides),
            **window_pads(lengths, self.pool_size, self.window_strides, self.padding),
            **self.onnx_attrs,
        )
        return [ctx.result(y, self.output_types([x.type]), self.data_format)]


class _AveragePooling(_Pooling):
    # Keras's 'same' average leaves the padded cells out of the mean (TensorFlow's and
    # JAX's rule; the torch backend agrees when the pads are symmetric).
    onnx_op = "AveragePool"
    onnx_attrs = {"count_include_pad": 0}


@register
class MaxPooling1D(_Pooling):
    """Maximum over windows of steps. Args: pool_size=2, strides=None (= pool_size),
    padding=valid, data_format=None.
    Input shape: (batch, steps, channels). Output shape: (batch, new_steps, channels)."""

    rank = 1
    signature = _pool_signature(1, 2)


@register
class MaxPooling2D(_Pooling):
    """Maximum over windows of an image. Args: pool_size=(2, 2), strides=None
    (= pool_size), padding=valid, data_format=None.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, new_height, new_width, channels)."""

    rank = 2
    signature = _pool_signature(2, (2, 2))


@register
class MaxPooling3D(_Pooling):
    """Maximum over windows of a volume. Args: pool_size=(2, 2, 2), strides=None
    (= pool_size), padding=valid, data_format=None.
    Input shape: (batch, depth, height, width, channels).
    Output shape: (batch, new_depth, new_height, new_width, channels)."""

    rank = 3
    signature = _pool_signature(3, (2, 2, 2))


@register
class AveragePooling1D(_AveragePooling):
    """Mean over windows of steps. Args: pool_size (required in Keras 3), strides=None
    (= pool_size), padding=valid, data_format=None. With padding=same the mean is over
    the valid (unpadded) elements only.
    Input shape: (batch, steps, channels). Output shape: (batch, new_steps, channels)."""

    rank = 1
    signature = _pool_signature(1, REQUIRED)


@register
class AveragePooling2D(_AveragePooling):
    """Mean over windows of an image. Args: pool_size (required in Keras 3), strides=None
    (= pool_size), padding=valid, data_format=None. With padding=same the mean is over
    the valid (unpadded) elements only.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, new_height, new_width, channels)."""

    rank = 2
    signature = _pool_signature(2, REQUIRED)


@register
class AveragePooling3D(_AveragePooling):
    """Mean over windows of a volume. Args: pool_size (required in Keras 3),
    strides=None (= pool_size), padding=valid, data_format=None.
    Input shape: (batch, depth, height, width, channels).
    Output shape: (batch, new_depth, new_height, new_width, channels)."""

    rank = 3
    signature = _pool_signature(3, REQUIRED)


# ---------------------------------------------------------------- global pooling


class _GlobalPooling(Layer):
    """Reduces all spatial axes. Args: data_format=None, keepdims=false.
    Output shape: (batch, channels), or with keepdims the spatial axes kept as 1."""

    family = "pooling"
    rank: ClassVar[int] = 2
    signature = (Arg("data_format", data_format, None), Arg("keepdims", boolean, False))

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_float(x)
        self.expect_rank(x, self.rank + 2, spatial_layout(self.rank, self.data_format))
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        c = self.channels(x)
        if not self.keepdims:
            return x.with_shape((x.shape[0], c))
        ones = (1,) * self.rank
        if self.data_format == "channels_first":
            return x.with_shape((x.shape[0], c, *ones))
        return x.with_shape((x.shape[0], *ones, c))

    #: the ONNX reduction
    onnx_op: ClassVar[str] = "ReduceMean"

    def lower(self, ctx, inputs):
        # Layout-agnostic: reduces the stored spatial axes wherever they are.
        (x,) = inputs
        out_type = self.output_types([x.type])
        axes = spatial_physical_axes(x, self.data_format)
        y = ctx.op(self.onnx_op, [x, ctx.ints(sorted(axes), "axes")], keepdims=int(self.keepdims))
        if self.keepdims:
            return [x.like(y, out_type)]
        # (batch, channels) in the order the two are stored in
        kept = [a for a in range(x.rank) if a not in axes]
        logical = [a if x.perm is None else x.perm[a] for a in kept]
        perm = None if logical == sorted(logical) else (1, 0)
        return [replace(x, name=y, type=out_type, perm=perm)]


class _GlobalMaxPooling(_GlobalPooling):
    onnx_op = "ReduceMax"


@register
class GlobalMaxPooling1D(_GlobalMaxPooling):
    """Maximum over all steps. Args: data_format=None, keepdims=false.
    Input shape: (batch, steps, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, channels))."""

    rank = 1


@register
class GlobalMaxPooling2D(_GlobalMaxPooling):
    """Maximum over height and width. Args: data_format=None, keepdims=false.
    Input shape: (batch, height, width, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, 1, channels))."""

    rank = 2


@register
class GlobalMaxPooling3D(_GlobalMaxPooling):
    """Maximum over depth, height and width. Args: data_format=None, keepdims=false.
    Input shape: (batch, depth, height, width, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, 1, 1, channels))."""

    rank = 3


@register
class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all steps. Args: data_format=None, keepdims=false.
    Input shape: (batch, steps, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, channels)).
    With a Keras mask (Embedding(mask_zero=true)) the mean is over the unmasked steps (nan
    for a sample with none, as in Keras); the output carries no mask. A call may pass the
    mask itself: `GlobalAveragePooling1D()(x, mask=m)`.
    """

    rank = 1
    call_signature = (CallArg("inputs", "tensor", True), MASK_ARG)

    def check_call(self, inputs, call) -> None:
        if "mask" in call.tensors and self.data_format == "channels_first":
            self.fail(
                "GlobalAveragePooling1D: mask= with data_format=channels_first is not "
                "supported (Keras lines the mask up with the wrong axis)",
                "use data_format=channels_last",
                arg="mask",
            )
        check_mask_arg(self, inputs[0], call)

    def lower(self, ctx, inputs):
        (x,) = inputs
        if x.mask is None:
            return super().lower(ctx, inputs)
        if self.data_format == "channels_first":
            raise NotImplementedError(
                "a Keras mask (from Embedding(mask_zero=true)) with data_format="
                "channels_first: Keras lines the (batch, steps) mask up with the wrong axis; "
                "use data_format=channels_last"
            )
        # Keras: sum(where(mask, x, 0), steps) / sum(mask, steps)
        x = ctx.logical(x)
        keep = expand(ctx, x.mask)
        axes = ctx.ints([1], "axes")
        kept = ctx.op("Where", [keep, x, ctx.const(0.0)])
        total = ctx.op("ReduceSum", [kept, axes], keepdims=int(self.keepdims))
        count = ctx.op("ReduceSum", [ctx.op("Cast", [keep], to=1), axes], keepdims=1)
        if not self.keepdims:
            count = ctx.op("Squeeze", [count, axes])
        out_type = self.output_types([x.type])
        return [replace(x, name=ctx.op("Div", [total, count]), type=out_type, mask=None)]


@register
class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width. Args: data_format=None, keepdims=false.
    Input shape: (batch, height, width, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, 1, channels))."""

    rank = 2


@register
class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width. Args: data_format=None, keepdims=false.
    Input shape: (batch, depth, height, width, channels). Output shape: (batch, channels)
    (keepdims: (batch, 1, 1, 1, channels))."""

    rank = 3
