"""The bundled examples against their Keras originals.

Each examples/*.kdl has a Keras 3 twin here, written as the Keras example it comes from
(keras.applications for ResNet50 and MobileNetV2). For each pair the test asserts:

- the same total, trainable and non-trainable parameter counts;
- the same layers: (class, params, trainable params) for every layer of `model.layers`;
- the same layer calls: (class, output shapes, main arguments) for every call of a layer,
  with the batch axis and dynamic axes as None, as Keras prints them, and the arguments of
  CONFIG_KEYS as Keras's get_config() gives them. Sequential twins are compared in order.
  Functional twins are compared as sorted multisets of (depth, class, shapes, arguments),
  where depth is the longest path from the model's inputs in layer calls: Keras orders a
  functional model's layers by depth and ours are in source order (ResNet50 creates the
  shortcut convolution before the main branch, Keras lists them side by side), so the order
  differs while the graph is the same;
- `ktrans summary` prints the Keras numbers.

None of the examples uses an expression (`x + y`, keras_class "Lambda"): the residual adds
are written `Add()(x, y)` or `add([y, x])` (the merge layer, as keras.layers.add), as the
Keras originals write them, so every class has a Keras counterpart.

Keras builds take under a second each (ResNet50 and MobileNetV2 included, at 224x224,
about 0.6 s each with the torch backend) after the Keras import (about 7 s); the file runs
in under 20 s. Those two are marked `slow` but run by default.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path

import pytest

from transpiler.cli import main
from transpiler.graph import load
from transpiler.layers import Layer
from transpiler.parser import ast

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# ---------------------------------------------------------------- the Keras twins


def keras_mnist_mlp():
    """keras examples/mnist_mlp.py"""
    return keras.Sequential(
        [
            keras.Input((784,)),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )


def keras_mnist_cnn():
    """keras examples/mnist_cnn.py"""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def keras_ticket_triage():
    """The functional API guide, 'Models with multiple inputs and outputs'."""
    num_tags, num_words, num_departments = 12, 10000, 4
    title_input = keras.Input(shape=(None,), name="title", dtype="int64")
    body_input = keras.Input(shape=(None,), name="body", dtype="int64")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 64)(title_input)
    body_features = layers.Embedding(num_words, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    return keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )


def keras_tweet_pair():
    """The Keras 2 functional guide, 'Shared layers'."""
    tweet_a = keras.Input(shape=(280, 256))
    tweet_b = keras.Input(shape=(280, 256))
    shared_lstm = layers.LSTM(64)
    encoded_a = shared_lstm(tweet_a)
    encoded_b = shared_lstm(tweet_b)
    merged_vector = layers.concatenate([encoded_a, encoded_b], axis=-1)
    predictions = layers.Dense(1, activation="sigmoid")(merged_vector)
    return keras.Model(inputs=[tweet_a, tweet_b], outputs=predictions)


def keras_toy_resnet():
    """The functional API guide, 'A toy ResNet model'."""
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


def keras_addition_rnn():
    """keras examples/addition_rnn.py: DIGITS = 3, MAXLEN = 7, 12 characters."""
    digits, chars, hidden_size, num_layers = 3, 12, 128, 1
    maxlen = digits + 1 + digits
    model = keras.Sequential()
    model.add(keras.Input((maxlen, chars)))
    model.add(layers.LSTM(hidden_size))
    model.add(layers.RepeatVector(digits + 1))
    for _ in range(num_layers):
        model.add(layers.LSTM(hidden_size, return_sequences=True))
    model.add(layers.TimeDistributed(layers.Dense(chars, activation="softmax")))
    return model


def keras_lstm_seq2seq():
    """keras examples/nlp/lstm_seq2seq.py: the training model."""
    latent_dim, num_encoder_tokens, num_decoder_tokens = 256, 71, 93
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = layers.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)


def keras_resnet50():
    return keras.applications.ResNet50(weights=None)


def keras_mobilenet_v2():
    return keras.applications.MobileNetV2(weights=None)


def keras_digits_cnn():
    """examples/digits_cnn.kdl: a small CNN on 8x8 digit images from a folder"""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(10, activation="softmax"),
        ]
    )


def keras_wine_mlp():
    """examples/wine_mlp.kdl: an MLP on the wine table"""
    return keras.Sequential(
        [
            keras.Input((13,)),
            layers.BatchNormalization(),
            layers.Dense(32, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ]
    )


KERAS_TWINS = {
    "mnist_mlp": keras_mnist_mlp,
    "mnist_cnn": keras_mnist_cnn,
    "ticket_triage": keras_ticket_triage,
    "tweet_pair": keras_tweet_pair,
    "toy_resnet": keras_toy_resnet,
    "addition_rnn": keras_addition_rnn,
    "lstm_seq2seq": keras_lstm_seq2seq,
    "resnet50": keras_resnet50,
    "mobilenet_v2": keras_mobilenet_v2,
    "digits_cnn": keras_digits_cnn,
    "wine_mlp": keras_wine_mlp,
}
SLOW = {"resnet50", "mobilenet_v2"}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in KERAS_TWINS]

# What the Keras scripts pass to fit(); the train blocks must say the same.
FIT_SETTINGS = {
    "mnist_mlp": {"batch_size": 128, "epochs": 20, "validation_split": 0.1},
    "mnist_cnn": {"batch_size": 128, "epochs": 12},
    "ticket_triage": {"batch_size": 32, "epochs": 2},
    "tweet_pair": {"epochs": 10},
    "toy_resnet": {"batch_size": 64, "epochs": 1, "validation_split": 0.2},
    "lstm_seq2seq": {"batch_size": 64, "epochs": 100, "validation_split": 0.2},
    "digits_cnn": {"batch_size": 32, "epochs": 15},
    "wine_mlp": {"batch_size": 16, "epochs": 30, "validation_split": 0.2},
}


@functools.cache
def kdl(name: str):
    """(Program, Graph) of examples/<name>.kdl; each example defines one model."""
    program, graphs = load(EXAMPLES / f"{name}.kdl")
    assert len(graphs) == 1, f"{name}.kdl should define one model; it has {list(graphs)}"
    return program, next(iter(graphs.values()))


@functools.cache
def twin(name: str):
    return KERAS_TWINS[name]()


# ---------------------------------------------------------------- helpers


def _size(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def keras_counts(model) -> tuple[int, int, int]:
    return (
        model.count_params(),
        _size(model.trainable_weights),
        _size(model.non_trainable_weights),
    )


def our_shape(shape) -> tuple:
    """Ours as Keras prints it: the batch axis and named dynamic axes are None."""
    assert shape[0] == "batch", shape
    return tuple(d if isinstance(d, int) else None for d in shape)


# The arguments compared between our layers and Keras's get_config(), where a layer has them.
CONFIG_KEYS = (
    "units", "filters", "kernel_size", "strides", "padding", "dilation_rate", "groups",
    "depth_multiplier", "activation", "recurrent_activation", "use_bias", "pool_size",
    "data_format", "keepdims", "rate", "axis", "epsilon", "momentum", "center", "scale",
    "max_value", "negative_slope", "threshold", "input_dim", "output_dim", "n",
    "return_sequences", "return_state", "go_backwards", "unit_forget_bias",
)  # fmt: skip


def plain(value):
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    return value


def config_items(config: dict) -> tuple:
    config = dict(config)
    if "pool_size" in config and config.get("strides") is None:
        config["strides"] = config["pool_size"]  # Keras's get_config spells the default out
    items = tuple((k, plain(config[k])) for k in CONFIG_KEYS if k in config)
    inner = config.get("layer")  # a wrapper's layer: TimeDistributed(Dense(...))
    if isinstance(inner, Layer):
        items += (("layer", inner.keras_class(), config_items(inner.config)),)
    elif isinstance(inner, dict):
        items += (("layer", inner["class_name"], config_items(inner["config"])),)
    return items


def our_calls(graph) -> list[tuple[int, str, tuple, tuple]]:
    """(depth, class, output shapes, arguments) for every node, in source order."""
    depth: dict[int, int] = {}
    calls = []
    for node in graph.nodes:
        d = 1 + max((depth.get(id(v.producer), 0) for v in node.inputs), default=0)
        depth[id(node)] = d
        shapes = tuple(our_shape(v.type.shape) for v in node.outputs)
        calls.append((d, node.layer.keras_class(), shapes, config_items(node.layer.config)))
    return calls


def keras_calls(model) -> list[tuple[int, str, tuple, tuple]]:
    """(depth, class, output shapes, arguments) for every layer call from the inputs to the outputs,
    in no particular order. The InputLayers are depth 0 and not listed."""
    depth: dict[int, int] = {}
    calls = []

    def visit(tensor) -> int:
        history = tensor._keras_history
        node = history.operation._inbound_nodes[history.node_index]
        if id(node) in depth:
            return depth[id(node)]
        if isinstance(node.operation, layers.InputLayer):
            depth[id(node)] = 0
            return 0
        d = 1 + max((visit(t) for t in node.input_tensors), default=0)
        depth[id(node)] = d
        shapes = tuple(tuple(t.shape) for t in node.output_tensors)
        layer = node.operation
        calls.append((d, type(layer).__name__, shapes, config_items(layer.get_config())))
        return d

    for out in model.outputs:
        visit(out)
    return calls


def keras_layers(model) -> list[tuple[str, int, int]]:
    return [
        (type(layer).__name__, layer.count_params(), _size(layer.trainable_weights))
        for layer in model.layers
        if not isinstance(layer, layers.InputLayer)
    ]


def our_layers(graph) -> list[tuple[str, int, int]]:
    return [(la.keras_class(), la.param_count, la.trainable_count) for la in graph.layers]


def is_sequential(model) -> bool:
    return isinstance(model, keras.Sequential)


# ---------------------------------------------------------------- the tests


def test_every_example_has_a_keras_twin():
    assert sorted(p.stem for p in EXAMPLES.glob("*.kdl")) == sorted(KERAS_TWINS)


def test_ktrans_check_accepts_every_example(capsys):
    paths = sorted(str(p) for p in EXAMPLES.glob("*.kdl"))
    assert main(["check", *paths]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(paths)
    assert all(": ok, " in line for line in out), out


@pytest.mark.parametrize("name", NAMES)
def test_param_counts_match_keras(name):
    _, graph = kdl(name)
    ours = (graph.param_count, graph.trainable_count, graph.non_trainable_count)
    assert ours == keras_counts(twin(name))


@pytest.mark.parametrize("name", NAMES)
def test_layers_match_keras(name):
    """Each distinct layer: class, parameters, trainable parameters."""
    _, graph = kdl(name)
    model = twin(name)
    ours, theirs = our_layers(graph), keras_layers(model)
    if not is_sequential(model):
        ours, theirs = sorted(ours), sorted(theirs)  # see the module docstring
    assert ours == theirs


@pytest.mark.parametrize("name", NAMES)
def test_layer_calls_match_keras(name):
    """Each call of a layer: class, output shapes and the main arguments (and depth, for
    functional models)."""
    _, graph = kdl(name)
    model = twin(name)
    ours, theirs = our_calls(graph), keras_calls(model)
    if is_sequential(model):
        # keras.Sequential lists its layers in order: so must we.
        ours = [c[1:] for c in ours]
        theirs = [
            (type(layer).__name__, (tuple(layer.output.shape),), config_items(layer.get_config()))
            for layer in model.layers
            if not isinstance(layer, layers.InputLayer)
        ]
    else:
        ours, theirs = sorted(ours, key=repr), sorted(theirs, key=repr)
    assert ours == theirs


@pytest.mark.parametrize("name", NAMES)
def test_summary_prints_the_keras_counts(name, capsys):
    total, trainable, non_trainable = keras_counts(twin(name))
    assert main(["summary", str(EXAMPLES / f"{name}.kdl")]) == 0
    out = capsys.readouterr().out
    printed = {
        kind: int(n.replace(",", ""))
        for kind, n in re.findall(r"(Total|Non-trainable|Trainable) params: ([\d,]+)", out)
    }
    assert printed == {"Total": total, "Trainable": trainable, "Non-trainable": non_trainable}
    for n in (total, trainable, non_trainable):
        assert f"{n:,}" in out


@pytest.mark.parametrize("name", sorted(FIT_SETTINGS))
def test_train_blocks_say_what_the_keras_scripts_do(name):
    program, graph = kdl(name)
    trains = [t for t in program.trains if t.model == graph.name]
    assert len(trains) == 1
    items = {k.name: k.value for k in trains[0].items}
    for key, want in FIT_SETTINGS[name].items():
        assert isinstance(items[key], ast.Literal), key
        assert items[key].value == want, key
