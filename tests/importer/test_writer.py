# ruff: noqa: E501  (config tables: one layer per line)
"""The .kdl text `ktrans import` writes, as a person would write it: sequential
statements for chains, named tensors and call syntax where the graph branches, shared
layers as a variable, only non-default arguments, Keras names where ktrans would give
others, blocks for nested models, the compile config as a train block, a header."""

from __future__ import annotations

import pytest

from transpiler.importer import import_keras

keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def imported_text(model, tmp_path, compile_args: dict | None = None) -> str:
    if compile_args:
        model.compile(**compile_args)
    path = tmp_path / "m.keras"
    model.save(str(path))
    return import_keras(path).text


def test_a_sequential_model_reads_like_the_examples(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(32, 3, activation="relu", name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Dropout(0.25, name="dropout"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="dense"),
        ],
        name="MnistCNN",
    )
    text = imported_text(model, tmp_path)
    assert text == (
        "# Imported by `ktrans import` from m.keras (Keras " + keras.__version__ + "):\n"
        "# 5 layers, 54,410 parameters. Layer names are Keras's; arguments at\n"
        "# their Keras defaults are left out.\n"
        "\n"
        "model MnistCNN {\n"
        "    input image: float32[28, 28, 1]\n"
        "\n"
        "    Conv2D(32, 3, activation=relu)\n"
        "    MaxPooling2D()\n"
        "    Dropout(0.25)\n"
        "    Flatten()\n"
        "    Dense(10, activation=softmax)\n"
        "}\n"
    )


def test_branches_are_named_tensors_and_outputs_keep_their_names(tmp_path):
    title = keras.Input((None,), dtype="int64", name="title")
    tags = keras.Input((12,), name="tags")
    t = layers.LSTM(8, name="encoder")(layers.Embedding(100, 4, name="words")(title))
    x = layers.Concatenate(name="merge")([t, tags])
    model = keras.Model(
        [title, tags],
        {"priority": layers.Dense(1, name="p")(x), "department": layers.Dense(4, name="d")(x)},
        name="Triage",
    )
    text = imported_text(model, tmp_path)
    assert "    input title: int64[?]\n    input tags: float32[12]\n" in text
    assert "    merge = title |> Embedding(100, 4, name=words) |> LSTM(8, name=encoder)" not in text
    assert "    encoder = title |> Embedding(100, 4, name=words) |> LSTM(8, name=encoder)\n" in text
    assert "    merge = Concatenate(name=merge)(encoder, tags)\n" in text
    assert "    output priority = merge |> Dense(1, name=p)\n" in text
    assert "    output department = merge |> Dense(4, name=d)\n" in text


def test_a_shared_layer_is_one_variable_called_twice(tmp_path):
    a, b = keras.Input((5, 3), name="a"), keras.Input((5, 3), name="b")
    encoder = layers.LSTM(4, name="encoder")
    merged = layers.Concatenate(name="concatenate")([encoder(a), encoder(b)])
    model = keras.Model([a, b], layers.Dense(1, name="dense")(merged), name="Pair")
    text = imported_text(model, tmp_path)
    assert "    encoder_layer = LSTM(4, name=encoder)\n" in text
    assert "    encoder = a |> encoder_layer\n" in text
    assert "    encoder_1 = b |> encoder_layer\n" in text
    assert "    Concatenate()(encoder, encoder_1) |> Dense(1)\n}" in text


def test_a_nested_sequential_model_is_a_block(tmp_path):
    stem = keras.Sequential(
        [keras.Input((8, 8, 3)), layers.Conv2D(4, 2, strides=2, name="stem_conv")],
        name="stem",
    )
    x = keras.Input((8, 8, 3), name="image")
    y = layers.GlobalAveragePooling2D(name="pool")(stem(x))
    text = imported_text(keras.Model(x, y, name="Net"), tmp_path)
    assert "# stem: a Sequential model nested in the Keras model\nblock Stem() {\n" in text
    assert "    Conv2D(4, 2, strides=2, name=stem_conv)\n}\n" in text
    assert "    Stem()\n    GlobalAveragePooling2D(name=pool)\n}" in text


def test_keras_names_are_kept_where_ktrans_would_give_others(tmp_path):
    x = keras.Input((4,), name="x")
    h = layers.Dense(3, name="dense")(x)  # what ktrans calls it: no name written
    h = layers.Dense(3, name="hidden-1")(h)  # not an identifier: a string
    y = layers.Dense(2, name="dense_7")(h)
    text = imported_text(keras.Model(x, y, name="N"), tmp_path)
    assert '    Dense(3)\n    Dense(3, name="hidden-1")\n    Dense(2, name=dense_7)\n' in text


def test_only_non_default_arguments_and_keras_spellings(tmp_path):
    x = keras.Input((8, 8, 3), name="x")
    y = layers.Conv2D(
        16,
        (3, 3),
        strides=(1, 1),
        padding="same",
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out"),
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="conv2d",
    )(x)
    y = layers.Rescaling(1 / 255, name="rescaling")(y)
    y = layers.ZeroPadding2D(((1, 2), (1, 2)), name="zero_padding2d")(y)
    y = layers.MaxPooling2D((3, 3), strides=(2, 2), name="max_pooling2d")(y)
    text = imported_text(keras.Model(x, y, name="M"), tmp_path)
    assert (  # over 100 characters: one argument per line
        "    Conv2D(\n        16,\n        3,\n        padding=same,\n"
        "        kernel_initializer=VarianceScaling(scale=2.0, mode=fan_out),\n"
        "        kernel_regularizer=l2(0.0001),\n    )\n"
    ) in text
    assert "    Rescaling(1 / 255)\n    ZeroPadding2D([[1, 2], [1, 2]])\n" in text
    assert "    MaxPooling2D(3, strides=2)\n" in text


def test_operations_are_expressions(tmp_path):
    x = keras.Input((4,), name="x")
    h = layers.Dense(4, name="dense")(x)
    y = layers.ReLU(6.0, name="re_lu")(h + 3.0) * (1.0 / 6.0)
    text = imported_text(keras.Model(x, keras.ops.mean(y, axis=-1, keepdims=True)), tmp_path)
    assert "    re_lu = (dense + 3.0) |> ReLU(6.0)\n" in text
    assert "    multiply_ = re_lu * (1 / 6)\n    mean(multiply_, axis=-1, keepdims=true)\n" in text


def test_the_compile_config_is_a_train_block(tmp_path):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(3, activation="softmax", name="dense")(x), name="M")
    compile_args = {
        "optimizer": keras.optimizers.Adam(learning_rate=3e-4, clipnorm=1.0),
        "loss": keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        "metrics": ["accuracy", keras.metrics.AUC(name="auc")],
    }
    text = imported_text(model, tmp_path, compile_args)
    assert text.endswith(
        "train M {\n"
        "    optimizer = Adam(learning_rate=0.0003, clipnorm=1.0)\n"
        "    loss      = categorical_crossentropy(label_smoothing=0.1)\n"
        "    metrics   = [accuracy, auc]\n"
        "}\n"
    )


def test_a_layer_name_an_expression_took_is_renamed(tmp_path):
    """ktrans numbers expressions and layers with the same counters, in the order of the
    file: where an expression took a Keras layer's name first, the layer is renamed."""
    import json

    def tensor(layer):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, 0, 0]}}

    def node(*args):
        return [{"args": list(args), "kwargs": {}}]

    op = {"module": "keras.src.ops.numpy", "class_name": "Add"}
    config = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {"class_name": "InputLayer", "name": "a", "config": {"name": "a", "batch_shape": [None, 3]}},
                {**op, "name": "add", "config": {"name": "add"}, "inbound_nodes": node(tensor("a"), 1.0)},
                {**op, "name": "add_5", "config": {"name": "add_5"}, "inbound_nodes": node(tensor("add"), 2.0)},
                {"class_name": "Add", "name": "add_1", "config": {"name": "add_1"},
                 "inbound_nodes": node([tensor("add_5"), tensor("a")])},
            ],
            "input_layers": [["a", 0, 0]],
            "output_layers": [["add_1", 0, 0]],
        },
    }  # fmt: skip
    path = tmp_path / "m.json"
    path.write_text(json.dumps(config))
    imported = import_keras(path)
    assert "Add(name=add_1_2)(add_2, a)" in imported.text
    assert imported.renamed == {"add_1_2": "add_1"}
    assert [la.name for la in imported.graph.layers if la.family != "expression"] == ["add_1_2"]
