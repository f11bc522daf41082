"""Dropout's noise_shape, as keras.applications' EfficientNets use it (`(None, 1, 1, 1)`
drops whole samples): the arguments Keras takes, the checks against the input, and the
training-mode mask, which is shared along the axes whose entry is 1."""

from __future__ import annotations

import numpy as np
import pytest

from tests.layers.keras_ref import CL, assert_bad_input, assert_matches_keras, assert_rejected
from transpiler.graph.types import TensorType
from transpiler.layers import LAYERS

CASES = [
    ("Dropout", (0.2,), {"noise_shape": [None, 1, 1, 1]}, [(6, 6, 4)], CL),
    ("Dropout", (0.2,), {"noise_shape": (None, 1, 1, None)}, [(6, 6, 4)], CL),
    ("Dropout", (0.5,), {"noise_shape": [None, 3]}, [(3,)], CL),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: str(c[2]["noise_shape"]))
def test_matches_keras(case):
    assert_matches_keras(case)


def test_bad_noise_shape():
    assert_rejected(
        "Dropout", (0.5,), {"noise_shape": [None, 0]}, "noise_shape",
        "expected a list of positive integers or none, got [none, 0]", False,
    )  # fmt: skip
    assert_bad_input(
        "Dropout", (0.5,), {"noise_shape": [None, 1]}, [(4, 3)], "float32",
        "Dropout: noise_shape has 2 entries; the input (None, 4, 3) has 3 axes",
        "one entry per axis",
        arg="noise_shape",
    )  # fmt: skip
    assert_bad_input(
        "Dropout", (0.5,), {"noise_shape": [None, 2]}, [(3,)], "float32",
        "noise_shape [none, 2] does not broadcast to the input", None,
    )  # fmt: skip


@pytest.mark.parametrize("perm", [None, (0, 3, 1, 2)], ids=["stored-nhwc", "stored-nchw"])
def test_training_mask_is_shared_along_the_axes_of_size_1(perm):
    """Each (sample, channel) keeps or drops all its pixels together, on either layout."""
    import onnx
    from onnx import TensorProto, helper

    from transpiler.emit.onnx.builder import OpBuilder
    from transpiler.emit.onnx.context import LowerContext
    from transpiler.emit.onnx.tensors import LTensor
    from transpiler.emit.train.names import STEP_INPUT
    from transpiler.runtime.session import create_session

    layer = LAYERS["Dropout"].create(0.5, noise_shape=[None, 1, 1, None])
    logical = TensorType("float32", ("batch", 5, 5, 8))
    layer([logical])
    b = OpBuilder()
    ctx = LowerContext(b, {layer.name: {}}, training=True)
    ctx.layer = layer
    (y,) = layer.lower(ctx, [LTensor("x", logical, perm)])
    stored = (6, 5, 5, 8) if perm is None else (6, 8, 5, 5)
    graph = helper.make_graph(
        b.nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, stored),
            helper.make_tensor_value_info(STEP_INPUT, TensorProto.INT64, ()),
        ],
        [helper.make_tensor_value_info(y.name, TensorProto.FLOAT, stored)],
        b.tensor_protos(),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    x = np.ones(stored, np.float32)
    (out,) = create_session(model).run(None, {"x": x, STEP_INPUT: np.array(3, np.int64)})
    logical_out = out if perm is None else np.transpose(out, (0, 2, 3, 1))
    assert set(np.unique(logical_out)) <= {0.0, 2.0}
    per_pixel = logical_out.reshape(6, 25, 8)
    assert (per_pixel == per_pixel[:, :1, :]).all()  # one draw per sample and channel
    assert 0 < per_pixel[:, 0, :].mean() < 2  # some kept, some dropped
