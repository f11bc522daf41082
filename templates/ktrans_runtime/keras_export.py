"""Trained weights out in Keras's formats: a Keras-layout `.npz`, a Keras 3 `.weights.h5`
and a `.keras` archive.

Two steps, kept apart so that every engine shares the second:

1. **State -> Keras arrays.** `keras_arrays(state, recipes)` turns the ONNX engine's
   training state (parameters and buffers in ONNX layout, named after the inference
   model's initializers) into `{"<layer>/<weight>": array}` in Keras layout, by the
   per-weight recipes ktrans computed from the graph. The torch engine holds its weights
   in Keras layout already and builds the same dict from its module.
2. **Keras arrays -> files.** `write_keras_npz` (the layout `ktrans build --weights`
   reads), `write_weights_h5` (what `model.load_weights` reads into the model of
   `ktrans codegen --target keras`) and `write_keras_archive` (what
   `keras.saving.load_model` opens) take those arrays and the layout ktrans computed.

The bundle's `<Model>.keras.json` (`read_export_info`) holds what both steps need:

    {"format": 1, "model": "MnistMLP",
     "recipes": {"<layer>/<weight>": RECIPE, ...},
     "weights_h5": {"datasets": [["layers/dense/vars/0", "dense/kernel"], ...],
                    "names": {"layers/dense/vars": "dense", ...}},
     "keras_config": {...}}         # config.json of a .keras archive

A RECIPE makes one Keras array from the state: `{"shape": [...], "parts": [PART, ...]}`,
each PART `{"state": NAME, "shape": [...], "ops": [OP, ...], "at": null | [[lo, hi], ...]}`:
the state tensor NAME, of that shape, run through the OPs gives the whole weight (`at`
null) or the box `at` of it (a weight the lowering split into several tensors). An OP is one of

    ["reshape", shape]       ["transpose", perm]
    ["take", axis, indices]  (reorders the blocks of an axis: ONNX's gate order)
    ["sum", axis]            (ONNX's input and recurrent biases -> Keras's one bias)

A weight that the forward pass never reads (Normalization's `count`, which only Keras's
adapt() uses) is in no state tensor, and training never changes it: its recipe has no
parts and holds its value instead, `{"shape": [...], "parts": [], "value": [...]}` (the
value the bundle was built with).

`export_run` (the end of a run) and `export_checkpoint` (ModelCheckpoint's `.weights.h5`
and `.keras`) do both steps for an engine (the loop's `TrainingRun.keras_files`) and
return (paths written, notes): an engine that holds Keras's layout gives its arrays
itself (`keras_weights()`); the ONNX engine's `weights()` go through the recipes.

Rules of the runtime: numpy at import; h5py is imported by the writers that need it, and
a missing h5py raises `ExportUnavailable` with a one-line reason (`write_keras_files`,
`export_run` and `export_checkpoint` turn it into a note). Every file is written with
the runtime's `files.atomic_write` (a temporary file beside it, fsync, rename).
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .files import atomic_write

FORMAT = 1


class ExportError(ValueError):
    """The state or the arrays do not fit the recipes or the layout (one line)."""


class ExportUnavailable(ExportError):
    """A writer needs a package that is not installed (h5py)."""


# ------------------------------------------------------------------ step 1: state -> Keras


def read_export_info(path: str | Path) -> dict:
    """The bundle's `<Model>.keras.json`."""
    path = Path(path)
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read {path}: {e}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ExportError(f"{path} is not a Keras export description of format {FORMAT}")
    return info


def apply_ops(array: np.ndarray, ops: list, first_of_sums: bool = False) -> np.ndarray:
    """`array` run through a recipe's ops (module docstring); with `first_of_sums`, a
    `sum` keeps the first of the values it would add (onnx_layout runs positions through
    the recipes this way)."""
    out = np.asarray(array)
    for op in ops:
        kind = op[0]
        if kind == "reshape":
            out = out.reshape(op[1])
        elif kind == "transpose":
            out = out.transpose(op[1])
        elif kind == "take":
            out = np.take(out, op[2], axis=op[1])
        elif kind == "sum":
            out = np.take(out, 0, axis=op[1]) if first_of_sums else out.sum(axis=op[1])
        else:
            raise ExportError(f"unknown recipe op {kind!r}")
    return out


def keras_array(state: Mapping[str, np.ndarray], key: str, recipe: dict) -> np.ndarray:
    """One Keras weight `key` made from the state by its recipe."""
    shape = tuple(recipe["shape"])
    if "value" in recipe:  # a weight the forward pass never reads: its value as built
        return np.asarray(recipe["value"], np.float32).reshape(shape)
    out = None
    # the first part wins where two cover the same values (copies of one weight)
    for part in reversed(recipe["parts"]):
        name = part["state"]
        if name not in state:
            raise ExportError(f"the state has no '{name}', which holds the weight '{key}'")
        have, want = tuple(np.shape(state[name])), tuple(part["shape"])
        if have != want:
            raise ExportError(
                f"'{name}' has shape {have}; the weight '{key}' needs it shaped {want}"
            )
        value = apply_ops(state[name], part["ops"])
        at = part.get("at")
        if at is None:
            out = np.array(value, dtype=np.float32)
            continue
        if out is None:
            out = np.zeros(shape, np.float32)
        out[tuple(slice(lo, hi) for lo, hi in at)] = value
    if out is None or out.shape != shape:
        got = None if out is None else out.shape
        raise ExportError(f"the recipe of the weight '{key}' gives shape {got}, not {shape}")
    return out


def keras_arrays(
    state: Mapping[str, np.ndarray], recipes: Mapping[str, dict]
) -> dict[str, np.ndarray]:
    """`{"<layer>/<weight>": float32 array}` in Keras layout, from the ONNX-layout state."""
    return {key: keras_array(state, key, recipe) for key, recipe in recipes.items()}


# ------------------------------------------------------------------ step 2: Keras -> files


def write_keras_npz(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """The `<layer>/<weight>` arrays as an `.npz` (what `ktrans build --weights` reads)."""
    flat = {key: np.asarray(value, np.float32) for key, value in arrays.items()}
    return atomic_write(Path(path), lambda f: np.savez(f, **flat))


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ExportUnavailable("h5py is not installed (pip install h5py)") from None
    return h5py


def weights_h5_bytes(arrays: Mapping[str, np.ndarray], layout: dict) -> bytes:
    """A Keras 3 weights file (what `model.save_weights` writes) in memory: every
    dataset of `layout` filled from `arrays`, and the layers' names on their `vars`."""
    h5py = _h5py()
    missing = [key for _, key in layout["datasets"] if key not in arrays]
    if missing:
        raise ExportError(f"no array for the weight '{missing[0]}'")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for dataset, key in layout["datasets"]:
            f.create_dataset(dataset, data=np.asarray(arrays[key], np.float32))
        for group, name in layout.get("names", {}).items():
            f.require_group(group).attrs["name"] = name
    return buffer.getvalue()


def write_weights_h5(arrays: Mapping[str, np.ndarray], layout: dict, path: str | Path) -> Path:
    """A Keras 3 `.weights.h5` file that the `codegen --target keras` model loads with
    `model.load_weights(path)`."""
    data = weights_h5_bytes(arrays, layout)
    return atomic_write(Path(path), lambda f: f.write(data))


def write_keras_archive(
    arrays: Mapping[str, np.ndarray],
    layout: dict,
    config: dict,
    path: str | Path,
    saved_by: str = "ktrans",
) -> Path:
    """A `.keras` archive (config.json, metadata.json, model.weights.h5) that
    `keras.saving.load_model(path)` opens: `config` is the Keras model config."""
    weights = weights_h5_bytes(arrays, layout)
    metadata = {
        "keras_version": "3",
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "saved_by": saved_by,
    }

    def write(f) -> None:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr("metadata.json", json.dumps(metadata))
            zf.writestr("config.json", json.dumps(config))
            zf.writestr("model.weights.h5", weights)

    return atomic_write(Path(path), write)


def write_keras_files(
    arrays: Mapping[str, np.ndarray], info: dict, out: str | Path, stem: str
) -> tuple[list[Path], list[str]]:
    """The run's Keras files, `<stem>.weights.npz` and `<stem>.weights.h5`, into `out`:
    (paths written, notes on files not written and why)."""
    out = Path(out)
    written = [write_keras_npz(arrays, out / f"{stem}.weights.npz")]
    layout = info.get("weights_h5")
    if layout is None:
        return written, [f"{stem}.weights.h5 was not written: {info.get('weights_h5_error')}"]
    try:
        written.append(write_weights_h5(arrays, layout, out / f"{stem}.weights.h5"))
    except ExportUnavailable as e:
        return written, [f"{stem}.weights.h5 was not written: {e}"]
    return written, []


# ------------------------------------------------------------------ both steps, for the loop


def engine_arrays(engine, info: dict) -> dict[str, np.ndarray]:
    """The engine's current weights in Keras layout: its own `keras_weights()` where it
    has one (an engine that holds Keras's layout), else its ONNX-layout `weights()`
    through the recipes."""
    own = getattr(engine, "keras_weights", None)
    if own is not None:
        return own()
    if info.get("recipes") is None:
        raise ExportError(str(info.get("recipes_error")))
    return keras_arrays(engine.weights(), info["recipes"])


def export_run(engine, info: dict, out: str | Path, stem: str) -> tuple[list[Path], list[str]]:
    """End of a run: the engine's weights as `<stem>.weights.npz` and `<stem>.weights.h5`
    into `out` (write_keras_files); (paths written, notes)."""
    try:
        return write_keras_files(engine_arrays(engine, info), info, out, stem)
    except ExportError as e:
        return [], [f"no Keras files were written: {e}"]


def export_checkpoint(engine, info: dict, path: str | Path) -> tuple[list[Path], list[str]]:
    """ModelCheckpoint's `.weights.h5` (the weights) or `.keras` (the archive) of the
    engine's weights; (paths written, notes)."""
    path = Path(path)
    archive = path.name.endswith(".keras")
    needs = ["weights_h5"] + (["keras_config"] if archive else [])
    missing = [key for key in needs if info.get(key) is None]
    if missing:
        return [], [f"{path.name} was not written: {info.get(f'{missing[0]}_error')}"]
    try:
        arrays = engine_arrays(engine, info)
        if archive:
            written = write_keras_archive(arrays, info["weights_h5"], info["keras_config"], path)
        else:
            written = write_weights_h5(arrays, info["weights_h5"], path)
    except ExportError as e:
        return [], [f"{path.name} was not written: {e}"]
    return [written], []
