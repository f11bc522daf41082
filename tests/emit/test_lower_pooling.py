"""Pooling layers: ONNX equals Keras 3 on the same inputs (both data formats, strides,
'same' padding with asymmetric pads, global pooling with keepdims), and global pooling
keeps a channels_last CNN in its channels-first storage."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.test_lower_conv import op_count, run_layer

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

CF = "channels_first"

# (kdl call, Keras layer factory, input shape without batch, data_format)
CASES = [
    ("MaxPooling1D()", lambda f: layers.MaxPooling1D(data_format=f), (9, 3), None),
    (
        "MaxPooling1D(3, strides=2, padding=same)",
        lambda f: layers.MaxPooling1D(3, strides=2, padding="same", data_format=f),
        (10, 3),
        None,
    ),
    (
        "MaxPooling1D(2, strides=1, padding=same)",
        lambda f: layers.MaxPooling1D(2, strides=1, padding="same", data_format=f),
        (3, 7),
        CF,
    ),
    ("MaxPooling2D(2)", lambda f: layers.MaxPooling2D(2, data_format=f), (9, 8, 3), None),
    (
        "MaxPooling2D([3, 2], strides=[2, 1], padding=same)",
        lambda f: layers.MaxPooling2D((3, 2), strides=(2, 1), padding="same", data_format=f),
        (8, 7, 3),
        None,
    ),
    (
        "MaxPooling2D(3, strides=2)",
        lambda f: layers.MaxPooling2D(3, strides=2, data_format=f),
        (2, 9, 8),
        CF,
    ),
    (
        "MaxPooling3D(2, padding=same)",
        lambda f: layers.MaxPooling3D(2, padding="same", data_format=f),
        (5, 4, 3, 2),
        None,
    ),
    (
        "MaxPooling3D([2, 1, 3], strides=[1, 2, 2])",
        lambda f: layers.MaxPooling3D((2, 1, 3), strides=(1, 2, 2), data_format=f),
        (2, 4, 5, 7),
        CF,
    ),
    ("AveragePooling1D(3)", lambda f: layers.AveragePooling1D(3, data_format=f), (10, 2), None),
    (
        # pads (0, 1) at 7: the last window sees one element (Keras divides by 1)
        "AveragePooling1D(2, strides=2, padding=same)",
        lambda f: layers.AveragePooling1D(2, strides=2, padding="same", data_format=f),
        (7, 3),
        None,
    ),
    (
        # symmetric pads (1, 1): the border windows average 2 elements, not 3
        "AveragePooling2D(3, strides=1, padding=same)",
        lambda f: layers.AveragePooling2D(3, strides=1, padding="same", data_format=f),
        (6, 5, 3),
        None,
    ),
    (
        "AveragePooling2D([2, 3], strides=[1, 2])",
        lambda f: layers.AveragePooling2D((2, 3), strides=(1, 2), data_format=f),
        (3, 6, 9),
        CF,
    ),
    (
        "AveragePooling2D(2, padding=same)",
        lambda f: layers.AveragePooling2D(2, padding="same", data_format=f),
        (3, 7, 5),
        CF,
    ),
    (
        "AveragePooling3D(2, strides=2, padding=same)",
        lambda f: layers.AveragePooling3D(2, strides=2, padding="same", data_format=f),
        (5, 4, 3, 2),
        None,
    ),
    (
        "AveragePooling3D(2)",
        lambda f: layers.AveragePooling3D(2, data_format=f),
        (2, 4, 5, 6),
        CF,
    ),
]
for r in (1, 2, 3):
    shape = (5, 6, 4)[:r]
    for kind in ("Max", "Average"):
        for keepdims, fmt in ((False, None), (True, None), (False, CF), (True, CF)):
            name = f"Global{kind}Pooling{r}D"
            full = (3, *shape) if fmt == CF else (*shape, 3)
            CASES.append(
                (
                    f"{name}(keepdims={str(keepdims).lower()})",
                    lambda f, name=name, keepdims=keepdims: getattr(layers, name)(
                        keepdims=keepdims, data_format=f
                    ),
                    full,
                    fmt,
                )
            )


def _id(case):
    return f"{case[0]}-{case[3] or 'channels_last'}"


@pytest.mark.parametrize(("kdl_layer", "make", "shape", "fmt"), CASES, ids=map(_id, CASES))
def test_pooling_layers_match_keras(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt)


REFERENCE = [c for c in CASES if _id(c).startswith(("MaxPooling2D([3, 2]", "AveragePooling2D("))]
REFERENCE += [c for c in CASES if _id(c).startswith("GlobalAveragePooling2D(keepdims=true)")]


@pytest.mark.parametrize(("kdl_layer", "make", "shape", "fmt"), REFERENCE, ids=map(_id, REFERENCE))
def test_pooling_layers_on_the_reference_evaluator(tmp_path, kdl_layer, make, shape, fmt):
    fmt = fmt or "channels_last"
    run_layer(tmp_path, kdl_layer, make(fmt), shape, fmt, runtime="reference")


def _tf_average_pool_1d(x, pool, stride):
    """Keras's 'same' average (TensorFlow and JAX): the mean of the unpadded cells."""
    n = x.shape[1]
    out = -(-n // stride)
    total = max((out - 1) * stride + pool - n, 0)
    begin = total // 2
    rows = []
    for i in range(out):
        lo = i * stride - begin
        window = x[:, max(lo, 0) : min(lo + pool, n)]
        rows.append(window.mean(axis=1))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize(("pool", "stride", "n"), [(4, 1, 7), (3, 2, 8), (5, 3, 10)])
def test_average_pooling_excludes_asymmetric_pads(tmp_path, pool, stride, n):
    """With asymmetric 'same' pads of 2 or more cells the mean is over the real cells only,
    as TensorFlow and JAX compute it. (Keras's torch backend replicates the edge into the
    pads here and counts them, so it is not the oracle for these shapes.)"""
    from onnxruntime import InferenceSession

    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    src = tmp_path / "m.kdl"
    src.write_text(
        f"model M {{\n input x: float32[{n}, 2]\n"
        f" AveragePooling1D({pool}, strides={stride}, padding=same)\n}}\n"
    )
    _, graphs = load(str(src))
    proto = build_model(next(iter(graphs.values())))
    x = np.random.default_rng(0).normal(size=(3, n, 2)).astype(np.float32)
    (ours,) = InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(ours, _tf_average_pool_1d(x, pool, stride), rtol=1e-5, atol=1e-6)


def test_global_pooling_keeps_the_cnn_channels_first(tmp_path):
    """Conv -> pool -> global pool -> Dense: one Transpose (after the input)."""
    kdl = (
        "model M {\n input x: float32[10, 10, 3]\n Conv2D(6, 3, padding=same)\n"
        " MaxPooling2D(2)\n AveragePooling2D(2, padding=same)\n"
        " GlobalAveragePooling2D()\n Dense(4)\n}\n"
    )
    assert op_count(tmp_path, kdl, "Transpose") == 1
    kdl_keep = kdl.replace("GlobalAveragePooling2D()", "GlobalMaxPooling2D(keepdims=true)")
    kdl_keep = kdl_keep.replace("Dense(4)", "Flatten()")
    assert op_count(tmp_path, kdl_keep, "Transpose") == 2


def test_dynamic_length_pooling_pads_at_run_time(tmp_path):
    """A dynamic length with stride > 1: auto_pad=SAME_UPPER, the extra cell at the end."""
    from onnxruntime import InferenceSession

    from tests.emit.parity import compare
    from transpiler.emit.onnx import build_model
    from transpiler.graph import load

    kdl = "model M {\n input x: float32[?, 2]\n MaxPooling1D(3, strides=2, padding=same)\n}\n"
    inp = keras.Input((None, 2))
    km = keras.Model(inp, layers.MaxPooling1D(3, strides=2, padding="same")(inp))
    for n in (8, 9):
        x = np.random.default_rng(n).normal(size=(2, n, 2)).astype(np.float32)
        compare(kdl, km, {"x": x}, tmp_path)

    src = tmp_path / "avg.kdl"
    src.write_text(kdl.replace("MaxPooling1D", "AveragePooling1D"))
    _, graphs = load(str(src))
    session = InferenceSession(build_model(next(iter(graphs.values()))).SerializeToString())
    for n in (8, 9):
        x = np.random.default_rng(n).normal(size=(2, n, 2)).astype(np.float32)
        (ours,) = session.run(None, {"x": x})
        np.testing.assert_allclose(ours, _tf_average_pool_1d(x, 3, 2), rtol=1e-5, atol=1e-6)
