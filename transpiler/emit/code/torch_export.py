"""What a PyTorch bundle needs to write its trained model in ktrans's and Keras's formats,
without the onnx package: the inference `.onnx` with the initial weights, where each
weight's bytes lie in it, and the Keras export description (recipes, the .weights.h5
layout, the .keras config: transpiler.emit.code.keras_export_info).

The torch engine holds its weights in Keras's layout. For the trained `.onnx` it runs
the recipes backwards (the runtime's onnx_layout.py) and overwrites the weights' bytes in
a copy of the inference model, as the onnxruntime engine does with its own state. Here
that path is checked on the initial weights: the Keras arrays, put back into the ONNX
layout, must be the inference model's initializers byte for byte; when they are not (or
the recipes cannot be made), the bundle has no `.onnx` export, and the reason is kept
(FILES["onnx_error"]) for the script to tell.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import numpy_helper

from transpiler.emit.code.keras_export_info import keras_export_info
from transpiler.emit.code.train_weight_bytes import weight_offsets
from transpiler.emit.onnx.model import build_model
from transpiler.emit.onnx.save import PROTOBUF_LIMIT


def keras_arrays(weights: dict) -> dict[str, np.ndarray]:
    """{"<layer>/<weight>": float32 array} of initial_weights' {layer: {weight: array}}."""
    return {
        f"{layer}/{name}": np.asarray(value, np.float32)
        for layer, values in weights.items()
        for name, value in values.items()
    }


def export_files(inference_graph, weights: dict, source: str) -> dict:
    """{"keras": the export description (JSON text), "onnx": the inference model's bytes
    or None, "offsets": {initializer: [offset, size]} or None, "onnx_error": why there
    is no .onnx export, or None}."""
    from transpiler.templates.ktrans_runtime.onnx_layout import onnx_arrays, state_shapes

    info = keras_export_info(inference_graph)
    out = {"keras": json.dumps(info), "onnx": None, "offsets": None, "onnx_error": None}
    recipes = info.get("recipes")
    if recipes is None:
        out["onnx_error"] = info.get("recipes_error") or "no recipes for this model"
        return out
    proto = build_model(inference_graph, weights=weights, source=source)
    if proto.ByteSize() > PROTOBUF_LIMIT:
        out["onnx_error"] = "the model is over 2 GB, the limit of an .onnx file"
        return out
    initializers = {t.name: t for t in proto.graph.initializer}
    names = list(state_shapes(recipes))
    rebuilt = onnx_arrays(keras_arrays(weights), recipes)
    for name in names:
        tensor = initializers.get(name)
        if tensor is None or not np.array_equal(numpy_helper.to_array(tensor), rebuilt[name]):
            out["onnx_error"] = (
                f"the weight '{name}' of the .onnx model is not a rearrangement of Keras's weights"
            )
            return out
    out["onnx"], out["offsets"] = weight_offsets(proto, names)
    return out
