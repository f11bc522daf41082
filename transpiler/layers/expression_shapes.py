"""Expression operations that move or select elements: reshape, transpose, concat,
expand_dims, squeeze and indexing (see expressions.py for the conventions on axes)."""

from __future__ import annotations

from transpiler.graph.types import Dim, format_shape
from transpiler.layers.expressions import Expression


class ReshapeTo(Expression):
    """reshape(x, target) with the target excluding the batch axis; one -1 allowed."""

    def build(self, inputs):
        (x,) = inputs
        target = list(self.target)
        if sum(1 for d in target if d == -1) > 1:
            self.fail("reshape: at most one dimension can be -1")
        if any(d == 0 or d < -1 for d in target):
            self.fail(f"reshape: dimensions must be positive or -1; got {target}")
        known = 1
        for d in x.shape[1:]:
            if not isinstance(d, int):
                known = None
                break
            known *= d
        fixed = 1
        for d in target:
            if d != -1:
                fixed *= d
        if -1 in target:
            if known is None:
                resolved = None
            elif known % fixed:
                self.fail(
                    f"reshape: cannot reshape {format_shape(x.shape)} to "
                    f"{tuple(target)}: {known} elements do not divide by {fixed}"
                )
            else:
                resolved = known // fixed
            target = [resolved if d == -1 else d for d in target]
        elif known is not None and known != fixed:
            self.fail(
                f"reshape: cannot reshape {format_shape(x.shape)} ({known} elements) to "
                f"{tuple(target)} ({fixed} elements)"
            )
        self.resolved = tuple(target)
        return []

    def output_types(self, inputs):
        (x,) = inputs
        return x.with_shape((x.shape[0],) + self.resolved)

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        target = [0] + [-1 if d is None else d for d in self.resolved]
        if sum(1 for d in target[1:] if d == -1) > 1:
            target = [0, *self.target]
        out = ctx.op("Reshape", [x, ctx.ints(target)])
        return [x.like(out, self.output_types([x.type]))]


class Transpose(Expression):
    """transpose(x, perm): perm includes the batch axis, which must stay first."""

    def build(self, inputs):
        (x,) = inputs
        perm = list(self.perm) if self.perm is not None else None
        if perm is None:
            perm = [0] + list(range(x.rank - 1, 0, -1))
        if sorted(perm) != list(range(x.rank)):
            self.fail(
                f"transpose: perm {perm} is not a permutation of 0..{x.rank - 1}",
                "perm counts the batch axis as 0, as in keras.ops.transpose",
            )
        if perm[0] != 0:
            self.fail("transpose: the batch axis must stay first (perm[0] == 0)")
        self.resolved = tuple(perm)
        return []

    def output_types(self, inputs):
        (x,) = inputs
        return x.with_shape(tuple(x.shape[p] for p in self.resolved))

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        out = ctx.op("Transpose", [x], perm=list(self.resolved))
        return [x.like(out, self.output_types([x.type]))]


class Concat(Expression):
    """concat(a, b, ..., axis=-1)."""

    num_inputs = (1, None)

    def build(self, inputs):
        rank = inputs[0].rank
        for t in inputs:
            self.expect_float(t)
            if t.rank != rank:
                self.fail(
                    "concat: all inputs need the same rank; got "
                    + ", ".join(format_shape(t.shape) for t in inputs)
                )
        self.resolved = self.check_axis(self.axis, rank)
        for t in inputs[1:]:
            for i, (p, q) in enumerate(zip(inputs[0].shape, t.shape)):
                if i != self.resolved and isinstance(p, int) and isinstance(q, int) and p != q:
                    self.fail(
                        f"concat: shapes {format_shape(inputs[0].shape)} and "
                        f"{format_shape(t.shape)} differ outside axis {self.axis}"
                    )
        return []

    def output_types(self, inputs):
        total: Dim = 0
        for t in inputs:
            d = t.shape[self.resolved]
            total = total + d if isinstance(total, int) and isinstance(d, int) else None
        shape = list(inputs[0].shape)
        shape[self.resolved] = total
        return inputs[0].with_shape(shape)

    def lower(self, ctx, inputs):
        perms = {t.perm for t in inputs}
        ts = list(inputs) if len(perms) == 1 else [ctx.logical(t) for t in inputs]
        first = ts[0]
        out = ctx.op("Concat", ts, axis=first.physical_axis(self.resolved))
        return [first.like(out, self.output_types([t.type for t in ts]))]


class ExpandDims(Expression):
    """expand_dims(x, axis): a new axis of size 1 (axis counts batch as 0)."""

    def build(self, inputs):
        rank = inputs[0].rank + 1
        self.resolved = self.check_axis(self.axis, rank)
        return []

    def output_types(self, inputs):
        shape = list(inputs[0].shape)
        shape.insert(self.resolved, 1)
        return inputs[0].with_shape(shape)

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        out = ctx.op("Unsqueeze", [x, ctx.ints([self.resolved], "axes")])
        return [x.like(out, self.output_types([x.type]))]


class Squeeze(Expression):
    """squeeze(x, axis): drops an axis of size 1."""

    def build(self, inputs):
        (x,) = inputs
        self.resolved = self.check_axis(self.axis, x.rank)
        if x.shape[self.resolved] != 1:
            self.fail(
                f"squeeze: axis {self.axis} of {format_shape(x.shape)} has size "
                f"{x.shape[self.resolved]}, not 1"
            )
        return []

    def output_types(self, inputs):
        shape = list(inputs[0].shape)
        del shape[self.resolved]
        return inputs[0].with_shape(shape)

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        out = ctx.op("Squeeze", [x, ctx.ints([self.resolved], "axes")])
        return [x.like(out, self.output_types([x.type]))]


class Index(Expression):
    """x[:, 0, 1:3]: integer indices drop an axis, slices keep it (step > 0).

    `items` is a tuple per non-batch axis: ("index", i) or ("slice", start, stop, step).
    """

    def build(self, inputs):
        (x,) = inputs
        if len(self.items) > x.rank - 1:
            self.fail(f"too many indices: {format_shape(x.shape)} has {x.rank - 1} non-batch axes")
        shape: list[Dim] = [x.shape[0]]
        self.resolved = []
        for axis, item in enumerate(self.items, start=1):
            size = x.shape[axis]
            if item[0] == "index":
                i = item[1]
                if isinstance(size, int) and not -size <= i < size:
                    self.fail(f"index {i} is out of range for axis {axis} of size {size}")
                self.resolved.append(("index", i))
                continue
            _, start, stop, step = item
            step = 1 if step is None else step
            if step <= 0:
                self.fail("slices need a positive step")
            if isinstance(size, int):
                s, e, _ = slice(start, stop, step).indices(size)
                length = max(0, (e - s + step - 1) // step)
                if length == 0:
                    self.fail(f"slice {start}:{stop} of axis {axis} (size {size}) is empty")
            elif start is None and stop is None and step == 1:
                length = size
            else:
                length = None
            shape.append(length)
            self.resolved.append(("slice", start, stop, step))
        shape.extend(x.shape[1 + len(self.items) :])
        self.out_shape = tuple(shape)
        return []

    def output_types(self, inputs):
        return inputs[0].with_shape(self.out_shape)

    def lower(self, ctx, inputs):
        x = ctx.logical(inputs[0])
        big = 2**62
        starts, ends, axes, steps, drop = [], [], [], [], []
        for axis, item in enumerate(self.resolved, start=1):
            if item[0] == "index":
                i = item[1]
                starts.append(i)
                ends.append(i + 1 if i != -1 else big)
                steps.append(1)
                drop.append(axis)
            else:
                _, start, stop, step = item
                if start is None and stop is None and step == 1:
                    continue
                starts.append(0 if start is None else start)
                ends.append(big if stop is None else stop)
                steps.append(step)
            axes.append(axis)
        name = x.name
        if axes:
            name = ctx.op(
                "Slice",
                [
                    name,
                    ctx.ints(starts, "starts"),
                    ctx.ints(ends, "ends"),
                    ctx.ints(axes, "axes"),
                    ctx.ints(steps, "steps"),
                ],
            )
        if drop:
            name = ctx.op("Squeeze", [name, ctx.ints(drop, "axes")])
        return [x.like(name, self.output_types([x.type]))]
