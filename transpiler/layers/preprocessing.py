"""Preprocessing layers that are part of a model: Rescaling and Normalization.

Keras computes them in the layer's compute dtype: any input dtype (uint8 images, int64
ids, bool) is cast to float32 first, and the output is float32. Their constants broadcast
against the input as numpy broadcasts, aligned on the right (Keras under its default
`image_data_format`, channels_last): a scale of shape (3,) scales the last axis, a
channels_first image takes a scale of shape (3, 1, 1).
"""

from __future__ import annotations

from transpiler.graph.types import TensorType, format_shape
from transpiler.layers.args import ArgError, boolean, describe, int_list, is_int, number
from transpiler.layers.base import Arg, Layer, LayerError, Weight, register

FLOAT = 1  # onnx.TensorProto.FLOAT


def float_array(value) -> float | tuple:
    """A number, or a non-empty rectangular nested list of numbers (kept as nested
    tuples): what Keras takes as a scale, an offset, a mean or a variance."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ArgError("expected a number or a non-empty list of numbers, got []")
        items = tuple(float_array(v) for v in value)
        shapes = {shape_of(i) for i in items}
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
    """The numpy shape of a `float_array` value (rectangular nested tuples): () for a
    number. (Pure Python: `ktrans check` does not import numpy.)"""
    shape = []
    while isinstance(value, tuple):
        shape.append(len(value))
        value = value[0]
    return tuple(shape)


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
    import numpy as np

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


def _axes(value) -> tuple[int, ...]:
    """Normalization's axis: an int, a list of ints, or none (one mean for everything)."""
    if value is None:
        return ()
    if is_int(value):
        return (value,)
    return int_list(value)


def _optional_array(value):
    return None if value is None else float_array(value)


_optional_array.keras_writes_lists = True

EPSILON = 1e-7  # keras.backend.epsilon(): the smallest standard deviation divided by


@register
class Normalization(_Preprocessing):
    """Shifts and scales inputs to mean 0 and variance 1 with a precomputed mean and
    variance: `(x - mean) / max(sqrt(variance), 1e-7)`, or with invert=true
    `mean + x * max(sqrt(variance), 1e-7)`.

    Args: axis=-1 (the axis or axes that keep their own mean and variance per index,
    counting the batch axis as 0; none: one mean and variance for everything),
    mean=None and variance=None (given together: numbers or lists, broadcast to the kept
    axes aligned on the right, as keras.applications passes the ImageNet statistics;
    without them the layer has the adapted statistics as weights), invert=false.
    Input shape: any, any dtype (cast to float32), with known sizes on `axis`.
    Output shape: as input, float32.
    Weights (without mean and variance): mean and variance (the sizes of the kept axes)
    and count (), all non-trainable: what Keras's adapt() computes.
    """

    signature = (
        Arg("axis", _axes, -1),
        Arg("mean", _optional_array, None),
        Arg("variance", _optional_array, None),
        Arg("invert", boolean, False),
    )

    @classmethod
    def validate(cls, config: dict) -> None:
        mean, variance = config["mean"], config["variance"]
        if (mean is None) != (variance is None):
            given = "mean" if variance is None else "variance"
            raise LayerError(
                "Normalization: mean and variance are given together or not at all; "
                f"got only {given}",
                "give both (the statistics of the data), or neither to adapt them",
                arg=given,
            )
        if mean is None:
            return
        if shape_of(mean) != shape_of(variance):
            raise LayerError(
                f"Normalization: mean has shape {shape_of(mean)} but variance has shape "
                f"{shape_of(variance)}",
                "give one variance per mean",
                arg="variance",
            )
        if len(shape_of(mean)) > len(config["axis"]):
            raise LayerError(
                f"Normalization: mean has rank {len(shape_of(mean))}, more than the "
                f"{len(config['axis'])} axes of axis={describe(list(config['axis']))}",
                "give one value per index of the kept axes",
                arg="mean",
            )

    def kept_axes(self, x: TensorType) -> tuple[int, ...]:
        kept = []
        for a in self.axis:
            index = a + x.rank if a < 0 else a
            if not 0 <= index < x.rank:
                self.fail(
                    f"Normalization: axis {a} is out of bounds for input shape "
                    f"{format_shape(x.shape)}",
                    f"the input has axes 1 to {x.rank - 1} after the batch axis",
                    arg="axis",
                )
            if index == 0:
                self.fail(
                    "Normalization: axis 0 is the batch axis",
                    "keep a feature axis such as -1, or axis=none for one mean overall",
                    arg="axis",
                )
            self.need_known(x.shape[index], f"size on axis {a}")
            kept.append(index)
        return tuple(sorted(kept))

    def broadcast_shape(self, x: TensorType) -> tuple[int, ...]:
        """The statistics' shape against x: the kept sizes, 1 elsewhere (batch too)."""
        kept = self.kept_axes(x)
        return tuple(x.shape[i] if i in kept else 1 for i in range(x.rank))

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        kept = self.kept_axes(x)
        sizes = tuple(x.shape[i] for i in kept)
        if self.mean is None:
            return [
                self.weight("mean", sizes, "zeros", trainable=False),
                self.weight("variance", sizes, "ones", trainable=False),
                self.weight("count", (), "zeros", trainable=False),
            ]
        shape = shape_of(self.mean)
        for i, s in enumerate(reversed(shape)):
            d = sizes[len(sizes) - 1 - i]
            if s not in (1, d):
                self.fail(
                    f"Normalization: mean and variance of shape {shape} do not broadcast "
                    f"to the kept axes' sizes {sizes} (input shape {format_shape(x.shape)})",
                    "give one value per index of the kept axes, or one value",
                    arg="mean",
                )
        return []

    def describe_config(self) -> str:
        parts = []
        if self.axis != (-1,):
            parts.append(f"axis={describe(list(self.axis)) if self.axis else 'none'}")
        if self.invert:
            parts.append("invert")
        return f"Normalization({', '.join(parts)})"

    def statistics(self, ctx, x):
        """(mean, standard deviation) broadcast against x as it is stored."""
        import numpy as np

        kept = self.kept_axes(x.type)
        full = self.broadcast_shape(x.type)
        perm = x.perm or tuple(range(x.rank))

        def stored(a):
            # Keras aligns the values with the kept axes from the right, then broadcasts
            shape = [1] * x.rank
            for i, s in enumerate(reversed(np.shape(a))):
                shape[kept[-1 - i]] = s
            return np.transpose(np.broadcast_to(np.reshape(a, shape), full), perm)

        if self.mean is None:
            mean = ctx.weight("mean", stored, f"{perm}")
            variance = ctx.weight("variance", stored, f"{perm}")
        else:
            mean = ctx.const(stored(np.asarray(self.mean, np.float32)), name="mean")
            variance = ctx.const(stored(np.asarray(self.variance, np.float32)), name="variance")
        std = ctx.op("Max", [ctx.op("Sqrt", [variance]), ctx.const(EPSILON)])
        return mean, std

    def lower(self, ctx, inputs):
        x = as_float32(ctx, inputs[0])
        mean, std = self.statistics(ctx, x)
        if self.invert:
            y = ctx.op("Add", [mean, ctx.op("Mul", [x, std])])
        else:
            y = ctx.op("Div", [ctx.op("Sub", [x, mean]), std])
        return [x.like(y)]
