"""The weights of a Keras file, as `<layer>/<weight>` arrays in Keras layout: what
`ktrans build --weights` reads (an .npz), for the .kdl graph the importer wrote.

Keras 3 (`model.weights.h5` in a .keras archive) keeps each layer's variables under
`layers/<key>/vars/<i>` (nested models add `layers/<key>/layers/...`), records the
layer's name on each `vars` group, and orders the variables as `layer.weights`; ktrans
lists a layer's weights in that order too, and `keras_layout.weight_paths` says where a
wrapped layer's live (Bidirectional's forward_layer/cell/vars/0...). Legacy whole-model
`.h5` files (Keras 2, and Keras 3's `model.save("m.h5")`) keep them under
`model_weights/<layer name>` with a `weight_names` list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transpiler.importer.errors import fail
from transpiler.importer.h5safe import H5Reader
from transpiler.importer.sources import KerasFile

MAX_DEPTH = 8  # models nested in models


def keras3_groups(reader: H5Reader) -> dict[str, object]:
    """Layer name -> its group, from the names Keras records (nested models too)."""
    found: dict[str, object] = {}
    root = reader.child(reader.file, "layers")
    if root is None:
        return found
    stack = [(root, 0)]
    while stack:
        group, depth = stack.pop()
        for key in reader.names(group):
            sub = reader.child(group, key)
            if sub is None or not reader.is_group(sub):
                continue
            variables = reader.child(sub, "vars")
            if variables is not None:
                name = reader.text_attr(variables, "name", 1024)
                if name is not None:
                    found.setdefault(name, sub)
            inner = reader.child(sub, "layers")
            if inner is not None and depth < MAX_DEPTH:
                stack.append((inner, depth + 1))
    return found


def _path(reader: H5Reader, group, path: str):
    obj = group
    for part in path.split("/"):
        obj = reader.child(obj, part)
        if obj is None:
            return None
    return obj


def _keras3_arrays(reader, group, layer) -> list[np.ndarray] | None:
    from transpiler.emit.onnx.keras_layout import weight_paths

    out = []
    for path in weight_paths(layer):
        dataset = _path(reader, group, path)
        if dataset is None:
            return None
        out.append(reader.read(dataset))
    return out


def _legacy_arrays(reader: H5Reader, names: set) -> dict[str, list[np.ndarray]]:
    """A legacy `.h5`: `model_weights/<name>` with `weight_names`; a nested model's group
    lists its layers' weights one after the other (`stage/conv2d/kernel`), and
    `legacy_owner` says which layer each is."""
    from transpiler.emit.onnx.keras_h5 import legacy_owner

    root = reader.child(reader.file, "model_weights") or reader.file
    out: dict[str, list[np.ndarray]] = {}
    for name in reader.text_list_attr(root, "layer_names"):
        group = reader.child(root, name)
        if group is None:
            continue
        for weight in reader.text_list_attr(group, "weight_names"):
            dataset = _path(reader, group, weight)
            if dataset is None:
                fail(reader.where, f"model_weights/{name} lists {weight}, which it lacks")
            out.setdefault(legacy_owner(name, weight, names), []).append(reader.read(dataset))
    return out


def read_weights(kfile: KerasFile, graph, renamed: dict | None = None) -> dict[str, np.ndarray]:
    """`<layer>/<weight>` arrays for the graph's weighted layers, found by layer name
    (`renamed`: the .kdl names that are not Keras's, to Keras's)."""
    renamed = renamed or {}
    if kfile.open_weights is None:
        fail(kfile.path.name, "a JSON config holds no weights", "import the .keras file")
    layers = {la.name: la for la in graph.layers if la.weights}
    arrays: dict[str, np.ndarray] = {}
    with kfile.open_weights() as reader:
        groups = keras3_groups(reader)
        legacy = None if groups else _legacy_arrays(reader, {renamed.get(n, n) for n in layers})
        for name, layer in layers.items():
            keras_name = renamed.get(name, name)
            if legacy is not None:
                values = legacy.get(keras_name)
            elif keras_name in groups:
                values = _keras3_arrays(reader, groups[keras_name], layer)
            else:
                values = None
            if values is None or len(values) != len(layer.weights):
                have = "nothing" if values is None else f"{len(values)} arrays"
                fail(
                    kfile.path.name,
                    f"no weights for layer '{name}' ({layer.keras_class()}, "
                    f"{len(layer.weights)} weights): the file has {have} under that name",
                    "the weights must come from the same Keras model",
                )
            for w, value in zip(layer.weights, values):
                arrays[f"{name}/{w.name}"] = value
    return arrays


def archive_weights(path: str | Path, graph) -> dict[str, np.ndarray]:
    """`ktrans build --weights MODEL.keras`: by layer name where the .kdl file keeps
    Keras's names (an imported file), else matched as a .weights.h5 file is."""
    from transpiler.importer.sources import read_keras_file

    kfile = read_keras_file(path)
    if kfile.kind != "keras" or kfile.open_weights is None:
        fail(Path(path).name, "not a .keras archive with weights")
    weighted = [la for la in graph.layers if la.weights]
    with kfile.open_weights() as reader:
        groups = keras3_groups(reader)
        if groups and all(la.name in groups for la in weighted):
            return read_weights(kfile, graph)
        root = reader.child(reader.file, "layers")
        if root is None:
            fail(Path(path).name, "model.weights.h5 holds no Keras layers")
        from transpiler.emit.onnx.keras_h5 import read_keras3_group

        return read_keras3_group(root, graph, f"--weights {Path(path).name}")


def write_npz(arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    """Writes the arrays atomically as an uncompressed .npz."""
    from transpiler.importer.files import atomic_write

    return atomic_write(path, lambda f: np.savez(f, **arrays))
