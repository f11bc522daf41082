"""The shapes a .kdl program takes in PyTorch: blocks made only of expressions, `if`
that gives one block two structures (one class per variant), repeats of one layer, of a
block, of several statements (a class per iteration) and inside blocks, multi-output
layers with unused outputs, an output listed twice, dynamic reshapes, shared layers
called on inputs of other sizes and layouts (one module serves both), a layer shared
between blocks. Each is checked against the Keras model `codegen --target keras` writes
for the same file, on the same random weights."""

from __future__ import annotations

import pytest

from tests.emit.torch.harness import compare_with_keras_target, load_graph, torch_model

keras = pytest.importorskip("keras")
pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

# name: (.kdl text, fragments the generated code must contain)
CASES = {
    "expressions_only": (
        "model E {\n    input x: float32[4]\n    output y = relu(x) * 2.0 + 1.0\n}\n",
        ["torch.relu(x)"],
    ),
    "block_of_expressions_repeated": (
        """
block Twice(k: float) {
    input x
    output x * k + relu(x)
}
model E {
    input x: float32[4]
    repeat 3 { Twice(2.0) }
    Dense(2)
}
""",
        ["class Twice(nn.Module):", "nn.ModuleList(Twice() for _ in range(3))"],
    ),
    "if_gives_variants": (
        """
block Res(filters: int) {
    input x
    y = x |> Conv2D(filters, 3, padding=same)
    if shape(x)[-1] == filters {
        output x + y
    } else {
        output y
    }
}
model E {
    input img: float32[8, 8, 3]
    Res(4)
    Res(4)
    Res(6)
    GlobalMaxPooling2D()
}
""",
        ["class Res(nn.Module):", "class Res2(nn.Module):", "return x + y"],
    ),
    "repeat_of_several_statements": (
        """
model E {
    input x: float32[5]
    repeat 3 {
        Dense(5, activation=relu)
        Dropout(0.1)
    }
    Dense(1)
}
""",
        ["class DenseDropout(nn.Module):", "for block in self.dense_dropouts:"],
    ),
    "repeat_with_a_residual_inside": (
        """
model E {
    input x: float32[4]
    h = x |> Dense(4)
    repeat 3 {
        y = h |> Dense(4, activation=relu)
        h = Add()(h, y)
    }
    output o = h
}
""",
        ["class DenseAdd(nn.Module):", "return self.add(x, y)"],
    ),
    "repeats_nested_in_blocks": (
        """
block Inner(n: int) {
    input x
    repeat n { Dense(4, activation=tanh) }
}
model E {
    input x: float32[4]
    repeat 2 { Inner(2) }
}
""",
        ["for dense in self.denses:", "for block in self.inners:"],
    ),
    "unused_states": (
        """
model E {
    input x: float32[6, 3]
    y, h, c = LSTM(4, return_state=true, return_sequences=true)(x)
    output a = Dense(2)(h)
    output b = y
}
""",
        ["return_state=True"],
    ),
    "an_output_twice": (
        """
model E {
    input x: float32[4]
    d = Dense(4)(x)
    output a = d
    output b = d
    output c = Add()(x, d)
}
""",
        ["return dense, dense, x"],
    ),
    "many_long_outputs": (
        """
model E {
    input a_rather_long_input_name: int64[4]
    h = a_rather_long_input_name |> Embedding(3, 2, mask_zero=true)
    output the_first_rather_long_output_name = Dense(2)(h)
    output the_second_rather_long_output_name = LSTM(3)(h)
    output the_third_rather_long_output_name = relu(h)
}
""",
        ["if return_masks:"],
    ),
    "dynamic_reshape": (
        "model E {\n    input s: float32[?, 4, 2]\n"
        "    output r = reshape(s, [-1, 8]) |> LSTM(3)\n}\n",
        ["s.reshape(s.shape[0], -1, 8)"],
    ),
    "shared_layers_on_other_sizes_and_layouts": (
        """
model S {
    input a: float32[8, 8, 3]
    input b: float32[9, 9, 3]
    conv = Conv2D(4, 3, strides=2, padding=same)
    pool = MaxPooling2D(3, strides=2, padding=same)
    bn = BatchNormalization()
    p = a |> conv |> pool |> GlobalAveragePooling2D()
    q = b |> conv |> pool |> GlobalAveragePooling2D()
    x = bn(Conv2D(3, 1)(a)) |> Flatten()
    y = bn(a) |> Flatten()
    output o = Concatenate()(p, q)
    output o2 = Concatenate()(x, y)
}
""",
        ["Conv2dSame(3, 4, 3, stride=2)", "MaxPoolingSame((3, 3), (2, 2))"],
    ),
    "a_layer_shared_by_blocks": (
        """
block Apply(l: layer) {
    input x
    y = l(x)
    output y * 2.0
}
model E {
    input a: float32[4]
    input b: float32[4]
    d = Dense(3, activation=tanh)
    p = Apply(d)(a)
    q = Apply(d)(b)
    output o = Add()(p, q, d(a))
}
""",
        ["Apply(dense=self.dense)", "self.dense = nn.Linear(4, 3)"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_structure_matches_keras(tmp_path, name):
    from tests.emit.parity import randomize_keras

    text, fragments = CASES[name]
    program, graph, src = load_graph(text, tmp_path)
    code, _ = compare_with_keras_target(program, graph, str(src), randomize_keras)
    for fragment in fragments:
        assert fragment in code, fragment


def test_structures_pass_ruff(tmp_path):
    from tests.emit.test_codegen_keras import check_ruff

    for name, (text, _) in CASES.items():
        program, graph, src = load_graph(text, tmp_path)
        _, code = torch_model(graph, program, str(src))
        (tmp_path / f"{name}.py").write_text(code)
    check_ruff(tmp_path)
