"""What a training bundle needs to write its trained weights in Keras's formats: the
`<Model>.keras.json` beside the script (format: the docstring of
transpiler/templates/ktrans_runtime/keras_export.py, which reads it).

- `recipes`: ONNX-layout state -> Keras arrays (transpiler.emit.onnx.keras_recipes);
- `weights_h5`: where each array goes in a Keras 3 `.weights.h5`
  (transpiler.emit.onnx.keras_layout.keras3_layout);
- `keras_config`: the `config.json` of a `.keras` archive
  (transpiler.emit.code.keras_config).

A part that cannot be computed for a model (a graph that has no Keras code, a layer that
leads to no output) is `null`, with the reason in `<part>_error`: training still works,
and the script says which files it could not write and why.
"""

from __future__ import annotations

from collections.abc import Iterable

from transpiler.errors import KdlErrors
from transpiler.graph.model import Graph

FORMAT = 1


def _attempt(info: dict, key: str, make) -> None:
    try:
        info[key] = make()
    except KdlErrors as e:
        info[key] = None
        info[f"{key}_error"] = e.errors[0].message


def keras_export_info(
    graph: Graph, state_names: Iterable[str] | None = None, weights: dict | None = None
) -> dict:
    """The export description of `graph` (the inference graph, as declared) whose training
    state holds `state_names` (parameters and buffers); `weights`: the Keras-layout
    weights it is built with (the value of a weight that no state tensor holds)."""
    from transpiler.emit.code.keras_config import keras_model_config
    from transpiler.emit.onnx.keras_layout import keras3_layout
    from transpiler.emit.onnx.keras_recipes import keras_recipes

    names = None if state_names is None else list(state_names)
    info: dict = {"format": FORMAT, "model": graph.name}
    _attempt(info, "recipes", lambda: keras_recipes(graph, names, weights))
    _attempt(info, "weights_h5", lambda: keras3_layout(graph))
    _attempt(info, "keras_config", lambda: keras_model_config(graph))
    return info
