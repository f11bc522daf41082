"""Graph -> ONNX inference model.

One opset and IR version for every model ktrans writes (onnxruntime reads both). The
batch axis is the dynamic dimension `batch`; axes declared `?` are dynamic too. Inputs and
outputs keep their .kdl names; nodes and initializers are named after layers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from transpiler import __version__
from transpiler.emit.onnx.builder import DTYPE_TO_ONNX, OpBuilder, make_model
from transpiler.emit.onnx.context import LowerContext
from transpiler.emit.onnx.initial_values import LazyWeights, initial_weights
from transpiler.emit.onnx.pending import resolve
from transpiler.emit.onnx.tensors import LTensor
from transpiler.emit.versions import OPSET, SUPPORTED_OPSETS
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.graph.types import TensorType
from transpiler.layers.masking import lower_node

__all__ = [
    "LazyWeights",
    "build_model",
    "build_model_parts",
    "initial_weights",
    "masked_outputs",
    "value_info",
]


def value_info(name: str, t: TensorType):
    dims = [d if isinstance(d, int) else (d if isinstance(d, str) else None) for d in t.shape]
    return helper.make_tensor_value_info(name, DTYPE_TO_ONNX[t.dtype], dims)


def build_model(graph: Graph, **options) -> onnx.ModelProto:
    """Lowers every node of `graph` into one ModelProto (initializers included). Options
    as for `build_model_parts`."""
    model, initializers = build_model_parts(graph, **options)
    model.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in initializers.items())
    return model


def build_model_parts(
    graph: Graph,
    *,
    seed: int = 0,
    weights: dict[str, dict[str, np.ndarray]] | None = None,
    source: str | None = None,
    opset: int = OPSET,
    pending: bool = False,
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model without its initializers, and the initializers as arrays (so a writer can
    stream 100 MB of weights to disk without building protobuf messages for them).
    `weights` (Keras layout) default to seeded initial ones, drawn on worker threads;
    `pending=True` returns without waiting for them: some initializers are then
    `PendingArray`s (`save_model_parts` waits for each as it writes it)."""
    if opset not in SUPPORTED_OPSETS:
        raise KdlErrors(
            [
                KdlError(
                    None,
                    f"opset {opset} is not supported",
                    f"use an opset from {SUPPORTED_OPSETS[0]} to {SUPPORTED_OPSETS[-1]}",
                )
            ]
        )
    if weights is None:
        weights = LazyWeights(graph, seed, prefetch=True)
    try:
        model, initializers = _lower_graph(graph, weights, source, opset)
    except BaseException:
        if isinstance(weights, LazyWeights):
            weights.cancel()
        raise
    if not pending:
        initializers = {name: resolve(a) for name, a in initializers.items()}
    return model, initializers


def _lower_graph(graph: Graph, weights, source: str | None, opset: int, context=LowerContext):
    """(the model, its initializers); `context`: the LowerContext class (or a factory
    taking the builder and the weights) the layers lower with."""
    b = OpBuilder()
    ctx = context(b, weights)
    values = lower_nodes(graph, ctx)
    outputs = []
    renames: dict[str, str] = {}
    graph_inputs = {v.name for v in graph.inputs}
    for name, v in graph.outputs.items():
        t = ctx.logical(values[id(v)])
        if t.name in graph_inputs or t.name in renames or t.name in b.initializers:
            b.op("Identity", [t.name], name=name)
            # an Identity named after the output writes the output name itself
            b.nodes[-1].output[0] = name
        else:
            renames[t.name] = name
        outputs.append(value_info(name, v.type))
    _rename(b.nodes, renames)
    g = helper.make_graph(
        b.nodes,
        graph.name,
        [value_info(v.name, v.type) for v in graph.inputs],
        outputs,
    )
    model = make_model(
        g,
        {
            "ktrans.model": graph.name,
            "ktrans.source": str(source or graph.file),
            "ktrans.data_format": graph.data_format,
        },
        opset,
        doc=f"{graph.name}, compiled by ktrans {__version__} from {source or graph.file}",
    )
    return model, b.initializers


def lower_nodes(graph: Graph, ctx, what: str = "to ONNX", enter=None) -> dict[int, LTensor]:
    """id(graph Value) -> its lowered LTensor, for the inputs and every node's outputs.
    `what` ends the message of a layer that cannot be lowered ("for training");
    `enter(scope, node)` is called before each node is lowered."""
    b = ctx.b
    values: dict[int, LTensor] = {}
    for v in graph.inputs:
        b.unique(v.name)
        values[id(v)] = LTensor(v.name, v.type)
    for node in graph.nodes:
        layer = node.layer
        ctx.layer = layer
        b.scope = node.outputs[0].name.split(":")[0]
        if enter is not None:
            enter(b.scope, node)
        try:
            outs = lower_node(ctx, node, values)
        except NotImplementedError as e:
            raise KdlErrors(
                [
                    KdlError(
                        node.span,
                        f"{layer.keras_class()} ('{layer.name}') cannot be lowered {what} yet: {e}",
                    )
                ]
            ) from None
        for v, t in zip(node.outputs, outs):
            values[id(v)] = t
    b.scope = ""
    return values


def masked_outputs(graph: Graph) -> set[str]:
    """The outputs that carry a Keras mask (transpiler.layers.masking). Masks are found
    while lowering, so the model is lowered (with zero weights) where one can arise: from
    Embedding(mask_zero=true) or a call's `mask=`. A model that cannot be lowered is
    reported by what builds it: here it has no known masks."""
    if not any(
        getattr(node.layer, "mask_zero", False) or "mask" in node.call.tensors
        for node in graph.nodes
    ):
        return set()
    zeros = {
        layer.name: {w.name: np.zeros(w.shape, np.float32) for w in layer.weights}
        for layer in graph.layers
    }
    try:
        values = lower_nodes(graph, LowerContext(OpBuilder(), zeros))
    except KdlErrors:
        return set()
    return {name for name, v in graph.outputs.items() if values[id(v)].mask is not None}


def _rename(nodes, renames: dict[str, str]) -> None:
    if not renames:
        return
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
