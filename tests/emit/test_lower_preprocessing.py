# ruff: noqa: E501  (one table row per line)
"""Preprocessing layers and keras.applications' own layers: ONNX equals Keras 3.
Rescaling and Normalization on every input dtype (cast to float32 first), with constants
broadcast as Keras broadcasts them, also on a tensor stored channels-first after a
convolution; Normalization with adapted statistics (weights) and with given ones;
LayerScale and CustomScaleLayer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(11)


def rand(shape, dtype="float32"):
    if dtype == "bool":
        return RNG.integers(0, 2, size=(4, *shape)).astype(bool)
    if dtype in ("uint8", "int8", "int32", "int64"):
        lo = 0 if dtype == "uint8" else -100
        return RNG.integers(lo, 256 if dtype == "uint8" else 100, size=(4, *shape)).astype(dtype)
    return (RNG.normal(size=(4, *shape)) * 3).astype(dtype)


def run(tmp_path, kdl_body, keras_fn, shape, dtype="float32", runtime="ort", randomize=True):
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M {{\n input x: {dtype}[{dims}]\n {kdl_body}\n}}\n"
    inp = keras.Input(shape, dtype=dtype)
    km = keras.Model(inp, keras_fn(inp))
    compare(kdl, km, {"x": rand(shape, dtype)}, tmp_path, runtime=runtime, randomize=randomize)


def adapted(shape, **kwargs):
    """A Normalization adapted to random data of `shape` (Keras computes its weights)."""
    layer = layers.Normalization(**kwargs)
    layer.adapt((RNG.normal(size=(16, *shape)) * 4 + 2).astype("float32"))
    return layer


RESCALING = [
    ("Rescaling(1 / 255)", (1 / 255,), {}, (5, 5, 3)),
    ("Rescaling(1 / 127.5, offset=-1)", (1 / 127.5,), {"offset": -1.0}, (5, 5, 3)),
    ("Rescaling([0.5, 2.0, -1.0], offset=[1.0, 0.0, 3.0])", ([0.5, 2.0, -1.0],), {"offset": [1.0, 0.0, 3.0]}, (4, 3)),
    ("Rescaling(2.0, offset=[[1.0], [-1.0]])", (2.0,), {"offset": [[1.0], [-1.0]]}, (2, 5)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kdl", "args", "kwargs", "shape"), RESCALING, ids=[r[0] for r in RESCALING]
)
def test_rescaling(tmp_path, kdl, args, kwargs, shape):
    run(tmp_path, kdl, layers.Rescaling(*args, **kwargs), shape)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "int64", "bool", "float64", "float16"])
def test_rescaling_casts_the_input(tmp_path, dtype):
    run(
        tmp_path,
        "Rescaling(1 / 255, offset=0.5)",
        layers.Rescaling(1 / 255, offset=0.5),
        (3, 4),
        dtype,
    )


def test_rescaling_reference_evaluator(tmp_path):
    run(
        tmp_path,
        "Rescaling([0.5, 2.0, -1.0], offset=-1)",
        layers.Rescaling([0.5, 2.0, -1.0], offset=-1.0),
        (2, 3),
        "uint8",
        runtime="reference",
    )


def test_rescaling_per_channel_after_conv_stays_nchw(tmp_path):
    """A per-channel scale on a conv output: the constant is laid out as the NCHW tensor
    is stored, with no extra Transposes."""
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    body = "Conv2D(3, 3)\n Rescaling([0.5, 2.0, -1.0], offset=[[1.0, 0.0, 2.0]])\n Conv2D(2, 1)"
    src = tmp_path / "ops.kdl"
    src.write_text(f"model M {{\n input x: float32[6, 5, 2]\n {body}\n}}\n")
    _, graphs = load(str(src))
    ops = [n.op_type for n in build_model(next(iter(graphs.values()))).graph.node]
    assert ops.count("Transpose") == 2, ops

    def twin(t):
        y = layers.Conv2D(3, 3)(t)
        y = layers.Rescaling([0.5, 2.0, -1.0], offset=[[1.0, 0.0, 2.0]])(y)
        return layers.Conv2D(2, 1)(y)

    run(tmp_path, body, twin, (6, 5, 2))


NORMALIZATION = [
    ("Normalization()", {}, (5, 5, 3)),
    ("Normalization(axis=none)", {"axis": None}, (4, 3)),
    ("Normalization(axis=[1, -1])", {"axis": [1, -1]}, (4, 2, 3)),
    ("Normalization(axis=1, invert=true)", {"axis": 1, "invert": True}, (4, 3)),
]


@pytest.mark.parametrize(
    ("kdl", "kwargs", "shape"), NORMALIZATION, ids=[n[0] for n in NORMALIZATION]
)
def test_normalization_adapted(tmp_path, kdl, kwargs, shape):
    run(tmp_path, kdl, adapted(shape, **kwargs), shape, randomize=False)


GIVEN = [
    (
        "mean=[0.485, 0.456, 0.406], variance=[0.052, 0.05, 0.051]",
        {"mean": [0.485, 0.456, 0.406], "variance": [0.052, 0.05, 0.051]},
        (3, 3),
    ),
    ("mean=3.0, variance=2.0, invert=true", {"mean": 3.0, "variance": 2.0, "invert": True}, (4, 3)),
    (
        "axis=[1, 2], mean=[1.0, 2.0], variance=[1.0, 4.0]",
        {"axis": [1, 2], "mean": [1.0, 2.0], "variance": [1.0, 4.0]},
        (3, 2),
    ),
    (
        "axis=[1, 2], mean=[[1.0], [2.0], [3.0]], variance=[[1.0], [4.0], [0.0]]",
        {"axis": [1, 2], "mean": [[1.0], [2.0], [3.0]], "variance": [[1.0], [4.0], [0.0]]},
        (3, 2),
    ),
]


@pytest.mark.parametrize(("kdl", "kwargs", "shape"), GIVEN, ids=[g[0] for g in GIVEN])
def test_normalization_given_statistics(tmp_path, kdl, kwargs, shape):
    run(tmp_path, f"Normalization({kdl})", layers.Normalization(**kwargs), shape)


@pytest.mark.parametrize("dtype", ["uint8", "int64"])
def test_normalization_casts_the_input(tmp_path, dtype):
    kw = {"mean": [100.0, 120.0, 90.0], "variance": [3000.0, 2500.0, 2000.0]}
    run(
        tmp_path,
        "Normalization(mean=[100.0, 120.0, 90.0], variance=[3000.0, 2500.0, 2000.0])",
        layers.Normalization(**kw),
        (2, 3),
        dtype,
    )


def test_normalization_after_conv_and_reference_evaluator(tmp_path):
    def twin(t):
        y = layers.Conv2D(3, 3)(t)
        return adapted((4, 3, 3))(y)

    # the twin's Normalization adapts on its own data: build it first, then copy
    run(
        tmp_path,
        "Conv2D(3, 3)\n Normalization()",
        twin,
        (6, 5, 2),
        runtime="reference",
        randomize=False,
    )


def test_layer_scale_and_custom_scale_layer(tmp_path):
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    body = (
        "y = x |> Conv2D(4, 3)\n s = y |> LayerScale(0.5, 4)\n output CustomScaleLayer(0.17)(y, s)"
    )

    def twin(t):
        y = layers.Conv2D(4, 3)(t)
        return CustomScaleLayer(0.17)([y, LayerScale(0.5, 4)(y)])

    run(tmp_path, body, twin, (6, 5, 2))
    run(tmp_path, "LayerScale(1e-6, 3)", LayerScale(1e-6, 3), (4, 3), runtime="reference")


def test_adapted_normalization_weights_load_from_keras_h5(tmp_path):
    """`build --weights model.weights.h5`: Normalization's integer count is a weight."""
    from transpiler.emit.onnx import build_model
    from transpiler.emit.onnx.weights import load_weights
    from transpiler.graph import load
    from transpiler.runtime.session import create_session

    inp = keras.Input((4, 3))
    km = keras.Model(inp, layers.Dense(2)(adapted((4, 3))(inp)))
    path = tmp_path / "m.weights.h5"
    km.save_weights(str(path))
    src = tmp_path / "m.kdl"
    src.write_text("model M {\n input x: float32[4, 3]\n Normalization()\n Dense(2)\n}\n")
    _, graphs = load(str(src))
    graph = graphs["M"]
    weights = load_weights(path, graph)
    assert set(weights["normalization"]) == {"mean", "variance", "count"}
    np.testing.assert_array_equal(weights["normalization"]["mean"], km.layers[1].weights[0])
    x = rand((4, 3))
    (ours,) = create_session(build_model(graph, weights=weights)).run(None, {"x": x})
    np.testing.assert_allclose(ours, km.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
