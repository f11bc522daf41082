"""Trained weights into a graph: Keras 3 `.weights.h5` files, `.keras` archives (through
transpiler.importer.weights), whole-model `.h5` files and `.npz` archives.

Weights come back in Keras layout, keyed by our layer names; the lowering converts them
to ONNX layouts. A missing, extra or mis-shaped weight is an error naming the layer and
both shapes.

`.npz`: one array per weight, named `<layer>/<weight>` (`dense_1/kernel`), as `ktrans`
names them in the summary and in ONNX initializers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def load_weights(path: str | Path, graph: Graph) -> dict[str, dict[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        _fail(f"--weights: no such file: {path}")
    if path.suffix == ".npz":
        arrays = _read_npz(path)
    elif path.name.endswith(".h5"):
        from transpiler.emit.onnx.keras_h5 import read_keras_h5

        arrays = read_keras_h5(path, graph)
    elif path.suffix == ".keras":
        from transpiler.importer.weights import archive_weights

        arrays = archive_weights(path, graph)
    else:
        _fail(
            f"--weights: unknown format {path.name}",
            "use a Keras .keras, .weights.h5 or whole-model .h5, or an .npz",
        )
    return assign(arrays, graph, str(path))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as e:
        _fail(f"--weights: cannot read {path}: {e}")


def assign(arrays: dict[str, np.ndarray], graph: Graph, where: str) -> dict:
    """Checks `<layer>/<weight>` arrays against the graph's weights, shape by shape."""
    out: dict[str, dict[str, np.ndarray]] = {}
    expected = set()
    for layer in graph.layers:
        out[layer.name] = {}
        for w in layer.weights or []:
            key = f"{layer.name}/{w.name}"
            expected.add(key)
            if key not in arrays:
                _fail(
                    f"{where}: no weight for layer '{layer.name}' ({w.name}, shape {w.shape})",
                    "the file must hold every weight of the model",
                )
            array = arrays[key]
            if tuple(array.shape) != tuple(w.shape):
                _fail(
                    f"{where}: layer '{layer.name}' {w.name} has shape {tuple(array.shape)} in "
                    f"the file, but the model needs {w.shape}"
                )
            out[layer.name][w.name] = array.astype(np.float32)
    extra = sorted(set(arrays) - expected)
    if extra:
        _fail(f"{where}: '{extra[0]}' matches no weight of the model", "check the layer names")
    return out


def save_npz(weights: dict[str, dict[str, np.ndarray]], path: str | Path) -> None:
    """The inverse of loading an .npz (used by training and tests)."""
    flat = {f"{layer}/{name}": a for layer, ws in weights.items() for name, a in ws.items()}
    np.savez(path, **flat)
