"""A small ONNX op builder with deterministic, layer-scoped names.

Node names are `<layer>/<OpType>` (with `_1`, `_2`... on repeats), value names
`<layer>/<OpType>:<i>`, initializers `<layer>/<weight>` (`conv2d_1/kernel`), so everything
in the emitted file traces back to a .kdl layer and golden files stay stable.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from transpiler.emit.onnx.pending import PendingArray

DTYPE_TO_ONNX = {
    "float32": TensorProto.FLOAT,
    "float64": TensorProto.DOUBLE,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}


class OpBuilder:
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.scope = ""
        self._names: set[str] = set()
        self._consts: dict[tuple, str] = {}
        #: Keras masks of lowered values: value name -> bool mask value (layers/masking.py)
        self.masks: dict[str, str] = {}

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def op(self, op_type: str, inputs, outputs: int = 1, name: str | None = None, **attrs):
        """Adds a node; returns its output name (or list of names when outputs > 1)."""
        prefix = f"{self.scope}/" if self.scope else ""
        node_name = self.unique(prefix + (name or op_type))
        out_names = [f"{node_name}:{i}" if outputs > 1 else node_name for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), out_names, node_name, **attrs))
        return out_names[0] if outputs == 1 else out_names

    def initializer(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        if isinstance(array, PendingArray):  # still being drawn (see pending.py)
            self.initializers[name] = array
            return name
        array = np.asarray(array)
        # (np.ascontiguousarray would turn a 0-d scalar into shape (1,))
        self.initializers[name] = array if array.flags.c_contiguous else array.copy()
        return name

    def const(self, value, dtype=np.float32, name: str = "const") -> str:
        """A constant initializer, shared between equal values in the same scope."""
        array = np.asarray(value, dtype=dtype)
        key = (self.scope, array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            prefix = f"{self.scope}/" if self.scope else ""
            self._consts[key] = self.initializer(prefix + name, array)
        return self._consts[key]

    def ints(self, values, name: str = "shape") -> str:
        return self.const(list(values), np.int64, name)

    def tensor_protos(self) -> list:
        return [numpy_helper.from_array(a, n) for n, a in self.initializers.items()]


def make_model(graph, props: dict[str, str], opset: int | None = None, doc: str = ""):
    """A ModelProto as ktrans writes every model: one pinned opset and IR version,
    producer ktrans, and `ktrans.*` metadata."""
    from transpiler import __version__
    from transpiler.emit.versions import IR_VERSION, OPSET

    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset or OPSET)],
        producer_name="ktrans",
        producer_version=__version__,
        ir_version=IR_VERSION,
        doc_string=doc,
    )
    helper.set_model_props(model, {**props, "ktrans.version": __version__})
    return model
