"""The layer catalogue: one module per family, every layer registered by `@register`.

To add a layer, write one class in the family's module (or a new module listed below):

    from transpiler.layers.args import positive_int
    from transpiler.layers.base import Arg, Layer, register

    @register
    class Scale(Layer):
        \"\"\"Multiplies by a constant. Args: factor. Output shape: as input.\"\"\"

        signature = (Arg("factor", positive_int),)

        def build(self, inputs):
            self.expect_float(inputs[0])
            return []                       # weights, in Keras layout

        def output_types(self, inputs):
            return inputs[0]

It is then usable in .kdl files as `Scale(3)`, appears in `ktrans summary`, and the layer
tests pick it up once it has a row there.
"""

from transpiler.layers import (  # noqa: F401  (importing registers the layers)
    activation_layers,
    applications,
    attention,
    conv,
    core,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
)
from transpiler.layers.base import LAYERS, Arg, Layer, LayerError, Weight, register

__all__ = ["LAYERS", "Arg", "Layer", "LayerError", "Weight", "register"]
