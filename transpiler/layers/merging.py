"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Element-wise merges follow Keras's shape rule: the shapes without the batch axis are
aligned on the right and broadcast (a size of 1 stretches; other sizes must agree).
Axes count the batch axis as 0 (`axis=-1` is the last axis), as in Keras.
"""

from __future__ import annotations

from dataclasses import replace

from transpiler.graph.types import FLOAT_DTYPES, Dim, TensorType, dims_compatible, format_shape
from transpiler.layers.args import ArgError, boolean, describe, integer, is_int
from transpiler.layers.base import Arg, Layer, register
from transpiler.layers.masking import expand, mask_or


def _merge_dim(a: Dim, b: Dim) -> Dim:
    """The size two compatible axes give: a known size wins over a symbolic one, two
    different symbols give None (unknown)."""
    if a == b:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ValueError(f"{a} != {b}")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return None


def _broadcast_dim(a: Dim, b: Dim) -> Dim:
    if a == 1:
        return b
    if b == 1:
        return a
    return _merge_dim(a, b)


def _broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """Keras's element-wise merge shape of two shapes without batch; ValueError if they
    cannot broadcast."""
    if len(a) < len(b):
        a, b = b, a
    lead = len(a) - len(b)
    return a[:lead] + tuple(_broadcast_dim(x, y) for x, y in zip(a[lead:], b))


def _same_dtype(layer: Layer, inputs: list[TensorType]) -> None:
    dtypes = sorted({t.dtype for t in inputs})
    if len(dtypes) > 1:
        layer.fail(
            f"{layer.keras_class()} expects inputs of one dtype; got {', '.join(dtypes)}",
            "cast the inputs to a common dtype first",
        )


def _common_layout(ctx, inputs: list) -> list:
    """The inputs as they are stored when they share one layout, else all in Keras's."""
    if len({t.perm for t in inputs}) == 1:
        return list(inputs)
    return [ctx.logical(t) for t in inputs]


class _ElementWise(Layer):
    """An element-wise merge of two or more tensors.

    Keras masks: the output keeps the OR of the inputs' masks when every input has one
    (base_merge.compute_mask); Maximum, Minimum and Multiply also leave masked entries out
    of the result (`masked_combine`)."""

    family = "merge"
    num_inputs = (2, None)
    supports_masking = True
    #: the ONNX op that folds the inputs left to right, as Keras does
    onnx_op = "Add"
    #: the op on bool inputs, as torch computes Keras's op on them (None: Keras fails)
    bool_op: str | None = "Or"

    def lower(self, ctx, inputs):
        out_type = self.output_types([t.type for t in inputs])
        if any(t.mask is not None for t in inputs):
            if len({t.rank for t in inputs}) > 1:
                raise NotImplementedError(
                    "inputs of different ranks, one of them with a Keras mask (from "
                    "Embedding(mask_zero=true)): Keras reshapes the smaller ones and their "
                    "masks no longer line up; give the inputs one rank"
                )
            ts = [ctx.logical(t) for t in inputs]
            out = self.masked_combine(ctx, ts)
            if out is not None:
                return [replace(ts[0], name=out, type=out_type, mask=None)]
        rank = max(t.rank for t in inputs)
        if all(t.rank == rank for t in inputs):
            ts = _common_layout(ctx, inputs)
        else:
            # Keras inserts the missing axes at 1 (after batch), then broadcasts
            ts = []
            for t in inputs:
                t = ctx.logical(t)
                if t.rank < rank:
                    axes = ctx.ints(list(range(1, 1 + rank - t.rank)), "axes")
                    t = replace(t, name=ctx.op("Unsqueeze", [t, axes]))
                ts.append(t)
        out = self.combine(ctx, [t.name for t in ts], inputs[0].type.dtype)
        return [replace(ts[0], name=out, type=out_type)]

    def combine(self, ctx, names: list[str], dtype: str = "float32") -> str:
        op = self.bool_op if dtype == "bool" else self.onnx_op
        out = names[0]
        for other in names[1:]:
            out = ctx.op(op, [out, other])
        return out

    def masked_combine(self, ctx, inputs: list) -> str | None:
        """The merge of (logical) inputs of which some carry a Keras mask, where the masks
        change the values; None where they do not (Add, Subtract, Average)."""
        return None

    def compute_mask(self, ctx, inputs, outputs):
        masks = [t.mask for t in inputs]
        return [None if None in masks else mask_or(ctx, masks)]

    def build(self, inputs):
        self.output_types(inputs)  # checks the shapes
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        _same_dtype(self, inputs)
        if inputs[0].dtype == "bool" and self.bool_op is None:
            self.fail(
                f"{self.keras_class()} cannot take bool tensors (Keras cannot either)",
                "cast the inputs to a number type first",
            )
        batch = inputs[0].shape[0]
        shape = inputs[0].shape[1:]
        for t in inputs[1:]:
            if not dims_compatible(batch, t.shape[0]):
                self.fail(
                    f"{self.keras_class()}: cannot merge tensors with different batch sizes; "
                    f"got {format_shape(inputs[0].shape)} and {format_shape(t.shape)}"
                )
            try:
                merged = _broadcast(shape, t.shape[1:])
            except ValueError:
                self.fail(
                    f"{self.keras_class()}: shapes {format_shape((batch, *shape))} and "
                    f"{format_shape(t.shape)} are incompatible",
                    "element-wise merges need equal sizes on each axis (or 1, which "
                    "broadcasts); reshape or project the inputs to one shape",
                )
            batch = _merge_dim(batch, t.shape[0])
            shape = merged
        return inputs[0].with_shape((batch, *shape))


def _masked_fold(ctx, op: str, inputs: list) -> str:
    """Keras's _apply_merge_op_and_or_mask (Maximum, Minimum): a masked entry takes the
    value of the other side, so it does not count."""
    output = out_mask = None
    for t in inputs:
        x, mask = t.name, None if t.mask is None else expand(ctx, t.mask)
        if output is None:
            output, out_mask = x, mask
            continue
        if mask is not None:
            x = ctx.op("Where", [mask, x, output])
        if out_mask is not None:
            output = ctx.op("Where", [out_mask, output, x])
        out_mask = None if mask is None or out_mask is None else ctx.op("Or", [out_mask, mask])
        output = ctx.op(op, [output, x])
    return output


@register
class Add(_ElementWise):
    """Sums its inputs element-wise. Input: two or more tensors of broadcastable shapes.
    Output shape: the broadcast shape."""


@register
class Subtract(_ElementWise):
    """Subtracts the second input from the first, element-wise. Input: exactly two tensors
    of broadcastable shapes, not bool (Keras cannot subtract those either). Output shape:
    the broadcast shape."""

    num_inputs = (2, 2)
    onnx_op = "Sub"
    bool_op = None


@register
class Multiply(_ElementWise):
    """Multiplies its inputs element-wise. Input: two or more tensors of broadcastable
    shapes. Output shape: the broadcast shape."""

    onnx_op = "Mul"
    bool_op = "And"

    def masked_combine(self, ctx, inputs):
        # Keras's Multiply._merge_function: masked entries count as 1; with every input
        # masked, entries masked in all of them are 0
        every = all(t.mask is not None for t in inputs)
        output = out_mask = None
        for t in inputs:
            x = t.name
            if t.mask is not None:
                mask = expand(ctx, t.mask)
                x = ctx.op("Where", [mask, x, ctx.const(1.0)])
                if every:
                    out_mask = mask if out_mask is None else ctx.op("Or", [out_mask, mask])
            output = x if output is None else ctx.op("Mul", [output, x])
        if every:
            output = ctx.op("Where", [out_mask, output, ctx.const(0.0)])
        return output


@register
class Average(_ElementWise):
    """Averages its inputs element-wise. Input: two or more tensors of broadcastable shapes.
    Output shape: the broadcast shape; float32 for integer or bool inputs (a true division,
    as Keras's)."""

    def combine(self, ctx, names, dtype="float32"):
        total = super().combine(ctx, names, dtype)  # Keras: the sum, then / n
        if dtype not in FLOAT_DTYPES:  # a true division: float32, as Keras's
            total = ctx.op("Cast", [total], to=1)
        return ctx.op("Div", [total, ctx.const(float(len(names)))])

    def output_types(self, inputs):
        out = super().output_types(inputs)
        return out if out.dtype in FLOAT_DTYPES else TensorType("float32", out.shape)


@register
class Maximum(_ElementWise):
    """Element-wise maximum of its inputs. Input: two or more tensors of broadcastable
    shapes. Output shape: the broadcast shape."""

    onnx_op = "Max"

    def masked_combine(self, ctx, inputs):
        return _masked_fold(ctx, "Max", inputs)


@register
class Minimum(_ElementWise):
    """Element-wise minimum of its inputs. Input: two or more tensors of broadcastable
    shapes. Output shape: the broadcast shape."""

    onnx_op = "Min"
    bool_op = "And"

    def masked_combine(self, ctx, inputs):
        return _masked_fold(ctx, "Min", inputs)


@register
class Concatenate(Layer):
    """Joins its inputs along `axis`.

    Args: axis=-1 (counting the batch axis as 0; the batch axis itself cannot be joined).
    Input: one or more tensors of one rank whose shapes agree except on `axis`.
    Output shape: the common shape with the sizes on `axis` added.
    """

    family = "merge"
    num_inputs = (1, None)
    supports_masking = True
    signature = (Arg("axis", integer, -1),)

    def build(self, inputs):
        self.output_types(inputs)
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        _same_dtype(self, inputs)
        first = inputs[0]
        rank = first.rank
        shapes = ", ".join(format_shape(t.shape) for t in inputs)
        if any(t.rank != rank for t in inputs):
            self.fail(
                f"Concatenate expects inputs of one rank; got {shapes}",
                "all inputs need the same number of axes",
            )
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank:
            self.fail(
                f"Concatenate: axis {self.axis} is out of bounds for inputs of rank {rank} "
                f"({shapes})",
                arg="axis",
            )
        if axis == 0:
            self.fail(
                f"Concatenate: axis {self.axis} is the batch axis",
                "join along a feature axis, e.g. axis=-1",
                arg="axis",
            )
        out = list(first.shape)
        for t in inputs[1:]:
            for i, d in enumerate(t.shape):
                if i == axis:
                    continue
                try:
                    out[i] = _merge_dim(out[i], d)
                except ValueError:
                    self.fail(
                        f"Concatenate: shapes {format_shape(first.shape)} and "
                        f"{format_shape(t.shape)} do not match except on the concatenation "
                        f"axis (axis={self.axis})",
                        "all inputs need the same sizes on every axis except the one they "
                        "are joined along",
                    )
        sizes = [t.shape[axis] for t in inputs]
        out[axis] = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
        if len(inputs) == 1:
            out[axis] = sizes[0]
        return first.with_shape(out)

    def lower(self, ctx, inputs):
        out_type = self.output_types([t.type for t in inputs])
        if len(inputs) == 1:
            return [inputs[0].like(inputs[0].name, out_type)]
        ts = _common_layout(ctx, inputs)
        out = ctx.op("Concat", ts, axis=ts[0].physical_axis(self.axis))
        return [ts[0].like(out, out_type)]

    def compute_mask(self, ctx, inputs, outputs):
        """Keras's Concatenate.compute_mask: each input's mask (all true for an unmasked
        one) broadcast over its last axis, joined along `axis`, then any() over the last
        axis. Joined along the last axis that is the OR of the masks, or all true when an
        input has none, which ktrans leaves as no mask (every consumer computes the same
        with an all-true mask as with none)."""
        masks = [t.mask for t in inputs]
        rank = inputs[0].rank
        axis = self.axis % rank
        if axis == rank - 1:
            return [None if None in masks else mask_or(ctx, masks)]
        import numpy as np

        parts = []
        for t, mask in zip(inputs, masks):
            if mask is None:
                shape = ctx.op("Shape", [ctx.logical(t)], start=0, end=rank - 1)
                mask = ctx.op("Expand", [ctx.const(True, np.bool_, "true"), shape])
            parts.append(mask)
        return [ctx.op("Concat", parts, axis=axis)]


def _axes(value) -> int | tuple[int, int]:
    if is_int(value):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(is_int, value)):
        return tuple(value)
    raise ArgError(f"expected an axis or a list of 2 axes, got {describe(value)}")


@register
class Dot(Layer):
    """Dot product of two tensors along an axis of each, per sample (batch_dot).

    Args: axes (an axis for both, or [axis1, axis2]; counting the batch axis as 0),
    normalize=false (L2-normalize both along the axes first: the result is then the
    cosine similarity).
    Input: two float tensors of rank >= 2 whose sizes on the dotted axes agree.
    Output shape: x1's shape without axes[0], then x2's without batch and axes[1];
    (batch, 1) when nothing else remains.
    """

    family = "merge"
    num_inputs = (2, 2)
    signature = (Arg("axes", _axes), Arg("normalize", boolean, False))

    def build(self, inputs):
        self.output_types(inputs)
        return []

    def output_types(self, inputs: list[TensorType]) -> TensorType:
        _same_dtype(self, inputs)
        x1, x2 = inputs
        if x1.dtype not in FLOAT_DTYPES:
            self.fail(
                f"Dot expects float tensors; got {x1.dtype}",
                "cast the inputs to float32 first (Keras's integer Dot changes the dtype "
                "from one integer type to another)",
            )
        for t in (x1, x2):
            if t.rank < 2:
                self.fail(f"Dot expects inputs of rank 2 or more; got {format_shape(t.shape)}")
        raw = (self.axes, self.axes) if is_int(self.axes) else self.axes
        axes = []
        for a, t in zip(raw, (x1, x2)):
            index = a % t.rank if a < 0 else a
            if not 1 <= index < t.rank:
                where = "is the batch axis" if index == 0 else "is out of bounds"
                self.fail(
                    f"Dot: axis {a} {where} for input shape {format_shape(t.shape)}",
                    "dot along a feature axis: 1 to rank-1, or -1 for the last",
                    arg="axes",
                )
            axes.append(index)
        d1, d2 = x1.shape[axes[0]], x2.shape[axes[1]]
        if not dims_compatible(d1, d2) or not dims_compatible(x1.shape[0], x2.shape[0]):
            self.fail(
                f"Dot: shapes {format_shape(x1.shape)} and {format_shape(x2.shape)} are "
                f"incompatible: sizes {d1} (axis {axes[0]}) and {d2} (axis {axes[1]}) differ",
                "the dotted axes need the same size",
            )
        s1 = list(x1.shape)
        s2 = list(x2.shape)
        s1.pop(axes[0])
        s2.pop(axes[1])
        s1[0] = _merge_dim(s1[0], s2.pop(0))
        out = s1 + s2
        if len(out) == 1:
            out.append(1)
        self._axes = tuple(axes)
        return x1.with_shape(out)

    def lower(self, ctx, inputs):
        # Keras's batch_dot as one Einsum: x1's axes without a1, then x2's without batch
        # and a2; (batch, 1) when nothing else remains.
        x1, x2 = (ctx.logical(t) for t in inputs)
        out_type = self.output_types([x1.type, x2.type])
        a1, a2 = self._axes
        letters = iter("bcdefghijklmnopqrstuvwxyz")
        n, k = "a", "z"
        s1 = [n] + [next(letters) if i != a1 else k for i in range(1, x1.rank)]
        s2 = [n] + [next(letters) if i != a2 else k for i in range(1, x2.rank)]
        names = [x1.name, x2.name]
        if self.normalize:
            names = [_l2_normalize(ctx, x, a) for x, a in ((x1, a1), (x2, a2))]
        result = [c for c in s1 if c != k] + [c for c in s2[1:] if c != k]
        eq = f"{''.join(s1)},{''.join(s2)}->{''.join(result)}"
        out = ctx.op("Einsum", names, equation=eq)
        if len(result) == 1:
            out = ctx.op("Unsqueeze", [out, ctx.ints([1], "axes")])
        return [x1.like(out, out_type)]


def _l2_normalize(ctx, x, axis: int) -> str:
    """Keras's normalize(x, axis): x * min(rsqrt(sum(x ** 2, axis)), 1 / epsilon)."""
    square_sum = ctx.op("ReduceSum", [ctx.op("Mul", [x, x]), ctx.ints([axis], "axes")], keepdims=1)
    inv = ctx.op("Reciprocal", [ctx.op("Sqrt", [square_sum])])
    inv = ctx.op("Min", [inv, ctx.const(1.0 / 1e-7)])
    return ctx.op("Mul", [x, inv])
