"""Graph -> ONNX inference model (`build_model`), written atomically (`save_model`).

Each layer lowers itself (`Layer.lower(ctx, inputs)`, see transpiler/emit/onnx/context.py
for what `ctx` offers). To lower a new layer, add a `lower` method next to its `build`:

    def lower(self, ctx, inputs):
        (x,) = inputs                          # LTensors: ONNX name, Keras type, layout
        y = ctx.op("Mul", [x, ctx.weight("scale")])
        return [x.like(y)]
"""

from transpiler.emit.onnx.model import build_model, build_model_parts, initial_weights
from transpiler.emit.onnx.save import save_model, save_model_parts
from transpiler.emit.versions import IR_VERSION, OPSET

__all__ = [
    "IR_VERSION",
    "OPSET",
    "build_model",
    "build_model_parts",
    "initial_weights",
    "save_model",
    "save_model_parts",
]
