"""Merge layers: ONNX equals Keras 3. Element-wise merges (incl. Keras's rank
broadcasting), Concatenate on any axis, Dot with axes and normalize; merges of tensors a
channels_last CNN stores NCHW keep that layout (no Transposes)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(5)


def rand(*shape):
    return RNG.normal(size=(4, *shape)).astype(np.float32)


def dims(shape) -> str:
    return ", ".join(str(d) for d in shape)


def merge_model(tmp_path, kdl_call, keras_layer, shapes, runtime="ort"):
    names = [f"x{i}" for i in range(len(shapes))]
    kdl = (
        "model M {\n"
        + "".join(f" input {n}: float32[{dims(s)}]\n" for n, s in zip(names, shapes))
        + f" output y = {kdl_call}({', '.join(names)})\n}}\n"
    )
    ins = [keras.Input(s) for s in shapes]
    km = keras.Model(ins, keras_layer(ins))
    compare(kdl, km, {n: rand(*s) for n, s in zip(names, shapes)}, tmp_path, runtime=runtime)


ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


@pytest.mark.parametrize("cls", ELEMENTWISE)
def test_two_inputs(tmp_path, cls):
    merge_model(tmp_path, f"{cls}()", getattr(layers, cls)(), [(3, 5), (3, 5)])


@pytest.mark.parametrize("cls", ["Add", "Multiply", "Average", "Maximum", "Minimum"])
def test_three_inputs_broadcast(tmp_path, cls):
    merge_model(tmp_path, f"{cls}()", getattr(layers, cls)(), [(3, 5), (1, 5), (3, 1)])


@pytest.mark.parametrize("cls", ["Add", "Average", "Subtract"])
def test_different_ranks(tmp_path, cls):
    """Keras adds the missing axes after batch: (b, 5) with (b, 3, 5) is (b, 1, 5)."""
    merge_model(tmp_path, f"{cls}()", getattr(layers, cls)(), [(3, 5), (5,)])


def test_reference_evaluator(tmp_path):
    merge_model(tmp_path, "Average()", layers.Average(), [(3, 5), (3, 5), (3, 5)], "reference")


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate(tmp_path, axis):
    shapes = [(3, 4), (3, 4), (3, 4)]
    shapes[1] = tuple(d + 2 if i + 1 == axis % 3 else d for i, d in enumerate(shapes[1]))
    merge_model(tmp_path, f"Concatenate(axis={axis})", layers.Concatenate(axis=axis), shapes)


DOTS = [
    (1, False, [(5,), (5,)]),
    (-1, True, [(5,), (5,)]),
    ([2, 1], False, [(3, 4), (4, 6)]),
    ([1, 2], True, [(4, 3), (6, 4)]),
    (2, False, [(3, 4), (5, 4)]),
    ([1, 1], False, [(4, 3), (4,)]),
    ([3, 2], True, [(2, 3, 4), (5, 4, 2)]),
]


@pytest.mark.parametrize(("axes", "normalize", "shapes"), DOTS, ids=[str(d) for d in DOTS])
def test_dot(tmp_path, axes, normalize, shapes):
    kdl_axes = axes if isinstance(axes, int) else f"[{axes[0]}, {axes[1]}]"
    k_axes = axes if isinstance(axes, int) else tuple(axes)
    merge_model(
        tmp_path,
        f"Dot(axes={kdl_axes}, normalize={str(normalize).lower()})",
        layers.Dot(axes=k_axes, normalize=normalize),
        shapes,
    )


def test_dot_reference_evaluator(tmp_path):
    merge_model(
        tmp_path, "Dot(axes=[2, 2])", layers.Dot(axes=(2, 2)), [(3, 4), (5, 4)], "reference"
    )


def test_cnn_merges_keep_the_stored_layout(tmp_path):
    """A residual Add, a Multiply and a channel Concatenate of two conv branches run on
    the NCHW tensors: one Transpose in, one out."""
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    kdl = (
        "model M {\n input x: float32[6, 6, 3]\n a = Conv2D(4, 3, padding=same)(x)\n"
        " b = Conv2D(4, 1)(x)\n s = Add()(a, b)\n m = Multiply()(s, a)\n"
        " output y = Concatenate(axis=-1)(s, m, b)\n}\n"
    )
    src = tmp_path / "count.kdl"
    src.write_text(kdl)
    _, graphs = load(str(src))
    ops = [n.op_type for n in build_model(next(iter(graphs.values()))).graph.node]
    assert ops.count("Transpose") == 2, ops
    inp = keras.Input((6, 6, 3))
    a = layers.Conv2D(4, 3, padding="same")(inp)
    b = layers.Conv2D(4, 1)(inp)
    s = layers.Add()([a, b])
    m = layers.Multiply()([s, a])
    y = layers.Concatenate(axis=-1)([s, m, b])
    compare(kdl, keras.Model(inp, y), {"x": rand(6, 6, 3)}, tmp_path)


def test_mixed_layouts(tmp_path):
    """A conv output (stored NCHW) merged with a plain input (stored as declared)."""
    kdl = (
        "model M {\n input x: float32[5, 5, 2]\n input z: float32[5, 5, 3]\n"
        " a = Conv2D(3, 3, padding=same)(x)\n s = Add()(a, z)\n"
        " output y = Concatenate()(s, z)\n}\n"
    )
    x, z = keras.Input((5, 5, 2)), keras.Input((5, 5, 3))
    a = layers.Conv2D(3, 3, padding="same")(x)
    y = layers.Concatenate()([layers.Add()([a, z]), z])
    compare(kdl, keras.Model([x, z], y), {"x": rand(5, 5, 2), "z": rand(5, 5, 3)}, tmp_path)
