"""What the layer tables leave out: 'same' average pooling with uneven pads of two or
more cells (TensorFlow's rule, as the ONNX target computes it; Keras's torch backend
differs there, so a numpy reference is the oracle), for static and dynamic lengths; and
the noise layers, which compute nothing at inference."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.torch.harness import compare_torch, load_graph, run_torch, torch_model

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.mark.parametrize(("pool", "stride", "n"), [(4, 1, 7), (3, 2, 8), (5, 3, 10), (3, 2, 9)])
@pytest.mark.parametrize("length", ["static", "dynamic"])
def test_average_pooling_excludes_uneven_pads(tmp_path, pool, stride, n, length):
    from tests.emit.test_lower_pooling import _tf_average_pool_1d

    dim = n if length == "static" else "?"
    kdl = (
        f"model M {{\n input x: float32[{dim}, 2]\n"
        f" AveragePooling1D({pool}, strides={stride}, padding=same)\n}}\n"
    )
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    x = np.random.default_rng(0).normal(size=(3, n, 2)).astype(np.float32)
    (ours,) = run_torch(net, graph, {"x": x})
    np.testing.assert_allclose(ours, _tf_average_pool_1d(x, pool, stride), rtol=1e-5, atol=1e-6)


NOISE = [
    ("SpatialDropout1D(0.3)", lambda t: layers.SpatialDropout1D(0.3)(t), (5, 4), None),
    ("SpatialDropout2D(0.3)", lambda t: layers.SpatialDropout2D(0.3)(t), (5, 4, 3), None),
    (
        "Conv2D(3, 1)\n SpatialDropout2D(0.3)",
        lambda t: layers.SpatialDropout2D(0.3, data_format="channels_first")(
            layers.Conv2D(3, 1, data_format="channels_first")(t)
        ),
        (2, 4, 5),
        "channels_first",
    ),
    ("GaussianNoise(0.5)", lambda t: layers.GaussianNoise(0.5)(t), (6,), None),
    (
        "Dropout(0.5, noise_shape=[1, 1, 4])",
        lambda t: layers.Dropout(0.5, noise_shape=(1, 1, 4))(t),
        (3, 4),
        None,
    ),
]


@pytest.mark.parametrize(("body", "make", "shape", "fmt"), NOISE, ids=[c[0] for c in NOISE])
def test_noise_layers_match_keras_at_inference(tmp_path, body, make, shape, fmt):
    fmt = fmt or "channels_last"
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {body}\n}}\n"
    inp = keras.Input(shape)
    model = keras.Model(inp, make(inp))
    x = np.random.default_rng(2).normal(size=(4, *shape)).astype(np.float32)
    compare_torch(kdl, model, {"x": x}, tmp_path)


def test_spatial_dropout_1d_drops_whole_channels(tmp_path):
    program, graph, src = load_graph(
        "model M {\n input x: float32[6, 40]\n SpatialDropout1D(0.5)\n}\n", tmp_path
    )
    net, _ = torch_model(graph, program, str(src))
    net.train()
    y = net(torch.ones(16, 6, 40))
    dropped = y == 0
    assert (dropped == dropped[:, :1, :]).all()  # the same for every step
    assert 0.3 < dropped.float().mean().item() < 0.7
