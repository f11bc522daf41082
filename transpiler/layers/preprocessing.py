"""Preprocessing layers that are part of a model: Rescaling (and Normalization).

Keras computes them in the layer's compute dtype: any input dtype (uint8 images, int64
ids, bool) is cast to float32 first, and the output is float32. Their constants broadcast
against the input as numpy broadcasts, aligned on the right (Keras under its default
`image_data_format`, channels_last): a scale of shape (3,) scales the last axis, a
channels_first image takes a scale of shape (3, 1, 1).
"""

from __future__ import annotations

import numpy as np

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.args import ArgError, describe, number
from transpiler.layers.base import Arg, Layer, Weight, register

FLOAT = 1  # onnx.TensorProto.FLOAT


def float_array(value) -> float | tuple:
    """A number, or a non-empty rectangular nested list of numbers (kept as nested
    tuples): what Keras takes as a scale, an offset, a mean or a variance."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ArgError("expected a number or a non-empty list of numbers, got []")
        items = tuple(float_array(v) for v in value)
        shapes = {np.shape(i) for i in items}
        if len(shapes) != 1:
            raise ArgError(
                f"expected a number or a rectangular list of numbers, got {describe(value)}",
                "every row of a nested list needs the same length",
            )
        return items
    try:
        return number(value)
    except ArgError:
        raise ArgError(f"expected a number or a list of numbers, got {describe(value)}") from None


float_array.keras_writes_lists = True  # Keras code writes them as lists (keras_args.py)


def shape_of(value) -> tuple[int, ...]:
    """The numpy shape of a `float_array` value: () for a number."""
    return tuple(np.shape(value))


def short_text(value) -> str:
    """A `float_array` value for a diagram: 4 significant digits."""
    if isinstance(value, tuple):
        return "[" + ", ".join(short_text(v) for v in value) + "]"
    return format(value, ".4g")


def as_float32(ctx, x):
    """x cast to float32 (Keras casts every input to the compute dtype first)."""
    if x.type.dtype == "float32":
        return x
    cast = ctx.op("Cast", [x], to=FLOAT)
    return x.like(cast, TensorType("float32", x.type.shape))


def stored_constant(ctx, x, value, name: str) -> str:
    """`value` (numpy-broadcast against the logical x, aligned on the right) as an ONNX
    constant that broadcasts against x as x is stored."""
    array = np.asarray(value, np.float32)
    if array.ndim and x.perm is not None:
        full = array.reshape((1,) * (x.rank - array.ndim) + array.shape)
        array = np.transpose(full, x.perm)
    return ctx.const(array, name=name)


class _Preprocessing(Layer):
    family = "preprocessing"
    supports_masking = True

    def check_broadcast(self, x: TensorType, arg: str, value) -> None:
        """`value` must broadcast against x without changing x's shape, as Keras's
        compute_output_shape (the input shape) assumes."""
        shape = shape_of(value)
        features = x.shape[1:]
        ok = len(shape) <= len(features)
        if ok:
            for s, d in zip(reversed(shape), reversed(features)):
                if s != 1 and s != d:
                    ok = False
        if not ok:
            self.fail(
                f"{self.keras_class()}: {arg} of shape {shape} does not broadcast against "
                f"input shape {format_shape(x.shape)}",
                f"give {arg} as a number, or a list whose shape matches the input's last "
                f"axes (numpy broadcasting, the batch axis left out)",
                arg=arg,
            )

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        return TensorType("float32", inputs[0].shape)


@register
class Rescaling(_Preprocessing):
    """Rescales values: `cast(inputs, float32) * scale + offset`, in training and at
    inference. For images in [0, 255]: `Rescaling(1 / 255)` gives [0, 1],
    `Rescaling(1 / 127.5, offset=-1)` gives [-1, 1].

    Args: scale (a number, or a list broadcast against the input as numpy broadcasts,
    aligned on the last axis: one value per channel of a channels_last image),
    offset=0.0 (the same).
    Input shape: any, any dtype (integers and bools are cast to float32).
    Output shape: as input, float32.
    """

    signature = (
        Arg("scale", float_array),
        Arg("offset", float_array, 0.0),
    )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.check_broadcast(x, "scale", self.scale)
        self.check_broadcast(x, "offset", self.offset)
        return []

    def describe_config(self) -> str:
        parts = [short_text(self.scale)]
        if self.offset != 0.0:
            parts.append(f"offset={short_text(self.offset)}")
        return f"Rescaling({', '.join(parts)})"

    def lower(self, ctx, inputs):
        x = as_float32(ctx, inputs[0])
        scale = stored_constant(ctx, x, self.scale, "scale")
        offset = stored_constant(ctx, x, self.offset, "offset")
        y = ctx.op("Add", [ctx.op("Mul", [x, scale]), offset])
        return [x.like(y)]
