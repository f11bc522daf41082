"""Keras weights files -> `<layer>/<weight>` arrays in Keras layout, keyed by our names.

Keras 3 (`model.save_weights("m.weights.h5")`) stores each layer of `model.layers` under
`layers/<key>/vars/<i>`, in the order of `layer.weights`. `<key>` is not the layer's name:
it is a per-model counter of the class's snake-case name, in `model.layers` order
(`dense`, `dense_1`, `batch_normalization`, ...; layers without variables count too, so a
Dropout moves the `dropout` counter). Nested layers add levels:

    LSTM / GRU / SimpleRNN    layers/lstm/cell/vars/0..2
    Bidirectional(LSTM)       layers/bidirectional/forward_layer/cell/vars/0..2, then
                              layers/bidirectional/backward_layer/cell/vars/0..2
    TimeDistributed(Dense)    layers/time_distributed/layer/vars/0..1
    MultiHeadAttention        layers/multi_head_attention/{query,key,value,output}_dense/
                              vars/0..1 and _gate_dense/vars/0..1

Recent Keras versions also record each layer's name, as the `name` attribute of its `vars`
group. Keras orders a Sequential model's layers as written, but a functional model's by
depth from the outputs (keras/src/ops/function.py `map_graph`), not in source order. So,
class by class, our layers are matched to the file's entries by the first of these that
fits every layer of the class (same number of arrays, same shapes):

1. the names Keras recorded, where they are our layer names;
2. the keys our layers get in Keras's order of a functional model (its depth order,
   computed from our graph, with the outputs in declaration order);
3. the keys in source order (a Sequential model; also any chain of layers);
4. Keras's depth order with the outputs sorted by name (a dict of outputs);
5. shape-compatible order: each layer takes the first unused entry with its shapes.
   A layer that fits none is an error naming it and both shapes; two entries that both
   fit are ambiguous (the file cannot say which is which), also an error.

Keras 2 / tf.keras HDF5 weights (`layer_names` and `weight_names` attributes; also the
`model_weights` group of a whole-model `.h5`, Keras 3's included) are read too, matched
by layer name, else by position. A nested model's group there holds all its layers'
weights; `legacy_owner` splits it into one entry per layer.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transpiler.emit.onnx.h5_reading import H5Reader, Stored
from transpiler.emit.onnx.keras_layout import is_layer, keras_layer_order, layer_keys, weight_paths
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.input_files import open_regular
from transpiler.layers.base import Layer, snake_case

MAX_NESTING = 8  # models nested in models
MAX_WEIGHTS_FILE_BYTES = 1 << 40  # what open_regular allows: any size (datasets are checked)
HINT_ORDER = (
    "Keras saves weights by position in model.layers: build the Keras model with the "
    "same layers in the same order as the .kdl model, or pass an .npz of "
    "'<layer>/<weight>' arrays"
)


MAX_NESTING = 8  # models nested in models


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


@dataclass
class Entry:
    """One layer's group in the file."""

    key: str  # "dense_1": the group under layers/
    name: str | None  # the layer's name, where Keras recorded it
    arrays: dict[str, Stored] = field(default_factory=dict)  # "vars/0" -> dataset, unread
    group: str = ""  # the group's path in the file
    number: int = 0  # the counter in the key: 1 for "dense_1"

    @property
    def weights(self) -> dict[str, Stored]:
        """The layer's variables: the float arrays, and integer ones such as an adapted
        Normalization's count (a seed generator's integer state is not a weight)."""
        return {
            p: a
            for p, a in self.arrays.items()
            if np.issubdtype(a.dtype, np.floating) or "seed_generator" not in p
        }

    def where(self) -> str:
        saved = f", saved as '{self.name}'" if self.name and self.name != self.key else ""
        return f"{self.group}{saved}"


# ---------------------------------------------------------------- reading


def read_keras_h5(path: str | Path, graph: Graph) -> dict[str, np.ndarray]:
    """The weights of `graph` from a Keras `.weights.h5` (or legacy `.h5`) file."""
    path = Path(path)
    try:
        import h5py
    except ModuleNotFoundError:
        _fail(
            f"--weights {path.name}: reading Keras .h5 files needs the h5py package",
            "pip install h5py, or pass the weights as an .npz",
        )
    fd, _ = open_regular(path, "--weights", MAX_WEIGHTS_FILE_BYTES)
    with os.fdopen(fd, "rb") as f:
        magic = f.read(8)
    if magic[:4] == b"PK\x03\x04":
        _fail(
            f"--weights: {path} is a zip archive (a Keras .keras model?), not an HDF5 file",
            "save the weights alone with model.save_weights('model.weights.h5'), or extract "
            "model.weights.h5 from the .keras archive",
        )
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        _fail(
            f"--weights: cannot read {path}: not an HDF5 file ({e})",
            "pass Keras weights saved with model.save_weights('model.weights.h5'), or an .npz",
        )
    largest = max((math.prod(w.shape) for la in graph.layers for w in la.weights or []), default=1)
    reader = H5Reader(h5py, f"--weights {path}", largest)
    with f:
        layers = reader.child(f, "layers", "layers")
        if isinstance(layers, h5py.Group):
            entries = _read_keras3(layers, reader)
            return _match_keras3(entries, graph, str(path))
        group = reader.child(f, "model_weights", "model_weights")
        group = group if isinstance(group, h5py.Group) else f
        names = reader.attribute(group, "layer_names", group.name)
        if names is not None:
            known = {la.name for la in graph.layers if la.weights} | _config_layer_names(f, reader)
            entries = _read_legacy(group, names, reader, known)
            return _match_legacy(entries, graph, str(path))
    _fail(
        f"--weights: {path} holds no Keras layer weights (no 'layers' group)",
        "save the weights of a Sequential or functional Keras model with "
        "model.save_weights('model.weights.h5')",
    )


def read_keras3_group(layers_group, graph: Graph, where: str) -> dict[str, np.ndarray]:
    """The weights of `graph` from an open Keras 3 `layers` group (the model.weights.h5
    of a .keras archive, opened by the caller), matched as for a .weights.h5 file."""
    import h5py

    largest = max((math.prod(w.shape) for la in graph.layers for w in la.weights or []), default=1)
    reader = H5Reader(h5py, where, largest)
    return _match_keras3(_read_keras3(layers_group, reader), graph, where)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_keras3(
    layers_group, reader: H5Reader, prefix: str = "", depth: int = 0
) -> dict[str, Entry]:
    """Entries keyed by their path below the top `layers` group: `dense_1`, and
    `sequential/layers/dense` for a layer of a nested model (whose own group has a
    `layers` group: the codegen model of a parameterless block, ConvNeXt's stages)."""
    entries: dict[str, Entry] = {}
    for key in reader.names(layers_group, f"{prefix}layers"):
        where = f"{prefix}layers/{key}"
        group = reader.child(layers_group, key, where)
        if not isinstance(group, reader.h5py.Group):
            continue
        name = None
        vars_group = reader.child(group, "vars", f"{where}/vars")
        if vars_group is not None and not isinstance(vars_group, Stored):
            saved = reader.attribute(vars_group, "name", f"{where}/vars")
            name = _text(saved) if saved is not None else None
        m = re.fullmatch(r".+_(\d+)", key)
        path = where.removeprefix("layers/")
        entry = Entry(path, name, group=where, number=int(m.group(1)) if m else 0)
        arrays = reader.datasets(group, where)  # a nested model's: its layers' below
        entry.arrays = {p: a for p, a in arrays.items() if not p.startswith("layers/")}
        entries[path] = entry
        inner = reader.child(group, "layers", f"{where}/layers")
        if isinstance(inner, reader.h5py.Group) and depth < MAX_NESTING:
            entries.update(_read_keras3(inner, reader, f"{where}/", depth + 1))
    return entries


def legacy_owner(group: str, weight: str, layer_names) -> str:
    """The layer that owns a weight listed in a legacy `.h5` group's `weight_names`.

    Keras 3 names each weight by its variable's path (legacy_h5_format.py
    `save_subset_weights_to_hdf5_group`): `dense/kernel` for a layer of a functional
    model, `outer/dense_2/kernel` for a Sequential's layer (built in the model's scope),
    `lstm/lstm_cell/kernel` for a layer's own sublayer, and a nested model's group holds
    all its layers' weights: `stage/conv2d/kernel`, `outer/inner/dense_5/kernel`. Keras 2
    wrote `conv2d/kernel:0`. So a group named after a layer is that layer's; otherwise the
    owner is the first part of the weight's path that names a layer.
    """
    if group in layer_names:
        return group
    for part in weight.split("/")[:-1]:
        if part in layer_names:
            return part
    return group


def _config_layer_names(f, reader: H5Reader) -> set[str]:
    """The names of the layers (not models) in a full-model file's `model_config`, nested
    models included; empty where the file has no readable config (it is optional here)."""
    import json

    try:
        raw = reader.attribute(f, "model_config", "/")
        config = json.loads(_text(raw)) if raw is not None else None
    except (KdlErrors, ValueError, RecursionError):  # too large, or not JSON: names only
        return set()
    names: set[str] = set()
    stack = [(config, 0)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict) or not isinstance(item.get("config"), dict):
            continue
        inner = item["config"].get("layers")
        if isinstance(inner, list) and depth < MAX_NESTING:
            stack.extend((layer, depth + 1) for layer in inner)
        elif isinstance(item["config"].get("name"), str):
            names.add(item["config"]["name"])
    return names


def _read_legacy(group, layer_names, reader: H5Reader, known: set[str]) -> list[Entry]:
    """Legacy HDF5 (Keras 2, or Keras 3's `model.save("m.h5")`): `layer_names`, then per
    layer `weight_names` in the legacy order
    (trainable weights, then the others). A nested model's group lists all its layers'
    weights; each becomes its own entry, in the order the file lists them."""
    out: list[Entry] = []
    for raw in np.atleast_1d(layer_names):
        name = _text(raw)
        layer_group = reader.resolve(group, name, "")
        if not isinstance(layer_group, reader.h5py.Group):
            continue
        entries = {name: Entry(name, name, group=name)}
        names = reader.attribute(layer_group, "weight_names", name)
        for weight in [] if names is None else np.atleast_1d(names):
            stored = reader.resolve(layer_group, _text(weight), name)
            if not isinstance(stored, Stored):
                _fail(
                    f"{reader.where}: layer '{name}' lists the weight '{_text(weight)}', "
                    "which the file does not hold",
                    "the file is damaged or was not written by Keras",
                )
            owner = legacy_owner(name, _text(weight), known)
            entry = entries.setdefault(owner, Entry(owner, owner, group=f"{name}/{owner}"))
            entry.arrays[f"vars/{len(entry.arrays)}"] = stored
        out.extend(e for e in entries.values() if e.arrays or e.key == name)
    return out


def _class_of(key: str, classes: set[str]) -> str | None:
    key = key.rpartition("/")[2]  # a nested model's layer: its own key
    if key in classes:
        return key
    m = re.fullmatch(r"(.+)_(\d+)", key)
    if m and m.group(1) in classes:
        return m.group(1)
    return None


def _fits(layer: Layer, paths: list[str], entry: Entry) -> bool:
    if len(entry.weights) != len(paths):
        return False
    for w, p in zip(layer.weights, paths):
        a = entry.arrays.get(p)
        if a is None or tuple(a.shape) != tuple(w.shape):
            return False
    return True


def _shapes(layer: Layer) -> str:
    return ", ".join(f"{w.name} {w.shape}" for w in layer.weights)


def _entry_shapes(entry: Entry) -> str:
    return ", ".join(f"{p} {tuple(a.shape)}" for p, a in entry.weights.items()) or "nothing"


# ---------------------------------------------------------------- matching Keras 3 entries


def _match_keras3(entries: dict[str, Entry], graph: Graph, where: str) -> dict[str, np.ndarray]:
    layers = [la for la in graph.layers if is_layer(la)]
    weighted = [la for la in layers if la.weights]
    paths = {id(la): weight_paths(la) for la in weighted}
    depth_order = keras_layer_order(graph)
    candidates = [
        layer_keys(depth_order),
        layer_keys(layers),
        layer_keys(keras_layer_order(graph, sorted(graph.outputs))),
    ]
    classes: dict[str, list[Layer]] = {}
    for layer in depth_order:
        if layer.weights and is_layer(layer):
            classes.setdefault(snake_case(layer.keras_class()), []).append(layer)
    theirs: dict[str, list[Entry]] = {}
    for key, entry in entries.items():
        cls = _class_of(key, set(classes))
        if cls is not None:
            theirs.setdefault(cls, []).append(entry)
    for group in theirs.values():
        group.sort(key=lambda e: e.number)

    chosen: dict[int, Entry] = {}
    for cls, ours in classes.items():
        pool = theirs.get(cls, [])
        mapping = _by_names(ours, pool, paths) or _by_keys(ours, entries, candidates, paths)
        if mapping is None:
            mapping = _by_shapes(ours, pool, paths, candidates[0], entries, where)
        chosen.update(mapping)

    used = {id(e) for e in chosen.values()}
    extra = [e for e in entries.values() if e.weights and id(e) not in used]
    if extra:
        e = extra[0]
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        _fail(
            f"{where}: {e.where()} ({_entry_shapes(e)}) matches no layer of model "
            f"'{graph.name}'{more}",
            "the file must hold the weights of the same model: " + HINT_ORDER,
        )
    return _arrays(weighted, chosen, paths)


def _by_names(ours, pool, paths) -> dict[int, Entry] | None:
    named = {e.name: e for e in pool if e.name}
    mapping = {}
    for layer in ours:
        e = named.get(layer.name)
        if e is None or not _fits(layer, paths[id(layer)], e):
            return None
        mapping[id(layer)] = e
    return mapping


def _by_keys(ours, entries, candidates, paths) -> dict[int, Entry] | None:
    for keys in candidates:
        mapping = {}
        for layer in ours:
            e = entries.get(keys.get(id(layer), ""))
            if e is None or not _fits(layer, paths[id(layer)], e):
                break
            mapping[id(layer)] = e
        else:
            return mapping
    return None


def _by_shapes(ours, pool, paths, keys, entries, where) -> dict[int, Entry]:
    """Each layer takes the first unused entry its shapes fit; none fitting, or two that
    fit and differ, is an error."""
    cls = ours[0].keras_class()
    if not pool:
        _fail(
            f"{where}: no weights for layer '{ours[0].name}' ({cls}): the file has no "
            f"{cls} layers (layers/{snake_case(cls)}...)",
            "the file must hold the weights of the same model",
        )
    used: set[int] = set()
    mapping = {}
    for layer in ours:
        fits = [e for e in pool if id(e) not in used and _fits(layer, paths[id(layer)], e)]
        if not fits:
            _mismatch(layer, paths[id(layer)], pool, used, keys, entries, where)
        if len(fits) > 1 and not _all_equal(fits):
            listed = ", ".join(e.group for e in fits)
            _fail(
                f"{where}: cannot tell which weights belong to layer '{layer.name}' "
                f"({cls}, {_shapes(layer)}): {listed} all have those shapes",
                HINT_ORDER,
            )
        used.add(id(fits[0]))
        mapping[id(layer)] = fits[0]
    return mapping


def _all_equal(group: list[Entry]) -> bool:
    first = group[0].weights
    return all(
        e.weights.keys() == first.keys()
        and all(np.array_equal(e.weights[k].read(), first[k].read()) for k in first)
        for e in group[1:]
    )


def _mismatch(layer, paths, pool, used, keys, entries, where):
    cls = layer.keras_class()
    entry = entries.get(keys.get(id(layer), ""))
    if entry is None or id(entry) in used:
        unused = [e for e in pool if id(e) not in used]
        if not unused:
            _fail(
                f"{where}: no weights for layer '{layer.name}' ({cls}, {_shapes(layer)}): "
                f"the file has {len(pool)} {cls} layer{'s' * (len(pool) != 1)} with "
                f"weights, and each fits another layer",
                "the file must hold the weights of the same model",
            )
        entry = unused[0]
    got = entry.weights
    if len(got) != len(paths):
        _fail(
            f"{where}: layer '{layer.name}' ({cls}) has {len(paths)} weights "
            f"({_shapes(layer)}), but {entry.where()} holds {len(got)} "
            f"({_entry_shapes(entry)})",
            "check use_bias, center and scale against the Keras model",
        )
    for w, p in zip(layer.weights, paths):
        a = entry.arrays.get(p)
        if a is None:
            _fail(
                f"{where}: {entry.where()} has no {p} for layer '{layer.name}' ({cls}) "
                f"{w.name}; it holds {_entry_shapes(entry)}"
            )
        if tuple(a.shape) != tuple(w.shape):
            _fail(
                f"{where}: layer '{layer.name}' ({cls}) {w.name} has shape "
                f"{tuple(a.shape)} in the file ({entry.where()}), but the model needs "
                f"{w.shape}",
                "the Keras model that saved the file differs from the .kdl model here",
            )
    _fail(f"{where}: layer '{layer.name}' ({cls}) fits none of the file's {cls} weights")


# ---------------------------------------------------------------- matching Keras 2 entries


def _match_legacy(entries: list[Entry], graph: Graph, where: str) -> dict[str, np.ndarray]:
    weighted = [la for la in graph.layers if is_layer(la) and la.weights]
    depth = [la for la in keras_layer_order(graph) if is_layer(la) and la.weights]
    saved = [e for e in entries if e.weights]
    paths = {id(la): [f"vars/{i}" for i in range(len(la.weights))] for la in weighted}
    mapping = _by_names(weighted, saved, paths)
    if mapping is None:
        by_position = {str(i): e for i, e in enumerate(saved)}
        candidates = [{id(la): str(i) for i, la in enumerate(o)} for o in (depth, weighted)]
        mapping = _by_keys(weighted, by_position, candidates, paths)
        if mapping is None:
            if len(saved) != len(weighted):
                _fail(
                    f"{where}: the file has weights for {len(saved)} layers; model "
                    f"'{graph.name}' has {len(weighted)} layers with weights",
                    "the file must hold the weights of the same model",
                )
            mapping = _by_shapes(depth, saved, paths, candidates[0], by_position, where)
    used = {id(e) for e in mapping.values()}
    extra = [e for e in saved if id(e) not in used]
    if extra:
        _fail(
            f"{where}: layer '{extra[0].name}' of the file ({_entry_shapes(extra[0])}) "
            f"matches no layer of model '{graph.name}'",
            "the file must hold the weights of the same model: " + HINT_ORDER,
        )
    return _arrays(weighted, mapping, paths)


def _arrays(weighted, chosen: dict, paths: dict) -> dict[str, np.ndarray]:
    """`<layer>/<weight>` -> the array of the file entry chosen for each layer."""
    out: dict[str, np.ndarray] = {}
    for layer in weighted:
        entry = chosen[id(layer)]
        for w, p in zip(layer.weights, paths[id(layer)]):
            out[f"{layer.name}/{w.name}"] = entry.arrays[p].read()
    return out
