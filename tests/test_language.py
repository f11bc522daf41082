"""Semantics of the language constructs (shapes and structure of the built graph)."""

from __future__ import annotations

import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load


def build(tmp_path, text, model="M"):
    path = tmp_path / "m.kdl"
    path.write_text(text)
    return load(str(path))[1][model]


def classes(graph):
    return [n.layer.keras_class() for n in graph.nodes]


def test_sequential_chain_and_implicit_output(tmp_path):
    g = build(tmp_path, "model M {\n input x: float32[4]\n Dense(3)\n Dense(2)\n}\n")
    assert list(g.outputs) == ["output"]
    assert g.outputs["output"].type.shape == ("batch", 2)
    assert g.is_sequential()


def test_pipeline_call_syntax_and_list_call(tmp_path):
    g = build(
        tmp_path,
        "model M {\n input a: float32[4]\n input b: float32[4]\n"
        " x = a |> Dense(3)\n y = Dense(3)(b)\n z = Concatenate()([x, y])\n output z\n}\n",
    )
    assert g.outputs["z"].type.shape == ("batch", 6)


def test_shared_layer_has_one_set_of_weights(tmp_path):
    g = build(
        tmp_path,
        "model M {\n input a: float32[4]\n input b: float32[4]\n e = Dense(3)\n"
        " output o = e(a) + e(b)\n}\n",
    )
    assert len(g.layers) == 2  # the Dense and the add
    assert g.param_count == 15
    dense_nodes = [n for n in g.nodes if n.layer.keras_class() == "Dense"]
    assert [n.call_index for n in dense_nodes] == [0, 1]


def test_unpacking_return_state(tmp_path):
    g = build(
        tmp_path,
        "model M {\n input s: float32[5, 3]\n out, h, c = LSTM(4, return_state=true)(s)\n"
        " output o = concat(out, h, c)\n}\n",
    )
    assert g.outputs["o"].type.shape == ("batch", 12)


def test_repeat_zero_and_consts(tmp_path):
    g = build(
        tmp_path,
        "const n = 2\nconst width = n * 4\nmodel M {\n input x: float32[4]\n"
        " repeat 0 { Dense(99) }\n repeat n { Dense(width) }\n}\n",
    )
    assert classes(g) == ["Dense", "Dense"]
    assert g.outputs["output"].type.shape == ("batch", 8)


BLOCKS = """
block Res(filters: int, shortcut: bool = false) {
    input x
    if shortcut {
        s = x |> Dense(filters)
    } else if filters > 100 {
        s = x |> Dense(1)
    } else {
        s = x
    }
    output relu(s + Dense(filters)(x))
}
block Maybe(units: int) {
    input x
    y = Dense(units)(x)
    if shape(x)[-1] == units and not false {
        output x + y
    } else {
        output y
    }
}
model M {
    input x: float32[4]
    Res(8, shortcut=true)
    Res(8)
    Maybe(8)
    Maybe(3)
}
"""


def test_if_else_and_shape_introspection(tmp_path):
    g = build(tmp_path, BLOCKS)
    assert classes(g).count("Dense") == 5
    assert g.outputs["output"].type.shape == ("batch", 3)
    assert g.block_types == {"res": "Res", "res_1": "Res", "maybe": "Maybe", "maybe_1": "Maybe"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (" if 3 { Dense(2) }", "a condition must be true or false"),
        (" if x > 1 { Dense(2) }", "compares values known when the graph is built"),
        (" if shape(x)[5] == 1 { Dense(2) }", "index 5 is out of range"),
    ],
)
def test_condition_errors(tmp_path, body, message):
    with pytest.raises(KdlErrors) as info:
        build(tmp_path, f"model M {{\n input x: float32[4]\n{body}\n}}\n")
    assert message in info.value.errors[0].message
    assert info.value.errors[0].span.line == 3


def test_channels_first_model_option(tmp_path):
    g = build(
        tmp_path,
        "model M(data_format=channels_first) {\n input x: float32[3, 8, 8]\n"
        " Conv2D(4, 3)\n MaxPooling2D(2)\n}\n",
    )
    assert g.outputs["output"].type.shape == ("batch", 4, 3, 3)
    assert g.nodes[0].layer.data_format == "channels_first"


def test_dynamic_axes_flow_through(tmp_path):
    g = build(
        tmp_path,
        "model M {\n input t: int64[?]\n Embedding(10, 4)\n LSTM(3, return_sequences=true)\n"
        " output o = Dense(2)\n}\n",
    )
    assert g.outputs["o"].type.shape == ("batch", "t_1", 2)
