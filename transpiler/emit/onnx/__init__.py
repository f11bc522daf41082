"""Graph -> ONNX inference model (`build_model`), written atomically (`save_model`).

Each layer lowers itself (`Layer.lower(ctx, inputs)`, see transpiler/emit/onnx/context.py
for what `ctx` offers). To lower a new layer, add a `lower` method next to its `build`:

    def lower(self, ctx, inputs):
        (x,) = inputs                          # LTensors: ONNX name, Keras type, layout
        y = ctx.op("Mul", [x, ctx.weight("scale")])
        return [x.like(y)]
"""

import importlib

from transpiler.emit.versions import IR_VERSION, OPSET

# Imported on first use, so that importing a numpy-only module of this package
# (initial_values, initializers, pending) does not import onnx.
_EXPORTS = {
    "build_model": "model",
    "build_model_parts": "model",
    "initial_weights": "initial_values",
    "save_model": "save",
    "save_model_parts": "save",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IR_VERSION",
    "OPSET",
    "build_model",
    "build_model_parts",
    "initial_weights",
    "save_model",
    "save_model_parts",
]
