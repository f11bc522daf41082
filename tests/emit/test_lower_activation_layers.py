"""Activation layers: ONNX equals Keras 3. ReLU with every combination of max_value,
negative_slope and threshold (Keras's exact formula), LeakyReLU, ELU, Softmax over one or
several axes, PReLU with shared axes; after a channels_last convolution they all run on
the NCHW tensor (no extra Transposes)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(13)


def rand(*shape):
    return (RNG.normal(size=(4, *shape)) * 3).astype(np.float32)


def run(tmp_path, kdl_body, keras_fn, shape, runtime="ort", fmt="channels_last"):
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M(data_format={fmt}) {{\n input x: float32[{dims}]\n {kdl_body}\n}}\n"
    inp = keras.Input(shape)
    km = keras.Model(inp, keras_fn(inp))
    compare(kdl, km, {"x": rand(*shape)}, tmp_path, runtime=runtime)


RELU = [
    {},
    {"max_value": 6.0},
    {"max_value": 2.5},
    {"negative_slope": 0.1},
    {"threshold": 0.5},
    {"negative_slope": 0.2, "max_value": 3.0},
    {"negative_slope": 0.3, "threshold": 1.0},
    {"threshold": 0.5, "max_value": 6.0},
    {"negative_slope": 0.1, "threshold": 0.5, "max_value": 2.0},
]


def kdl_args(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("kwargs", RELU, ids=[kdl_args(k) or "plain" for k in RELU])
def test_relu(tmp_path, kwargs):
    run(tmp_path, f"ReLU({kdl_args(kwargs)})", layers.ReLU(**kwargs), (3, 5))


def test_relu_reference_evaluator(tmp_path):
    kwargs = {"negative_slope": 0.1, "threshold": 0.5, "max_value": 2.0}
    run(tmp_path, f"ReLU({kdl_args(kwargs)})", layers.ReLU(**kwargs), (3, 5), "reference")


@pytest.mark.parametrize("slope", [0.3, 0.05, 0.0])
def test_leaky_relu(tmp_path, slope):
    run(
        tmp_path, f"LeakyReLU(negative_slope={slope})", layers.LeakyReLU(negative_slope=slope), (6,)
    )


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_elu(tmp_path, alpha):
    run(tmp_path, f"ELU(alpha={alpha})", layers.ELU(alpha=alpha), (2, 5))


SOFTMAX = [(-1, (3, 5)), (1, (3, 5)), ([1, 2], (3, 5)), ([1, 3], (2, 3, 4)), ([-1], (4,))]


@pytest.mark.parametrize(("axis", "shape"), SOFTMAX, ids=[str(s[0]) for s in SOFTMAX])
def test_softmax(tmp_path, axis, shape):
    k_axis = tuple(axis) if isinstance(axis, list) else axis
    run(tmp_path, f"Softmax(axis={axis})", layers.Softmax(axis=k_axis), shape)


def test_softmax_reference_evaluator(tmp_path):
    run(tmp_path, "Softmax(axis=[1, 2])", layers.Softmax(axis=(1, 2)), (3, 4), "reference")


PRELU = [(None, (3, 5)), ([1], (3, 5)), ([1, 2], (4, 3, 2)), ([2], (4, 3, 2))]


@pytest.mark.parametrize(("shared", "shape"), PRELU, ids=[str(p[0]) for p in PRELU])
def test_prelu(tmp_path, shared, shape):
    args = "" if shared is None else f"shared_axes={shared}"
    run(tmp_path, f"PReLU({args})", layers.PReLU(shared_axes=shared), shape)


def test_prelu_reference_evaluator(tmp_path):
    run(tmp_path, "PReLU(shared_axes=[1])", layers.PReLU(shared_axes=[1]), (3, 5), "reference")


def test_after_conv_stay_nchw(tmp_path):
    """PReLU (alpha per pixel and channel), ReLU, ELU, LeakyReLU and a channel Softmax on
    a conv output: one Transpose in, one out."""
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    body = (
        "Conv2D(4, 3)\n PReLU(shared_axes=[1])\n ReLU(max_value=3.0, negative_slope=0.1)\n"
        " ELU(alpha=0.5)\n LeakyReLU()\n Softmax()"
    )
    src = tmp_path / "ops.kdl"
    src.write_text(f"model M {{\n input x: float32[6, 5, 2]\n {body}\n}}\n")
    _, graphs = load(str(src))
    ops = [n.op_type for n in build_model(next(iter(graphs.values()))).graph.node]
    assert ops.count("Transpose") == 2, ops

    def twin(t):
        y = layers.PReLU(shared_axes=[1])(layers.Conv2D(4, 3)(t))
        y = layers.ReLU(max_value=3.0, negative_slope=0.1)(y)
        return layers.Softmax()(layers.LeakyReLU()(layers.ELU(alpha=0.5)(y)))

    run(tmp_path, body, twin, (6, 5, 2))


def test_prelu_channels_first(tmp_path):
    run(
        tmp_path,
        "Conv2D(3, 3)\n PReLU(shared_axes=[2, 3])",
        lambda t: layers.PReLU(shared_axes=[2, 3])(
            layers.Conv2D(3, 3, data_format="channels_first")(t)
        ),
        (2, 6, 5),
        fmt="channels_first",
    )
