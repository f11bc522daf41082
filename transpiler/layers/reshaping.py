"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D/2D,
Cropping1D/2D, UpSampling1D/2D (Keras 3 signatures; none has weights).

They move data without computing on it, so they accept any dtype (bilinear upsampling
excepted)."""

from __future__ import annotations

from dataclasses import replace

from transpiler.graph.types import Dim, TensorType, format_shape
from transpiler.layers.args import (
    ArgError,
    choice,
    data_format,
    describe,
    int_list,
    int_tuple,
    is_int,
    padding_pairs,
    positive_int,
)
from transpiler.layers.base import Arg, Layer, LayerError, Weight, register
from transpiler.layers.lowering_utils import onnx_pads, spatial_physical_axes
from transpiler.layers.shapes import padded, product, scaled, spatial_axes, spatial_layout


class _Reshaping(Layer):
    family = "reshape"


def _target_shape(value) -> tuple[int, ...]:
    dims = tuple(value) if isinstance(value, (list, tuple)) else None
    if (
        dims is None
        or not all(map(is_int, dims))
        or any(d == 0 or d < -1 for d in dims)
        or dims.count(-1) > 1
    ):
        raise ArgError(
            f"expected a list of positive integers with at most one -1, got {describe(value)}",
            "the batch axis is not part of target_shape: Reshape([28, 28, 1])",
        )
    return dims


@register
class Flatten(_Reshaping):
    """Flattens every axis but the batch axis: (batch, d1, ..., dn) -> (batch, d1*...*dn).

    Args: data_format=None. The elements are ordered as in channels_last: with
    data_format=channels_first, Keras first transposes a (batch, channels, ...) input to
    (batch, ..., channels) and then flattens, so the element order (not the shape)
    depends on data_format. A rank-1 input (batch,) becomes (batch, 1).
    Output shape: (batch, product of the other axes); unknown if any axis is dynamic.
    """

    signature = (Arg("data_format", data_format, None),)

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        rest = x.shape[1:]
        return x.with_shape((x.shape[0], product(rest) if rest else 1))

    def lower(self, ctx, inputs):
        (x,) = inputs
        if self.data_format == "channels_first" and x.rank > 2:
            # Keras moves the channels last before flattening
            x = ctx.stored_as(x, (0, *range(2, x.rank), 1))
        else:
            x = ctx.logical(x)
        y = ctx.op("Flatten", [x], axis=1)
        return [replace(x, name=y, type=self.output_types([x.type]), perm=None)]


@register
class Reshape(_Reshaping):
    """Reshapes to `target_shape` (without the batch axis); one entry may be -1, which is
    inferred from the number of elements.

    Args: target_shape. Output shape: (batch, *target_shape). The element count must be
    unchanged; with a dynamic input axis, -1 stays unknown (unless the dynamic axis
    simply moves: (batch, t, 4, 8) to [-1, 32] gives (batch, t, 32)).
    """

    signature = (Arg("target_shape", _target_shape),)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        self.output_types(inputs)
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        rest = x.shape[1:]
        target = list(self.target_shape)
        known_target = 1
        for d in target:
            known_target *= d if d != -1 else 1
        total = product(rest) if rest else 1
        if isinstance(total, int):
            if -1 in target:
                if total % known_target:
                    self._mismatch(x, f"{total} elements do not divide by {known_target}")
                target[target.index(-1)] = total // known_target
            elif total != known_target:
                self._mismatch(x, f"{total} elements cannot become {known_target}")
        elif -1 in target:
            target[target.index(-1)] = _moved_axis(rest, known_target)
        return x.with_shape((x.shape[0], *target))

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        shape = ctx.ints([0, *self.target_shape])  # 0: the batch axis as it is
        return [x.like(ctx.op("Reshape", [x, shape]), self.output_types([x.type]))]

    def _mismatch(self, x: TensorType, why: str) -> None:
        self.fail(
            f"Reshape cannot reshape {format_shape(x.shape)} to target_shape "
            f"{describe(self.target_shape)}: {why}",
            "the number of elements (without the batch axis) must stay the same",
        )


def _moved_axis(rest: tuple[Dim, ...], known_target: int) -> Dim:
    """The -1 of a reshape whose input has exactly one symbolic axis and whose other
    sizes match: that axis itself. Otherwise unknown."""
    symbols = [d for d in rest if not isinstance(d, int)]
    known = product([d for d in rest if isinstance(d, int)] or [1])
    if len(symbols) == 1 and symbols[0] is not None and known == known_target:
        return symbols[0]
    return None


@register
class Permute(_Reshaping):
    """Permutes the non-batch axes. Args: dims, 1-based (the batch axis is 0), a
    permutation of 1..rank-1: Permute([2, 1]) swaps the two axes of a (batch, a, b) input.
    Output shape: (batch, shape[dims[0]], shape[dims[1]], ...).
    """

    signature = (Arg("dims", int_list),)

    @classmethod
    def validate(cls, config: dict) -> None:
        dims = config["dims"]
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise LayerError(
                f"Permute: dims expected a permutation of 1..{len(dims)}, got {describe(dims)}",
                "dims are 1-based and leave out the batch axis, e.g. Permute([2, 1])",
                arg="dims",
            )

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        if x.rank != len(self.dims) + 1:
            self.fail(
                f"Permute with dims={describe(self.dims)} expects a rank-{len(self.dims) + 1} "
                f"input; got {format_shape(x.shape)}",
                "list every non-batch axis once in dims",
            )
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        return x.with_shape((x.shape[0], *(x.shape[d] for d in self.dims)))

    def lower(self, ctx, inputs):
        # One Transpose from the stored layout straight to the permuted logical order.
        (x,) = inputs
        order = (0, *self.dims)  # output axis j is logical input axis order[j]
        stored = list(range(x.rank)) if x.perm is None else list(x.perm)
        perm = [stored.index(a) for a in order]
        out_type = self.output_types([x.type])
        if perm == list(range(x.rank)):
            y = ctx.op("Identity", [x])
        else:
            y = ctx.op("Transpose", [x], perm=perm)
        return [replace(x, name=y, type=out_type, perm=None)]


@register
class RepeatVector(_Reshaping):
    """Repeats a vector n times. Args: n.
    Input shape: (batch, features). Output shape: (batch, n, features)."""

    signature = (Arg("n", positive_int),)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        self.expect_rank(inputs[0], 2, "features")
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        return x.with_shape((x.shape[0], self.n, x.shape[1]))

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        y = ctx.op("Unsqueeze", [x, ctx.ints([1], "axes")])
        y = ctx.op("Expand", [y, ctx.ints([1, self.n, 1])])
        return [x.like(y, self.output_types([x.type]))]


class _Spatial(_Reshaping):
    """Shared rank check and per-axis shape rule of padding, cropping and upsampling."""

    rank = 2
    data_format = "channels_last"

    def pairs(self) -> tuple[tuple[int, int], ...]:
        """(before, after) added to each spatial axis (negative for cropping)."""
        raise NotImplementedError

    def new_length(self, n: Dim, i: int) -> Dim:
        before, after = self.pairs()[i]
        return padded(n, before, after)

    def build(self, inputs: list[TensorType]) -> list[Weight]:
        (x,) = inputs
        self.expect_rank(x, self.rank + 2, spatial_layout(self.rank, self.data_format))
        self.check(x)
        return []

    def check(self, x: TensorType) -> None:
        pass

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        (x,) = inputs
        shape = list(x.shape)
        for i, axis in enumerate(spatial_axes(x.rank, self.data_format)):
            shape[axis] = self.new_length(shape[axis], i)
        return x.with_shape(shape)

    def per_stored_axis(self, x, values, default):
        """`values` (one per logical spatial axis) placed at x's stored axes."""
        out = [default] * x.rank
        for axis, v in zip(spatial_physical_axes(x, self.data_format), values):
            out[axis] = v
        return out


@register
class ZeroPadding1D(_Spatial):
    """Adds zeros at the start and end of the steps axis. Args: padding=1 (an int, or
    [before, after]), data_format=None.
    Input shape: (batch, steps, channels). Output shape: (batch, before + steps + after,
    channels)."""

    rank = 1
    signature = (
        Arg("padding", int_tuple(2, minimum=0), 1),
        Arg("data_format", data_format, None),
    )

    def pairs(self) -> tuple[tuple[int, int], ...]:
        return (self.padding,)

    def lower(self, ctx, inputs):
        return _lower_padding(self, ctx, inputs)


@register
class ZeroPadding2D(_Spatial):
    """Adds rows and columns of zeros around an image. Args: padding=(1, 1) (an int, [rows,
    cols], or [[top, bottom], [left, right]]), data_format=None.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, top + height + bottom, left + width + right, channels)."""

    signature = (
        Arg("padding", padding_pairs(2), (1, 1)),
        Arg("data_format", data_format, None),
    )

    def pairs(self) -> tuple[tuple[int, int], ...]:
        return self.padding

    def lower(self, ctx, inputs):
        return _lower_padding(self, ctx, inputs)


def _lower_padding(layer: _Spatial, ctx, inputs):
    """Zero padding is layout-agnostic: Pad the stored spatial axes."""
    (x,) = inputs
    pads = ctx.ints(onnx_pads(layer.per_stored_axis(x, layer.pairs(), (0, 0))), "pads")
    y = ctx.op("Pad", [x, pads], mode="constant")  # no value: zero of x's dtype
    return [x.like(y, layer.output_types([x.type]))]


class _Cropping(_Spatial):
    def pairs(self) -> tuple[tuple[int, int], ...]:
        return tuple((-a, -b) for a, b in self.crops())

    def crops(self) -> tuple[tuple[int, int], ...]:
        raise NotImplementedError

    def check(self, x: TensorType) -> None:
        axes = spatial_axes(x.rank, self.data_format)
        for axis, (a, b) in zip(axes, self.crops()):
            n = x.shape[axis]
            if isinstance(n, int) and a + b >= n:
                self.fail(
                    f"{self.keras_class()}: cropping {describe(self.cropping)} removes "
                    f"{a + b} of the {n} elements of axis {axis} of input "
                    f"{format_shape(x.shape)}",
                    "cropping must leave at least one element on every axis",
                )

    def lower(self, ctx, inputs):
        # Layout-agnostic: Slice the stored spatial axes; ends count from the end, so a
        # dynamic length needs no Shape op.
        (x,) = inputs
        crops = self.crops()
        axes = spatial_physical_axes(x, self.data_format)
        starts = [a for a, _ in crops]
        ends = [-b if b else _INT64_MAX for _, b in crops]
        y = ctx.op(
            "Slice",
            [x, ctx.ints(starts, "starts"), ctx.ints(ends, "ends"), ctx.ints(axes, "axes")],
        )
        return [x.like(y, self.output_types([x.type]))]


_INT64_MAX = 2**63 - 1


@register
class Cropping1D(_Cropping):
    """Removes elements at the start and end of the steps axis. Args: cropping=(1, 1)
    (an int or [start, end]).
    Input shape: (batch, steps, channels).
    Output shape: (batch, steps - start - end, channels)."""

    rank = 1
    signature = (Arg("cropping", int_tuple(2, minimum=0), (1, 1)),)

    def crops(self) -> tuple[tuple[int, int], ...]:
        return (self.cropping,)


@register
class Cropping2D(_Cropping):
    """Removes rows and columns at the borders of an image. Args:
    cropping=((0, 0), (0, 0)) (an int, [rows, cols], or [[top, bottom], [left, right]]),
    data_format=None. Input shape: (batch, height, width, channels).
    Output shape: (batch, height - top - bottom, width - left - right, channels)."""

    signature = (
        Arg("cropping", padding_pairs(2), ((0, 0), (0, 0))),
        Arg("data_format", data_format, None),
    )

    def crops(self) -> tuple[tuple[int, int], ...]:
        return self.cropping


@register
class UpSampling1D(_Spatial):
    """Repeats each step `size` times. Args: size=2.
    Input shape: (batch, steps, channels). Output shape: (batch, steps * size, channels)."""

    rank = 1
    signature = (Arg("size", positive_int, 2),)

    def new_length(self, n: Dim, i: int) -> Dim:
        return scaled(n, self.size)

    def lower(self, ctx, inputs):
        return _lower_upsampling(self, ctx, inputs, (self.size,), "nearest")


@register
class UpSampling2D(_Spatial):
    """Enlarges an image by `size`: repeats rows and columns (interpolation=nearest) or
    resizes bilinearly (interpolation=bilinear, half-pixel centers like Keras's resize).

    Args: size=(2, 2), data_format=None, interpolation=nearest.
    Input shape: (batch, height, width, channels).
    Output shape: (batch, height * size[0], width * size[1], channels)."""

    signature = (
        Arg("size", int_tuple(2), (2, 2)),
        Arg("data_format", data_format, None),
        Arg("interpolation", choice("nearest", "bilinear"), "nearest"),
    )

    def check(self, x: TensorType) -> None:
        if self.interpolation != "nearest":
            self.expect_float(x)

    def new_length(self, n: Dim, i: int) -> Dim:
        return scaled(n, self.size[i])

    def lower(self, ctx, inputs):
        return _lower_upsampling(self, ctx, inputs, self.size, self.interpolation)


def _repeat(ctx, x, factors) -> str:
    """Keras's ops.repeat of each stored axis by its factor, as data movement (for the
    dtypes onnxruntime's Resize lacks: int64, bool): per axis, Unsqueeze after it, Expand
    the new axis to the factor, Reshape the pair into one axis."""
    out = x.name
    for axis, factor in enumerate(int(f) for f in factors):
        if factor == 1:
            continue
        spread = [1] * (x.rank + 1)
        spread[axis + 1] = factor
        widened = ctx.op("Unsqueeze", [out, ctx.ints([axis + 1], "axes")])
        widened = ctx.op("Expand", [widened, ctx.ints(spread)])
        parts = [ctx.ints([-1])]
        if axis:
            parts.insert(0, ctx.op("Shape", [out], end=axis))
        if axis + 1 < x.rank:
            parts.append(ctx.op("Shape", [out], start=axis + 1))
        out = ctx.op("Reshape", [widened, ctx.op("Concat", parts, axis=0)])
    return out


def _lower_upsampling(layer: _Spatial, ctx, inputs, sizes, interpolation: str):
    """Layout-agnostic Resize by integer factors on the stored spatial axes.

    nearest: Keras repeats each element (ops.repeat), which is Resize nearest with
    asymmetric coordinates and floor rounding. bilinear: Keras resizes with half-pixel
    centers and no antialiasing (torch interpolate align_corners=False, TF
    half_pixel_centers=True), which is ONNX's half_pixel linear mode."""
    (x,) = inputs
    factors = layer.per_stored_axis(x, [float(s) for s in sizes], 1.0)
    if interpolation == "nearest" and x.type.dtype in ("int64", "bool"):
        return [x.like(_repeat(ctx, x, factors), layer.output_types([x.type]))]
    scales = ctx.const(factors, name="scales")
    if interpolation == "nearest":
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel", "antialias": 0}
    y = ctx.op("Resize", [x, "", scales], **attrs)
    return [x.like(y, layer.output_types([x.type]))]
