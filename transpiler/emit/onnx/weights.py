"""Trained weights into a graph: Keras 3 `.weights.h5` files, `.keras` archives (through
transpiler.importer.weights), whole-model `.h5` files and `.npz` archives.

Weights come back in Keras layout, keyed by our layer names; the lowering converts them
to ONNX layouts. A missing, extra or mis-shaped weight is an error naming the layer and
both shapes.

`.npz`: one array per weight, named `<layer>/<weight>` (`dense_1/kernel`), as `ktrans`
names them in the summary and in ONNX initializers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from transpiler.emit.onnx.memory_budget import check_weights_fit
from transpiler.emit.onnx.npz_reading import read_npz
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph

#: a checkpoint holds the weights, optimizer slots (Adam: 2, amsgrad: 3, EMA: 1 more) and
#: callbacks' copies (EarlyStopping's best weights): a generous bound on all of them
CHECKPOINT_COPIES = 8
CHECKPOINT_SLACK = 1 << 20


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


def load_weights(path: str | Path, graph: Graph) -> dict[str, dict[str, np.ndarray]]:
    path = Path(path)
    check_weights_fit(graph, "loading weights into")
    if path.suffix == ".npz":
        where = str(path)
        arrays = read_npz(
            path, "--weights", lambda shapes: _check_npz(shapes, graph, where), text=("meta",)
        )
        if _is_checkpoint(arrays):
            arrays = _from_checkpoint(arrays, graph, path)
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


def _is_checkpoint(shapes: dict) -> bool:
    """A training run's checkpoint.npz: `state/...` arrays (ONNX layout for the
    onnxruntime engine, Keras layout for the PyTorch one) and a JSON `meta`."""
    return "meta" in shapes and any(k.startswith("state/") for k in shapes)


def _check_npz(shapes: dict[str, tuple], graph: Graph, where: str) -> None:
    """Before an .npz is read: Keras-layout arrays must match the graph's weights; a
    checkpoint (whose state is checked against the recipes once read) may hold at most
    what a training run keeps: parameters, buffers, optimizer slots, callbacks' copies."""
    if not _is_checkpoint(shapes):
        check_shapes(shapes, graph, where)
        return
    params = sum(math.prod(s) for s in expected_shapes(graph).values())
    held = sum(math.prod(s) for k, s in shapes.items() if k != "meta")
    budget = CHECKPOINT_COPIES * params + CHECKPOINT_SLACK
    if held > budget:
        _fail(
            f"{where}: this checkpoint declares {held:,} values; a training run of "
            f"'{graph.name}' ({params:,} weights) keeps at most {budget:,}",
            "pass the checkpoint of this model's training run",
        )


def _from_checkpoint(arrays: dict, graph: Graph, path: Path) -> dict[str, np.ndarray]:
    """The Keras-layout weights of a training checkpoint of `graph`."""
    import json

    from transpiler.emit.onnx.keras_recipes import keras_recipes
    from transpiler.templates.ktrans_runtime.keras_export import ExportError, keras_arrays

    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError as e:
        _fail(f"--weights: {path} is not a readable training checkpoint: {e}")
    model = meta.get("model") if isinstance(meta, dict) else None
    if model != graph.name:
        _fail(
            f"--weights: {path} is a training checkpoint of model '{model}', not of "
            f"model '{graph.name}'",
            "pass the checkpoint of this model's training run, or choose the model with --model",
        )
    state = {k[len("state/") :]: v for k, v in arrays.items() if k.startswith("state/")}
    if meta.get("engine") == "torch":
        return _torch_checkpoint_weights(state, graph, path)
    try:
        return keras_arrays(state, keras_recipes(graph))
    except ExportError as e:
        _fail(
            f"--weights: {path} does not hold the weights of model '{graph.name}' as "
            f"defined now: {e}",
            "the model changed since the checkpoint was written: train it again",
        )


def _torch_checkpoint_weights(state: dict, graph: Graph, path: Path) -> dict[str, np.ndarray]:
    """A PyTorch-engine checkpoint holds the weights in Keras layout already, keyed
    `<layer>/<weight>`, beside the optimizer's slots and the float16 loss scale: the
    weights, their shapes checked against the model as defined now."""
    from transpiler.templates.ktrans_runtime.torch_engine import LOSS_SCALE
    from transpiler.templates.ktrans_runtime.torch_optim import SLOT

    weights = {k: v for k, v in state.items() if not k.startswith(SLOT) and k != LOSS_SCALE}
    hint = "the model changed since the checkpoint was written: train it again"
    expected = expected_shapes(graph)
    for key, shape in expected.items():
        if key not in weights:
            _fail(f"--weights: {path} holds no weight '{key}' (shape {shape})", hint)
        if tuple(weights[key].shape) != shape:
            _fail(
                f"--weights: {path}: '{key}' has shape {tuple(weights[key].shape)} in the "
                f"checkpoint, but the model needs {shape}",
                hint,
            )
    extra = sorted(set(weights) - set(expected))
    if extra:
        _fail(f"--weights: {path}: '{extra[0]}' matches no weight of the model", hint)
    return weights


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
