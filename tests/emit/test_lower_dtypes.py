"""Integer and bool inputs of the layers that take them (merges and layers that move data):
ONNX on onnxruntime equals Keras 3, values and dtype, and passes onnx's full checker.

Keras computes these on the inputs' own dtype: merges fold with the same op (on bool,
Add and Maximum are a logical or, Multiply and Minimum an and; Subtract has no bool
form), Average divides into float32, UpSampling repeats. Dot takes float tensors only in
ktrans (Keras's integer Dot changes the integer type), which is checked here too.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.emit.train.sweep_harness import keras_twin, load_graph

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

NUMBERS = ("int64", "int32", "int8", "uint8")

# (layer call, input shapes without batch)
CASES = [
    ("Flatten()", [(3, 2, 2)]),
    ("Reshape([6, 2])", [(4, 3)]),
    ("Permute([2, 1])", [(4, 3)]),
    ("RepeatVector(3)", [(4,)]),
    ("ZeroPadding1D([1, 2])", [(4, 3)]),
    ("ZeroPadding2D([[1, 0], [0, 2]])", [(3, 2, 2)]),
    ("Cropping1D([1, 1])", [(5, 2)]),
    ("Cropping2D([[1, 0], [0, 1]])", [(4, 3, 2)]),
    ("UpSampling1D(2)", [(3, 2)]),
    ("UpSampling2D([2, 3])", [(2, 3, 2)]),
    ("Concatenate()", [(3, 2), (3, 4)]),
    ("Add()", [(3, 4), (3, 4), (1, 4)]),
    ("Subtract()", [(3, 4), (3, 4)]),
    ("Multiply()", [(3, 4), (3, 1)]),
    ("Average()", [(3, 4), (3, 4)]),
    ("Maximum()", [(3, 4), (3, 4)]),
    ("Minimum()", [(3, 4), (4,)]),
]

#: Keras's torch backend returns int32 here; ktrans keeps the inputs' int64 (same values)
KERAS_NARROWS = {("Maximum()", "int64"), ("Minimum()", "int64")}


def _inputs(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return [rng.random((3, *s)) > 0.5 for s in shapes]
    return [rng.integers(0, 9, size=(3, *s)).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [*NUMBERS, "bool"])
@pytest.mark.parametrize(("call", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_integer_and_bool_inputs_match_keras(tmp_path, call, shapes, dtype):
    from transpiler.emit.onnx import build_model
    from transpiler.errors import KdlErrors
    from transpiler.runtime.session import create_session

    names = [f"x{i}" for i in range(len(shapes))]
    kdl = "model M {\n" + "".join(
        f" input {n}: {dtype}[{', '.join(map(str, s))}]\n" for n, s in zip(names, shapes)
    )
    kdl += f" output y = {call}({', '.join(names)})\n}}\n"
    if dtype == "bool" and call == "Subtract()":
        with pytest.raises(KdlErrors, match="Subtract cannot take bool tensors"):
            load_graph(kdl, tmp_path)
        return
    proto = build_model(load_graph(kdl, tmp_path))
    onnx.checker.check_model(proto, full_check=True)
    values = _inputs(shapes, dtype)
    (ours,) = create_session(proto).run(None, dict(zip(names, values)))

    tensors = [keras.Input(s, dtype=dtype) for s in shapes]
    layer = keras_twin(call, keras, "channels_last")
    km = keras.Model(tensors, layer(tensors if len(tensors) > 1 else tensors[0]))
    theirs = np.asarray(km(values if len(values) > 1 else values[0]).detach().cpu())
    if (call, dtype) in KERAS_NARROWS:
        assert (ours.dtype, theirs.dtype) == (np.int64, np.int32)
    else:
        assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("dtype", [*NUMBERS, "bool"])
def test_dot_takes_float_tensors_only(tmp_path, dtype):
    from transpiler.errors import KdlErrors

    kdl = f"model M {{\n input a: {dtype}[4]\n input b: {dtype}[4]\n output y = Dot(1)(a, b)\n}}\n"
    with pytest.raises(KdlErrors, match=f"Dot expects float tensors; got {dtype}"):
        load_graph(kdl, tmp_path)
