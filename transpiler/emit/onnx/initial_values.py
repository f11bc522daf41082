"""Initial weights, drawn as Keras's initializers draw them (numpy only: `ktrans build`
starts these draws on worker threads before it imports onnx).

Every weight has its own random stream (seed, layer, weight), so weights can be drawn in
any order, lazily, or on another thread, and come out the same.
"""

from __future__ import annotations

import math
import zlib
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from transpiler.emit.onnx.initializers import initialize
from transpiler.emit.onnx.memory_budget import check_weights_fit
from transpiler.emit.onnx.pending import MIN_PREFETCH_SIZE, DrawPool, PendingArray
from transpiler.layers.base import Layer

if TYPE_CHECKING:
    from transpiler.graph.model import Graph

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
    check_weights_fit(graph)
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
        check_weights_fit(graph)
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
        """The weight drawn straight into the shape `transform` gives it (Keras's shape
        when None), possibly still in flight; None when it must be drawn in Keras's layout
        and converted."""
        if layer.name not in self.layers:
            return None
        w = next(w for w in layer.weights if w.name == name)
        drawn = dict.__contains__(self[layer.name], name)  # already used in Keras layout
        if not self._drawn_flat(layer, w) or drawn:
            return None
        probe = np.broadcast_to(np.float32(0), w.shape)  # free: only its shape matters
        shape = w.shape if transform is None else transform(probe).shape
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
