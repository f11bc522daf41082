"""module.train(): BatchNormalization normalizes with the batch's statistics and updates
its moving ones exactly as Keras's layer(x, training=True) does (momentum, epsilon, the
biased variance, a frozen layer, a mask); Dropout, SpatialDropout and GaussianNoise are
active in training only; trainable=false layers do not train."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.torch.harness import assert_close, load_graph, torch_model

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(21)

# (kdl body, Keras layers (a function of the input), input shape, data_format)
BN_TRAINING = [
    ("BatchNormalization()", lambda t: layers.BatchNormalization()(t), (6,), None),
    (
        "BatchNormalization(momentum=0.9, epsilon=0.01)",
        lambda t: layers.BatchNormalization(momentum=0.9, epsilon=0.01)(t),
        (5, 6),
        None,
    ),
    (
        "BatchNormalization(axis=1, center=false)",
        lambda t: layers.BatchNormalization(axis=1, center=False)(t),
        (5, 6),
        None,
    ),
    (
        "Conv2D(4, 3)\n BatchNormalization(scale=false)",
        lambda t: layers.BatchNormalization(scale=False)(layers.Conv2D(4, 3)(t)),
        (7, 6, 3),
        None,
    ),
    (
        "Conv2D(4, 3)\n BatchNormalization(axis=1, momentum=0.5)",
        lambda t: layers.BatchNormalization(axis=1, momentum=0.5)(
            layers.Conv2D(4, 3, data_format="channels_first")(t)
        ),
        (3, 7, 6),
        "channels_first",
    ),
    (
        "BatchNormalization(trainable=false)",
        lambda t: layers.BatchNormalization(trainable=False)(t),
        (4, 3),
        None,
    ),
]


def _weights_by_name(graph, model) -> dict[str, np.ndarray]:
    arrays = {}
    for layer in graph.layers:
        for w, v in zip(layer.weights or [], model.get_layer(layer.name).weights):
            arrays[f"{layer.name}/{w.name}"] = np.asarray(keras.ops.convert_to_numpy(v))
    return arrays


@pytest.mark.parametrize(
    ("body", "make", "shape", "fmt"), BN_TRAINING, ids=[c[0] for c in BN_TRAINING]
)
def test_batch_normalization_training_step(tmp_path, body, make, shape, fmt):
    from tests.emit.parity import keras_weights_for, randomize_keras

    fmt = fmt or "channels_last"
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {body}\n}}\n"
    inp = keras.Input(shape)
    model = keras.Model(inp, make(inp))
    randomize_keras(model)
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    before = keras_weights_for(graph, model)
    net.load_keras_weights(before)
    x = (RNG.normal(size=(8, *shape)) * 2 + 0.5).astype(np.float32)
    net.train()
    ours = net(torch.as_tensor(x)).detach().numpy()
    theirs = keras.ops.convert_to_numpy(model(x, training=True))
    assert_close([ours], [np.asarray(theirs)])
    after, expected = net.keras_weights(), keras_weights_for(graph, model)
    for key, value in expected.items():  # Keras's weights after its training call
        np.testing.assert_allclose(after[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    moving = [k for k in expected if "moving" in k]
    moved = [not np.allclose(after[k], before[k]) for k in moving]
    assert moved == [body.endswith("(trainable=false)") is False] * len(moving)


def test_masked_batch_normalization_trains_on_the_unmasked_steps(tmp_path):
    from tests.emit.parity import randomize_keras
    from tests.emit.test_lower_masking import IDS, VOCAB

    kdl = (
        f"model M {{\n input x: int64[6]\n Embedding({VOCAB}, 3, mask_zero=true)\n"
        " BatchNormalization(momentum=0.8)\n}\n"
    )
    inp = keras.Input((6,), dtype="int64")
    embedding = layers.Embedding(VOCAB, 3, mask_zero=True, name="embedding")
    bn = layers.BatchNormalization(momentum=0.8, name="batch_normalization")
    model = keras.Model(inp, bn(embedding(inp)))
    randomize_keras(model)
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    net.load_keras_weights(_weights_by_name(graph, model))
    net.train()
    ours = net(torch.as_tensor(IDS)).detach().numpy()
    theirs = np.asarray(keras.ops.convert_to_numpy(model(IDS, training=True)))
    assert_close([ours], [theirs])
    after = net.keras_weights()
    for key, value in _weights_by_name(graph, model).items():
        np.testing.assert_allclose(after[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def _net(tmp_path, body: str, shape=(4, 4, 8)):
    dims = ", ".join(str(d) for d in shape)
    program, graph, src = load_graph(
        f"model M {{\n input x: float32[{dims}]\n {body}\n}}\n", tmp_path
    )
    net, _ = torch_model(graph, program, str(src))
    return net


@pytest.mark.parametrize(
    "body", ["Dropout(0.5)", "SpatialDropout2D(0.5)", "Conv2D(8, 1)\n SpatialDropout2D(0.5)"]
)
def test_dropout_only_in_training(tmp_path, body):
    net = _net(tmp_path, body)
    x = torch.ones(64, 4, 4, 8)
    net.eval()
    base = net(x)
    torch.manual_seed(0)
    net.train()
    y = net(x)
    dropped = y == 0
    assert 0.35 < dropped.float().mean().item() < 0.65
    assert torch.allclose(y[~dropped], base[~dropped] * 2.0)  # scaled by 1 / (1 - rate)
    if "Spatial" in body:  # whole channels: the same across height and width
        assert (dropped == dropped[:, :1, :1, :]).all()
    net.eval()
    assert torch.equal(net(x), base)


def test_gaussian_noise_only_in_training(tmp_path):
    net = _net(tmp_path, "GaussianNoise(0.5)", (1000,))
    x = torch.zeros(8, 1000)
    net.eval()
    assert torch.equal(net(x), x)
    net.train()
    noise = net(x)
    assert abs(noise.std().item() - 0.5) < 0.02 and abs(noise.mean().item()) < 0.02


def test_frozen_layers_do_not_train(tmp_path):
    net = _net(
        tmp_path,
        "Dense(3, trainable=false)\n BatchNormalization(trainable=false)\n Dense(2)",
        (5,),
    )
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    trained = [n for n, p in net.named_parameters() if p.requires_grad]
    assert frozen == ["dense.weight", "dense.bias", "batch_normalization.gamma",
                      "batch_normalization.beta"]  # fmt: skip
    assert trained == ["dense_1.weight", "dense_1.bias"]
    # a frozen BatchNormalization normalizes with its moving statistics in training too
    net.train()
    x = torch.randn(16, 5)
    stats = net.batch_normalization.moving_mean.clone()
    y_train = net(x)
    net.eval()
    assert torch.allclose(y_train, net(x))
    assert torch.equal(stats, net.batch_normalization.moving_mean)
