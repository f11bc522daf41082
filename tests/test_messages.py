"""The messages users hit (issue 10, sections 3 and 4): each case with the exact message
fragment and hint it gets, at the line and column it names, and the exit code.

Also: a name bound to a layer used as a tensor, and dynamic axes printed as None in
summaries and diagrams (the ONNX file keeps their names)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from transpiler.cli import main
from transpiler.errors import KdlErrors
from transpiler.graph import load

MLP = "model M {\n    input x: float32[4]\n%s\n}\n"
TRAIN = "train M {\n    loss = mse\n%s\n}\n"


def write(tmp_path, text, name="m.kdl") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def first_error(tmp_path, text):
    with pytest.raises(KdlErrors) as info:
        load(write(tmp_path, text))
    return info.value.errors[0]


CASES = [
    # (id, source, line, column, message fragment, hint fragment)
    (
        "metric-typo",
        MLP % "    Dense(2)" + TRAIN % "    optimizer = adam\n    metrics = [acuracy]",
        8,
        16,
        "unknown metric 'acuracy'",
        "did you mean 'accuracy'?",
    ),
    (
        "activation-case",
        MLP % "    Dense(3, activation=Relu)",
        3,
        25,
        "Dense: activation 'Relu' is unknown",
        "did you mean 'relu'?",
    ),
    (
        "keras2-lr",
        MLP % "    Dense(2)" + TRAIN % "    optimizer = Adam(lr=0.01)",
        7,
        22,
        "Adam has no argument 'lr'",
        "Keras 3 calls it 'learning_rate' ('lr' is the Keras 2 name)",
    ),
    (
        "keras2-lr-sgd",
        MLP % "    Dense(2)" + TRAIN % "    optimizer = SGD(lr=0.1, momentum=0.9)",
        7,
        21,
        "SGD has no argument 'lr'",
        "Keras 3 calls it 'learning_rate'",
    ),
    (
        "layers-prefix",
        MLP % "    layers.Dense(2)",
        3,
        11,
        "unexpected character '.'",
        "drop the module prefix ('layers.', 'keras.layers.', 'tf.keras.layers.')",
    ),
    (
        "keras-layers-prefix",
        MLP % "    y = keras.layers.Dense(2)(x)",
        3,
        14,
        "unexpected character '.'",
        "e.g. Dense(64)",
    ),
    (
        "tf-keras-layers-prefix",
        MLP % "    tf.keras.layers.Dense(2)",
        3,
        7,
        "unexpected character '.'",
        "drop the module prefix",
    ),
    (
        "attribute",
        MLP % "    y = x.shape",
        3,
        10,
        "unexpected character '.'",
        "for a shape write shape(x)",
    ),
    (
        "layer-name-as-output",
        MLP % "    d = Dense(2)\n    output y = d",
        4,
        16,
        "'d' is the layer 'dense' (Dense), not a tensor",
        "apply it to a tensor: d(x), or x |> d",
    ),
    (
        "layer-name-as-bare-output",
        MLP % "    encoder = LSTM(4)\n    output encoder",
        4,
        12,
        "'encoder' is the layer 'lstm' (LSTM), not a tensor",
        "encoder(x)",
    ),
    (
        "layer-name-in-a-merge",
        MLP % "    h = Dense(2)(x)\n    d = Dense(2)\n    output y = concatenate([h, d])",
        5,
        16,
        "concatenate takes a list of tensors; got the layer 'dense_1' (Dense) in it",
        "apply the layer to a tensor first: d(x)",  # the name the file binds, not dense_1(x)
    ),
    (
        "layer-name-in-arithmetic",
        MLP % "    d = Dense(2)\n    output y = d + 1.0",
        4,
        16,
        "'+' needs tensors or numbers; got the layer 'dense' (Dense) and 1.0",
        "apply the layer to a tensor first: d(x)",
    ),
    (
        "unbound-layer-in-arithmetic",
        MLP % "    h = Dense(2)(x)\n    output y = h + Dense(2)",
        4,
        16,
        "'+' needs tensors or numbers; got the layer 'dense_1' (Dense)",
        "apply the layer to a tensor first: Dense(...)(x)",
    ),
    (
        "stateful",
        "model M {\n    input x: float32[3, 4]\n    LSTM(2, stateful=true)\n}\n",
        3,
        22,
        "LSTM: stateful is not supported: a ktrans model keeps no state between batches",
        "remove stateful",
    ),
    (
        "block-name-as-output",
        "block B() {\n    input x\n    Dense(2)\n}\n" + MLP % "    b = B()\n    output y = b",
        8,
        16,
        "'b' is the block B, not a tensor",
        "b(x)",
    ),
]


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "hint"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_message(tmp_path, source, line, column, message, hint):
    error = first_error(tmp_path, source)
    assert message in error.message
    assert hint in (error.hint or "")
    assert (error.span.line, error.span.column) == (line, column)


def test_named_layers_still_apply_where_a_layer_belongs(tmp_path):
    body = "    d = Dense(4)\n    y = x |> d\n    output z = d(y)"  # piped, then called
    _, graphs = load(write(tmp_path, MLP % body))
    nodes = graphs["M"].nodes
    assert [n.layer.name for n in nodes] == ["dense", "dense"]  # one layer, two calls
    assert nodes[0].layer is nodes[1].layer


def test_a_bare_named_layer_statement_applies_it(tmp_path):
    """`d` on its own line is a layer statement, like `Dense(2)`: applied to the previous
    value (as Sequential.add does with a layer object)."""
    _, graphs = load(write(tmp_path, MLP % "    d = Dense(2)\n    d\n    output y = Dense(2)"))
    graph = graphs["M"]
    assert [n.layer.name for n in graph.nodes] == ["dense", "dense_1"]
    assert graph.outputs["y"].type.shape == ("batch", 2)


def test_summary_of_an_onnx_file_says_what_to_use(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x0a")
    assert main(["summary", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert f"{path} is an ONNX file and `ktrans summary` reads .kdl models" in err
    assert f"ktrans viz {path} -o model.svg" in err


CONV = "model C {\n    input x: float32[?, 3]\n    Conv1D(4, 5)\n    GlobalMaxPooling1D()\n}\n"


@pytest.fixture
def short_sequence(tmp_path):
    kdl = write(tmp_path, CONV, "c.kdl")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 3, 3), np.float32))  # 3 steps, a kernel of 5
    return kdl, x


def test_run_kdl_with_a_sequence_too_short_for_a_conv(short_sequence, capsys):
    kdl, x = short_sequence
    assert main(["run", kdl, "--input", f"x={x}"]) == 1
    err = capsys.readouterr().err
    assert f"{kdl}:3:5: error: Conv1D: the output would have a zero or negative size" in err
    assert "use padding=same, a smaller kernel_size, or a larger input" in err
    assert "internal error" not in err and "onnxruntime" not in err


def test_run_onnx_with_a_sequence_too_short_for_a_conv(short_sequence, tmp_path, capsys):
    kdl, x = short_sequence
    model = tmp_path / "c.onnx"
    assert main(["build", kdl, "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["run", str(model), "--input", f"x={x}"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: onnxruntime cannot run the model on these inputs: the Conv node "
        "'conv1d/Conv' of the layer 'conv1d' fails: Invalid input shape" in err
    )
    assert "shorter than a layer's kernel" in err
    assert "internal error" not in err and "[E:onnxruntime" not in err


def test_run_still_runs_long_enough_sequences(short_sequence, tmp_path, capsys):
    kdl, _ = short_sequence
    x = tmp_path / "long.npy"
    np.save(x, np.ones((2, 9, 3), np.float32))
    assert main(["run", kdl, "--input", f"x={x}"]) == 0
    assert "output: float32[2, 4]" in capsys.readouterr().out


# ---------------------------------------------------------------- dynamic axes as None

AXES = """model A {
    input ids: int64[n_tokens]
    input feats: float32[?, 6]
    e = ids |> Embedding(20, 6)
    output y = Concatenate(axis=1)(e, feats) |> LSTM(3, return_sequences=true)
}
"""


def test_summary_shows_dynamic_axes_as_none(tmp_path, capsys):
    assert main(["summary", write(tmp_path, AXES)]) == 0
    out = capsys.readouterr().out
    assert "│ ids (InputLayer)" in out and "(None, None)" in out
    assert "(None, None, 6)" in out and "(None, None, 3)" in out
    assert "n_tokens" not in out and "feats_1" not in out


def test_diagram_shows_dynamic_axes_as_none(tmp_path):
    from transpiler.viz.model_graph import model_digraph

    _, graphs = load(write(tmp_path, AXES))
    source = model_digraph(graphs["A"]).source
    assert "(None, None, 6)" in source and "(None, None, 3)" in source
    assert "n_tokens" not in source and "feats_1" not in source


def test_the_onnx_file_keeps_the_axis_names(tmp_path, capsys):
    out = tmp_path / "a.onnx"
    assert main(["build", write(tmp_path, AXES), "-o", str(out)]) == 0
    model = onnx.load(out)
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    assert dims == {"ids": ["batch", "n_tokens"], "feats": ["batch", "feats_1", 6]}
