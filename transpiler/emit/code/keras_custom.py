"""Keras classes for the catalogue layers that `keras.layers` does not have: the layers
keras.applications defines for its own models. A generated module that uses one defines
it, with the same arguments, weights, computation and config as the keras.applications
class, registered for saving under the package "ktrans" (so a saved model loads where
the module was imported, and `ktrans import` reads it back as the same layer).
"""

from __future__ import annotations

LAYER_SCALE = '''
@keras.saving.register_keras_serializable(package="ktrans")
class LayerScale(layers.Layer):
    """ConvNeXt's layer scale, as keras.applications.convnext defines it: x * gamma."""

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, _):
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
            trainable=True,
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        config = super().get_config()
        config.update(init_values=self.init_values, projection_dim=self.projection_dim)
        return config
'''

CUSTOM_SCALE_LAYER = '''
@keras.saving.register_keras_serializable(package="ktrans")
class CustomScaleLayer(layers.Layer):
    """InceptionResNetV2's residual scaling, as keras.applications defines it:
    inputs[0] + inputs[1] * scale."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs[0] + inputs[1] * self.scale

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config
'''

#: Keras class name -> its definition in a generated module
CUSTOM_CLASSES = {"LayerScale": LAYER_SCALE, "CustomScaleLayer": CUSTOM_SCALE_LAYER}


def class_definitions(names: set[str]) -> list[str]:
    """The definitions of the custom classes `names`, in a fixed order, as code lines."""
    lines: list[str] = []
    for name in CUSTOM_CLASSES:
        if name in names:
            lines += ["", ""] + CUSTOM_CLASSES[name].strip("\n").split("\n")
    return lines
