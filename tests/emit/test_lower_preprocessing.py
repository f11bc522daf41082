# ruff: noqa: E501  (one table row per line)
"""Preprocessing layers: ONNX equals Keras 3. Rescaling on every input dtype (cast to
float32 first), with scales and offsets broadcast as numpy broadcasts, also on a tensor
stored channels-first after a convolution."""

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


def run(tmp_path, kdl_body, keras_fn, shape, dtype="float32", runtime="ort"):
    dims = ", ".join(str(d) for d in shape)
    kdl = f"model M {{\n input x: {dtype}[{dims}]\n {kdl_body}\n}}\n"
    inp = keras.Input(shape, dtype=dtype)
    km = keras.Model(inp, keras_fn(inp))
    compare(kdl, km, {"x": rand(shape, dtype)}, tmp_path, runtime=runtime)


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
