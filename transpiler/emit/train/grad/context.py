"""What VJP rules work with: op building and static shape knowledge of every value."""

from __future__ import annotations

import numpy as np
from onnx import helper

from transpiler.emit.onnx.builder import OpBuilder

Shape = tuple  # dims: int, str (symbolic) or None (unknown)


class GradContext:
    def __init__(
        self,
        builder: OpBuilder,
        shapes: dict[str, Shape],
        dtypes: dict[str, int],
        float_dtype=np.float32,
    ):
        self.b = builder
        self.shapes = shapes
        self.dtypes = dtypes
        self.float_dtype = np.dtype(float_dtype)
        #: the ONNX element type of float values (Cast's `to`)
        self.float_type = helper.np_dtype_to_tensor_dtype(self.float_dtype)

    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        return self.b.op(op_type, list(inputs), outputs, **attrs)

    def const(self, value, dtype=None, name: str = "const") -> str:
        return self.b.const(value, dtype or self.float_dtype, name)

    def ints(self, values, name: str = "axes") -> str:
        return self.b.ints(values, name)

    def shape(self, name: str) -> Shape:
        if name not in self.shapes:
            raise KeyError(f"no static shape known for '{name}'")
        return self.shapes[name]

    def rank(self, name: str) -> int:
        return len(self.shape(name))

    def unbroadcast(self, grad: str, target: str, source: str) -> str:
        """Sums `grad`, shaped like `source` (a broadcast result), back to `target`'s shape."""
        gshape, tshape = self.shape(source), self.shape(target)
        if gshape == tshape:
            return grad
        lead = len(gshape) - len(tshape)
        axes = list(range(lead))
        for i, d in enumerate(tshape):
            gd = gshape[lead + i]
            if d == 1 and gd != 1:
                axes.append(lead + i)
        out = grad
        if axes:
            out = self.op("ReduceSum", [grad, self.ints(axes)], keepdims=1)
        if lead or len(tshape) == 0:
            static = [d if isinstance(d, int) else -1 for d in tshape]
            if static.count(-1) <= 1:
                out = self.op("Reshape", [out, self.ints(static, "shape")])
            else:
                out = self.op("Reshape", [out, self.op("Shape", [target])])
        self.shapes[out] = tshape
        return out

    def record(self, name: str, like: str) -> str:
        """Notes that `name` has the shape of `like` (rules call this for new values)."""
        self.shapes[name] = self.shapes[like]
        return name
