"""Trained weights into a graph: Keras 3 `.weights.h5` files and `.npz` archives.

Weights come back in Keras layout, keyed by our layer names; the lowering converts them
to ONNX layouts. A missing, extra or mis-shaped weight is an error naming the layer and
both shapes.

`.npz`: one array per weight, named `<layer>/<weight>` (`dense_1/kernel`), as `ktrans`
names them in the summary and in ONNX initializers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transpiler.emit.onnx.memory_budget import check_weights_fit
from transpiler.emit.onnx.npz_reading import read_npz
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def load_weights(path: str | Path, graph: Graph) -> dict[str, dict[str, np.ndarray]]:
    path = Path(path)
    check_weights_fit(graph, "loading weights into")
    if path.suffix == ".npz":
        arrays = read_npz(path, "--weights", lambda shapes: check_shapes(shapes, graph, str(path)))
    elif path.name.endswith(".h5"):
        from transpiler.emit.onnx.keras_h5 import read_keras_h5

        arrays = read_keras_h5(path, graph)
    else:
        _fail(f"--weights: unknown format {path.name}", "use a Keras .weights.h5 or an .npz")
    return assign(arrays, graph, str(path))


def expected_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    """`<layer>/<weight>` -> shape, for every weight of the graph."""
    return {
        f"{layer.name}/{w.name}": tuple(w.shape) for layer in graph.layers for w in layer.weights
    }


def check_shapes(shapes: dict[str, tuple], graph: Graph, where: str) -> None:
    """The file's `<layer>/<weight>` shapes against the graph's, before any is read."""
    for layer in graph.layers:
        for w in layer.weights or []:
            key = f"{layer.name}/{w.name}"
            if key not in shapes:
                _fail(
                    f"{where}: no weight for layer '{layer.name}' ({w.name}, shape {w.shape})",
                    "the file must hold every weight of the model",
                )
            if tuple(shapes[key]) != tuple(w.shape):
                _fail(
                    f"{where}: layer '{layer.name}' {w.name} has shape {tuple(shapes[key])} in "
                    f"the file, but the model needs {w.shape}"
                )
    extra = sorted(set(shapes) - set(expected_shapes(graph)))
    if extra:
        _fail(f"{where}: '{extra[0]}' matches no weight of the model", "check the layer names")


def assign(arrays: dict[str, np.ndarray], graph: Graph, where: str) -> dict:
    """Checks `<layer>/<weight>` arrays against the graph's weights, shape by shape."""
    check_shapes({k: tuple(a.shape) for k, a in arrays.items()}, graph, where)
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in graph.layers:
        out[layer.name] = {}
        for w in layer.weights or []:
            array = arrays[f"{layer.name}/{w.name}"]
            if array.dtype.kind not in "fiub":
                _fail(f"{where}: layer '{layer.name}' {w.name} holds {array.dtype}, not numbers")
            out[layer.name][w.name] = array.astype(np.float32)
    return out


def save_npz(weights: dict[str, dict[str, np.ndarray]], path: str | Path) -> None:
    """The inverse of loading an .npz (used by training and tests)."""
    from transpiler.atomic_files import atomic_write

    flat = {f"{layer}/{name}": a for layer, ws in weights.items() for name, a in ws.items()}
    atomic_write(path, lambda f: np.savez(f, **flat))
