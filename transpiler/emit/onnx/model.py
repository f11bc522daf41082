"""Graph -> ONNX inference model.

One opset and IR version for every model ktrans writes (onnxruntime reads both). The
batch axis is the dynamic dimension `batch`; axes declared `?` are dynamic too. Inputs and
outputs keep their .kdl names; nodes and initializers are named after layers.
"""

from __future__ import annotations

import math
import zlib
from functools import partial

import numpy as np
import onnx
from onnx import helper, numpy_helper

from transpiler import __version__
from transpiler.emit.onnx.builder import DTYPE_TO_ONNX, OpBuilder, make_model
from transpiler.emit.onnx.context import LowerContext
from transpiler.emit.onnx.initializers import initialize
from transpiler.emit.onnx.pending import MIN_PREFETCH_SIZE, DrawPool, PendingArray, resolve
from transpiler.emit.onnx.tensors import LTensor
from transpiler.emit.versions import OPSET, SUPPORTED_OPSETS
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.graph.types import TensorType
from transpiler.layers.base import Layer
from transpiler.layers.masking import lower_layer

IID_INITIALIZERS = {
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "variance_scaling", "random_uniform", "random_normal", "truncated_normal",
    "zeros", "ones", "constant",
}  # fmt: skip


def _weight_rng(seed: int, layer: str, weight: str) -> np.random.Generator:
    """One stream per weight, so weights can be drawn in any order (and lazily)."""
    return np.random.default_rng([seed, zlib.crc32(f"{layer}/{weight}".encode())])


#: Initializers that draw nothing (seeding a generator for them costs more than filling).
CONSTANT_INITIALIZERS = {"zeros", "ones", "constant", "identity"}


def _draw(layer, w, seed: int, shape=None) -> np.ndarray:
    constant = w.initializer.name in CONSTANT_INITIALIZERS
    rng = None if constant else _weight_rng(seed, layer.name, w.name)
    value = initialize(w.initializer, shape or w.shape, rng, fan_shape=w.shape)
    return layer.adjust_initial_value(w, value) if shape is None else value


def initial_weights(graph: Graph, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Every layer's weights in Keras layout, drawn as Keras's initializers draw them."""
    return {
        layer.name: {w.name: _draw(layer, w, seed) for w in layer.weights} for layer in graph.layers
    }


class LazyWeights(dict):
    """Initial weights drawn on first use. A weight the lowering only needs in another
    layout (a conv kernel transposed for ONNX) is drawn straight into that layout when its
    initializer draws independent values: the same distribution without a 100 MB
    transpose (`draw_rearranged`). Reading a layer's weights any other way (indexing,
    `get`, `items`) draws them in Keras's layout, as `initial_weights` does."""

    def __init__(self, graph: Graph, seed: int, prefetch: bool = False) -> None:
        super().__init__()
        self.seed = seed
        self.layers = {layer.name: layer for layer in graph.layers}
        self.pool = DrawPool() if prefetch else None
        if self.pool is not None:
            for layer in graph.layers:
                for w in layer.weights:
                    if self._drawn_flat(layer, w) and math.prod(w.shape) >= MIN_PREFETCH_SIZE:
                        flat = (math.prod(w.shape),)
                        draw = partial(_draw, layer, w, seed, flat)
                        self.pool.submit((layer.name, w.name), draw)
            self.pool.done_submitting()

    def __missing__(self, layer_name: str) -> dict:
        layer = self.layers[layer_name]
        weights = _LazyLayer(layer, self.seed, self.pool)
        self[layer_name] = weights
        return weights

    @staticmethod
    def _drawn_flat(layer, w) -> bool:
        """Whether the weight is iid numbers whose layout does not matter: they can be
        drawn as a flat array and reshaped to any layout."""
        overridden = type(layer).adjust_initial_value is not Layer.adjust_initial_value
        return w.initializer.name in IID_INITIALIZERS and not overridden

    def cancel(self) -> None:
        if self.pool is not None:
            self.pool.cancel()

    def get(self, layer_name: str, default=None):
        if layer_name in self.layers or dict.__contains__(self, layer_name):
            return self[layer_name]
        return default

    def draw_rearranged(self, layer, name: str, transform) -> np.ndarray | None:
        if layer.name not in self.layers:
            return None
        w = next(w for w in layer.weights if w.name == name)
        drawn = dict.__contains__(self[layer.name], name)  # already used in Keras layout
        if not self._drawn_flat(layer, w) or drawn:
            return None
        probe = np.broadcast_to(np.float32(0), w.shape)  # free: only its shape matters
        shape = transform(probe).shape
        future = self.pool.take((layer.name, name)) if self.pool is not None else None
        if future is not None:
            return PendingArray(future, shape)
        return _draw(layer, w, self.seed, shape=shape)


class _LazyLayer(dict):
    def __init__(self, layer, seed: int, pool: DrawPool | None = None) -> None:
        super().__init__()
        self.layer, self.seed, self.pool = layer, seed, pool

    def __missing__(self, name: str) -> np.ndarray:
        w = next((w for w in self.layer.weights if w.name == name), None)
        if w is None:
            raise KeyError(name)
        future = self.pool.take((self.layer.name, name)) if self.pool is not None else None
        if future is not None:
            value = future.result().reshape(w.shape)
        else:
            value = _draw(self.layer, w, self.seed)
        self[name] = value
        return value

    def _draw_all(self) -> None:
        for w in self.layer.weights:
            self[w.name]  # indexing draws it

    def get(self, name: str, default=None):
        return self[name] if any(w.name == name for w in self.layer.weights) else default

    def items(self):
        self._draw_all()
        return super().items()

    def keys(self):
        self._draw_all()
        return super().keys()

    def values(self):
        self._draw_all()
        return super().values()


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


def _lower_graph(graph: Graph, weights, source: str | None, opset: int):
    b = OpBuilder()
    ctx = LowerContext(b, weights)
    values: dict[int, LTensor] = {}
    for v in graph.inputs:
        b.unique(v.name)
        values[id(v)] = LTensor(v.name, v.type)
    errors = []
    for node in graph.nodes:
        layer = node.layer
        ctx.layer = layer
        b.scope = node.outputs[0].name.split(":")[0]
        try:
            outs = lower_layer(ctx, layer, [values[id(v)] for v in node.inputs])
        except NotImplementedError as e:
            errors.append(
                KdlError(
                    node.span,
                    f"{layer.keras_class()} ('{layer.name}') cannot be lowered to ONNX yet: {e}",
                )
            )
            break
        for v, t in zip(node.outputs, outs):
            values[id(v)] = t
    b.scope = ""
    if errors:
        raise KdlErrors(errors)
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
