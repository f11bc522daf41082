"""What .kdl cannot express is an error naming the Keras layer, its class, the config key
and what to do; nothing is silently dropped."""

from __future__ import annotations

import json

import pytest

from transpiler.errors import KdlErrors
from transpiler.importer import import_keras

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def import_error(model, tmp_path) -> tuple[str, str]:
    path = tmp_path / "model.json"
    path.write_text(model.to_json() if hasattr(model, "to_json") else json.dumps(model))
    with pytest.raises(KdlErrors) as err:
        import_keras(path)
    (e,) = err.value.errors
    return e.message, e.hint or ""


def functional(*make):
    x = keras.Input((4,), name="x")
    y = x
    for m in make:
        y = m(y)
    return keras.Model(x, y)


def test_lambda_names_the_layer_the_key_and_what_to_do(tmp_path):
    message, hint = import_error(
        functional(layers.Lambda(lambda t: t * 2, name="double")), tmp_path
    )
    assert message.startswith("model.json: layer 'double' (Lambda), config key 'function':")
    assert "Python bytecode" in message and ".kdl expression" in hint


def test_unknown_custom_layer(tmp_path):
    @keras.saving.register_keras_serializable(package="mine")
    class Twice(layers.Layer):
        def call(self, x):
            return x * 2

    message, hint = import_error(functional(Twice(name="twice")), tmp_path)
    assert message.startswith(
        "model.json: layer 'twice' (Twice), config key 'registered_name': 'mine>Twice' is a "
        "custom layer class"
    )
    assert "None" not in message
    assert hint.startswith("rewrite the layer with catalogue layers or .kdl expressions")


def test_an_unregistered_custom_layer_is_not_taken_for_a_keras_layer(tmp_path):
    """Keras writes an unregistered class's bare name as its registered_name, with no
    module: it is custom even where a Keras layer has that name."""

    class Dense(layers.Layer):
        def call(self, x):
            return x * 2

    message, _ = import_error(functional(Dense(name="mine")), tmp_path)
    assert message.startswith(
        "model.json: layer 'mine' (Dense), config key 'registered_name': 'Dense' is a "
        "custom layer class"
    )


def test_a_custom_class_named_like_an_application_layer(tmp_path):
    @keras.saving.register_keras_serializable(package="mine")
    class LayerScale(layers.Layer):
        def call(self, x):
            return x * 2

    message, hint = import_error(functional(LayerScale(name="scale")), tmp_path)
    assert message.startswith(
        "model.json: layer 'scale' (LayerScale), config key 'registered_name': "
        "'mine>LayerScale' is not keras.applications' LayerScale"
    )
    assert "keras.applications.convnext" in hint and "None" not in message


def test_a_layer_the_catalogue_lacks(tmp_path):
    message, hint = import_error(functional(layers.UnitNormalization(name="unit")), tmp_path)
    assert message == (
        "model.json: layer 'unit' (UnitNormalization), config key 'class_name': "
        "Keras's UnitNormalization has no .kdl layer yet"
    )
    assert "docs/layers.md" in hint


def test_a_constraint_is_not_dropped(tmp_path):
    dense = layers.Dense(3, kernel_constraint=keras.constraints.NonNeg(), name="head")
    message, hint = import_error(functional(dense), tmp_path)
    assert message.startswith("model.json: layer 'head' (Dense), config key 'kernel_constraint':")
    assert "NonNeg" in message and "remove the constraint" in hint


def test_a_keras_setting_kdl_lacks_is_an_error_unless_at_its_default(tmp_path):
    message, hint = import_error(functional(layers.Dense(3, lora_rank=2, name="d")), tmp_path)
    assert (
        "layer 'd' (Dense), config key 'lora_rank': the setting lora_rank=2 has no .kdl" in message
    )
    assert "leave it at its default" in hint


def test_mixed_precision_is_an_error(tmp_path):
    message, hint = import_error(
        functional(layers.Dense(3, dtype="mixed_float16", name="d")), tmp_path
    )
    assert "config key 'dtype'" in message and "mixed_float16" in message and "float32" in hint


def test_an_operation_kdl_lacks(tmp_path):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.ops.cumsum(x, axis=1))
    message, hint = import_error(model, tmp_path)
    assert "(Cumsum)" in message and "no .kdl expression" in message
    assert "catalogue layers" in hint


def test_approximate_gelu_op_is_an_error(tmp_path):
    x = keras.Input((4,), name="x")
    message, hint = import_error(keras.Model(x, keras.ops.gelu(x, approximate=True)), tmp_path)
    assert "config key 'approximate'" in message and "approximate=False" in hint


def test_a_nested_model_called_twice(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(4)], name="inner")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, inner(inner(x)))
    message, hint = import_error(model, tmp_path)
    assert "layer 'inner' (Sequential)" in message and "called 2 times" in message
    assert "call the nested model once" in hint


def test_a_check_failure_names_the_keras_layer(tmp_path):
    """A config Keras would not build either (a Dense on integer ids): the check of the
    written file fails, reported at the Keras layer."""
    config = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {"class_name": "InputLayer", "name": "ids",
                 "config": {"name": "ids", "batch_shape": [None, 4], "dtype": "int64"}},
                {"class_name": "Dense", "name": "head", "config": {"name": "head", "units": 2},
                 "inbound_nodes": [[["ids", 0, 0, {}]]]},
            ],
            "input_layers": [["ids", 0, 0]],
            "output_layers": [["head", 0, 0]],
        },
    }  # fmt: skip
    message, hint = import_error(config, tmp_path)
    assert message == "model.json: layer 'head' (Dense): Dense expects a float tensor; got int64"
    assert "Embedding" in hint


def test_a_subclassed_model_has_no_config(tmp_path):
    config = {"class_name": "MyModel", "config": {"units": 3}}
    message, hint = import_error(config, tmp_path)
    assert "holds a MyModel, not a Sequential or functional model" in message
    assert "functional API" in hint
