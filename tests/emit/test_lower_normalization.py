"""Normalization layers: ONNX equals Keras 3 (inference: BatchNormalization with its
moving statistics). BatchNormalization on the channel axis of a channels_last CNN runs as
ONNX BatchNormalization on the NCHW tensor; other axes fold into Mul/Add. LayerNormalization
uses ONNX LayerNormalization when its axes are stored last; GroupNormalization is
decomposed (Reshape + ReduceMean) on the stored layout."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(7)


def rand(*shape):
    return (RNG.normal(size=(4, *shape)) * 2 + 0.5).astype(np.float32)


def run(tmp_path, kdl_body, keras_fn, shape, fmt="channels_last", runtime="ort"):
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {kdl_body}\n}}\n"
    inp = keras.Input(tuple(None if d == "?" else d for d in shape))
    km = keras.Model(inp, keras_fn(inp))
    x = rand(*(5 if d == "?" else d for d in shape))
    compare(kdl, km, {"x": x}, tmp_path, runtime=runtime)


def ops_of(tmp_path, kdl_body, shape) -> list[str]:
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    dims = ", ".join(str(d) for d in shape)
    src = tmp_path / "ops.kdl"
    src.write_text(f"model M {{\n input x: float32[{dims}]\n {kdl_body}\n}}\n")
    _, graphs = load(str(src))
    return [n.op_type for n in build_model(next(iter(graphs.values()))).graph.node]


BN = [
    ("BatchNormalization()", {}, (6,)),
    ("BatchNormalization(epsilon=0.01)", {"epsilon": 0.01}, (5, 6)),
    ("BatchNormalization(axis=1, center=false)", {"axis": 1, "center": False}, (5, 6)),
    ("BatchNormalization(axis=-2, scale=false)", {"axis": -2, "scale": False}, (4, 5, 3)),
    ("BatchNormalization(center=false, scale=false)", {"center": False, "scale": False}, (4, 3)),
]


@pytest.mark.parametrize(("kdl", "kwargs", "shape"), BN, ids=[b[0] for b in BN])
def test_batch_normalization(tmp_path, kdl, kwargs, shape):
    run(tmp_path, kdl, layers.BatchNormalization(**kwargs), shape)


@pytest.mark.parametrize("center", [True, False])
def test_batch_normalization_after_conv_is_onnx_batchnorm(tmp_path, center):
    body = f"Conv2D(4, 3)\n BatchNormalization(center={str(center).lower()})\n ReLU()"
    ops = ops_of(tmp_path, body, (7, 7, 3))
    assert "BatchNormalization" in ops and ops.count("Transpose") == 2, ops
    run(
        tmp_path,
        body,
        lambda t: layers.ReLU()(layers.BatchNormalization(center=center)(layers.Conv2D(4, 3)(t))),
        (7, 7, 3),
    )


def test_batch_normalization_channels_first(tmp_path):
    run(
        tmp_path,
        "Conv2D(4, 3)\n BatchNormalization(axis=1)",
        lambda t: layers.BatchNormalization(axis=1)(
            layers.Conv2D(4, 3, data_format="channels_first")(t)
        ),
        (3, 7, 6),
        fmt="channels_first",
    )


def test_batch_normalization_on_a_time_major_sequence(tmp_path):
    run(
        tmp_path,
        "LSTM(4, return_sequences=true)\n BatchNormalization()",
        lambda t: layers.BatchNormalization()(layers.LSTM(4, return_sequences=True)(t)),
        (5, 3),
    )


def test_batch_normalization_reference_evaluator(tmp_path):
    run(
        tmp_path,
        "Conv2D(4, 3)\n BatchNormalization()",
        lambda t: layers.BatchNormalization()(layers.Conv2D(4, 3)(t)),
        (6, 6, 2),
        runtime="reference",
    )


LN = [
    ("LayerNormalization()", {}, (6,)),
    ("LayerNormalization(epsilon=0.1, center=false)", {"epsilon": 0.1, "center": False}, (3, 6)),
    ("LayerNormalization(axis=[1, 2])", {"axis": [1, 2]}, (3, 6)),
    (
        "LayerNormalization(axis=[-2, -1], scale=false)",
        {"axis": [-2, -1], "scale": False},
        (2, 3, 4),
    ),
    ("LayerNormalization(axis=[1, 3])", {"axis": [1, 3]}, (3, 2, 4)),
    ("LayerNormalization(rms_scaling=true)", {"rms_scaling": True}, (3, 6)),
    (
        "LayerNormalization(axis=[1, 2], rms_scaling=true)",
        {"axis": [1, 2], "rms_scaling": True},
        (3, 6),
    ),
    ("LayerNormalization()", {}, ("?", 6)),
]


@pytest.mark.parametrize(("kdl", "kwargs", "shape"), LN, ids=[f"{b[0]}-{b[2]}" for b in LN])
def test_layer_normalization(tmp_path, kdl, kwargs, shape):
    run(tmp_path, kdl, layers.LayerNormalization(**kwargs), shape)


def test_layer_normalization_middle_axis(tmp_path):
    """axis=1 of (batch, 3, 6). Keras's torch backend fails on it (it hands a leading
    axis to torch's layer_norm, which normalizes trailing axes), so the twin normalizes the
    last axis between two Permutes: the same math and the same gamma / beta."""

    def twin(t):
        y = layers.LayerNormalization(axis=-1, epsilon=0.01)(layers.Permute((2, 1))(t))
        return layers.Permute((2, 1))(y)

    run(tmp_path, "LayerNormalization(axis=1, epsilon=0.01)", twin, (3, 6))


def test_layer_normalization_trailing_axes_use_the_onnx_op(tmp_path):
    assert "LayerNormalization" in ops_of(tmp_path, "LayerNormalization(axis=[1, 2])", (3, 6))
    assert "LayerNormalization" not in ops_of(tmp_path, "LayerNormalization(axis=1)", (3, 6))


def test_layer_normalization_on_nchw_storage(tmp_path):
    """Normalizing the channels of a conv output: a decomposition on the NCHW tensor, no
    extra Transposes."""
    body = "Conv2D(4, 3)\n LayerNormalization()"
    assert ops_of(tmp_path, body, (6, 6, 2)).count("Transpose") == 2
    run(
        tmp_path,
        body,
        lambda t: layers.LayerNormalization()(layers.Conv2D(4, 3)(t)),
        (6, 6, 2),
    )


def test_layer_normalization_reference_evaluator(tmp_path):
    run(tmp_path, "LayerNormalization()", layers.LayerNormalization(), (3, 6), runtime="reference")


GN = [
    ("GroupNormalization(groups=2)", {"groups": 2}, (6,)),
    ("GroupNormalization(groups=3)", {"groups": 3}, (5, 6)),
    ("GroupNormalization(groups=-1, center=false)", {"groups": -1, "center": False}, (5, 4)),
    ("GroupNormalization(groups=1, scale=false)", {"groups": 1, "scale": False}, (3, 4, 4)),
    ("GroupNormalization(groups=2, axis=1)", {"groups": 2, "axis": 1}, (4, 5, 3)),
    (
        "GroupNormalization(groups=2, axis=-2, epsilon=0.1)",
        {"groups": 2, "axis": -2, "epsilon": 0.1},
        (3, 4, 5),
    ),
    ("GroupNormalization(groups=2)", {"groups": 2}, ("?", 4)),
]


@pytest.mark.parametrize(("kdl", "kwargs", "shape"), GN, ids=[f"{b[0]}-{b[2]}" for b in GN])
def test_group_normalization(tmp_path, kdl, kwargs, shape):
    run(tmp_path, kdl, layers.GroupNormalization(**kwargs), shape)


def test_group_normalization_after_conv(tmp_path):
    body = "Conv2D(6, 3)\n GroupNormalization(groups=3)"
    assert ops_of(tmp_path, body, (6, 6, 2)).count("Transpose") == 2
    run(
        tmp_path,
        body,
        lambda t: layers.GroupNormalization(groups=3)(layers.Conv2D(6, 3)(t)),
        (6, 6, 2),
        runtime="reference",
    )


def test_group_normalization_channels_first(tmp_path):
    run(
        tmp_path,
        "Conv2D(4, 3)\n GroupNormalization(groups=2, axis=1)",
        lambda t: layers.GroupNormalization(groups=2, axis=1)(
            layers.Conv2D(4, 3, data_format="channels_first")(t)
        ),
        (2, 6, 5),
        fmt="channels_first",
    )
