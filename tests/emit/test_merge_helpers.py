"""Keras's functional merge helpers in .kdl: `add([a, b])`, `concatenate([...], axis=)`,
`dot([a, b], axes=)`... are keras.layers.add and friends: the merge layer (Add,
Concatenate, Dot...) under Keras's automatic name, combining Keras masks as the layer
does. Checked against Keras 3: the layers' names and classes (as a summary lists them),
the outputs on the same weights with masked inputs, and the Keras code written for them.
With a number among the operands (`maximum(x, 0.0)`) they stay keras.ops expressions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare
from transpiler.cli import main
from transpiler.errors import KdlErrors
from transpiler.graph import load

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

MERGES = """model M {
    input a: int64[6]
    input b: int64[6]
    ea = a |> Embedding(10, 4, mask_zero=true)
    eb = b |> Embedding(10, 4, mask_zero=true)
    s = add([ea, eb])
    mx = maximum([ea, eb])
    p = multiply([ea, eb])
    av = average([ea, eb])
    d = subtract([ea, eb])
    mn = minimum([ea, eb])
    c = concatenate([s, mx, p, av, d, mn], axis=-1)
    output y = c |> LSTM(3)
    output z = concatenate([s, mn], axis=1) |> GlobalAveragePooling1D()
    output w = dot([ea, eb], axes=2)
    output u = [s, mn] |> add
}
"""


def keras_merges(mask_zero: bool = True):
    a, b = keras.Input((6,), dtype="int64"), keras.Input((6,), dtype="int64")
    ea = L.Embedding(10, 4, mask_zero=mask_zero)(a)
    eb = L.Embedding(10, 4, mask_zero=mask_zero)(b)
    s = L.add([ea, eb])
    mx = L.maximum([ea, eb])
    p = L.multiply([ea, eb])
    av = L.average([ea, eb])
    d = L.subtract([ea, eb])
    mn = L.minimum([ea, eb])
    c = L.concatenate([s, mx, p, av, d, mn], axis=-1)
    y = L.LSTM(3)(c)
    z = L.GlobalAveragePooling1D()(L.concatenate([s, mn], axis=1))
    w = L.dot([ea, eb], axes=2)
    u = L.add([s, mn])
    return keras.Model([a, b], [y, z, w, u])


def graph_of(tmp_path, text):
    path = tmp_path / "m.kdl"
    path.write_text(text)
    _, graphs = load(path)
    return next(iter(graphs.values()))


def test_helpers_are_the_merge_layers_keras_names(tmp_path):
    """Without masks: Keras computes a masked Concatenate's mask with keras.ops calls
    that take automatic names too (`concatenate_1`), which ktrans does not count."""
    keras.backend.clear_session()  # Keras's automatic names count from zero again
    model = keras_merges(mask_zero=False)
    theirs = sorted(
        (la.name, type(la).__name__) for la in model.layers if not isinstance(la, L.InputLayer)
    )
    unmasked = MERGES.replace("mask_zero=true", "mask_zero=false")
    ours = sorted((la.name, la.keras_class()) for la in graph_of(tmp_path, unmasked).layers)
    assert ours == theirs
    assert ("add_1", "Add") in ours and ("concatenate_1", "Concatenate") in ours


def test_summary_lists_them_as_layers(tmp_path, capsys):
    path = tmp_path / "m.kdl"
    path.write_text(MERGES)
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    for row in ("add (Add)", "average (Average)", "dot (Dot)", "concatenate_1 (Concatenate)"):
        assert row in out
    assert "Lambda" not in out


def test_outputs_and_masks_match_keras(tmp_path):
    """Masked tokens (0) in both inputs and at different places: the merges' masks (OR,
    Maximum/Minimum/Multiply leaving masked entries out, Concatenate joining them along
    the time axis) reach the LSTM and the pooling, which use them."""
    rng = np.random.default_rng(0)
    a = rng.integers(1, 10, size=(4, 6))
    b = rng.integers(1, 10, size=(4, 6))
    a[0, 4:] = 0
    b[0, 3:] = 0
    a[1, :2] = 0
    b[2, 1] = 0
    a[3, 2:] = 0
    b[3, :3] = 0
    compare(MERGES, keras_merges(), {"a": a, "b": b}, tmp_path)


def test_numbers_keep_the_keras_ops_meaning(tmp_path):
    graph = graph_of(
        tmp_path,
        "model M {\n    input x: float32[4]\n    input y: float32[4]\n"
        "    output o = maximum(x, 0.0) + add(x, 1.0) + minimum(y, 2.0)\n"
        "    output p = maximum(x, y)\n}\n",
    )
    classes = [n.layer.keras_class() for n in graph.nodes]
    assert classes == ["Lambda", "Lambda", "Lambda", "Lambda", "Lambda", "Maximum"]


def test_forms_a_kdl_user_writes(tmp_path):
    graph = graph_of(
        tmp_path,
        "model M {\n    input x: float32[3, 4]\n    input y: float32[3, 4]\n"
        "    a = concatenate(x, y, axis=1)\n"  # tensors as separate arguments
        "    b = concatenate([x, y], 2)\n"  # the axis by position, as Keras allows
        "    c = [x, y] |> concatenate(axis=1)\n"  # piped
        "    d = dot([x, y])\n"  # keras.layers.dot's default axes=-1
        '    e = add([x, y], name="sum")\n'
        "    output o = Concatenate(axis=1)(a, c) + 0.0\n"
        "    output q = b\n    output r = d\n    output s = e\n}\n",
    )
    layers = {la.name: la for la in graph.layers if la.family == "merge"}
    assert layers["concatenate"].axis == 1 and layers["concatenate_1"].axis == 2
    assert layers["concatenate_2"].axis == 1
    assert layers["dot"].axes == -1 and graph.outputs["r"].type.shape == ("batch", 3, 3)
    assert layers["sum"].keras_class() == "Add"


ERRORS = [
    ("    y = average([x, 1.0])", "average takes a list of tensors; got 1.0 in it"),
    ("    y = average(x, 2.0)", "average takes a list of tensors: average([a, b])"),
    ("    y = add([x])", "Add takes at least 2 input tensors; got 1"),
    ("    y = subtract([x, x, x])", "Subtract takes 2 input tensors; got 3"),
    ("    y = dot([x, x], 1, 2)", "dot takes the tensors, then axes; got 2 more arguments"),
    ("    y = concatenate([x, x], axis=0)", "Concatenate: axis 0 is the batch axis"),
    ("    y = add([x, x], colour=1)", "Add has no argument 'colour'"),
    ("    y = concatenate([x, x], 1, axis=1)", "concatenate: argument 'axis' is given twice"),
]


@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_errors(tmp_path, body, message):
    path = tmp_path / "m.kdl"
    path.write_text(f"model M {{\n    input x: float32[4]\n{body}\n}}\n")
    with pytest.raises(KdlErrors) as info:
        load(path)
    error = info.value.errors[0]
    assert message in error.message
    assert error.span.line == 3


def test_keras_code_writes_the_merge_layers(tmp_path, monkeypatch):
    from tests.emit.test_codegen_keras import (
        check_ruff,
        check_structure,
        generate_file,
        import_path,
    )

    src = tmp_path / "merges.kdl"
    src.write_text(MERGES)
    out = generate_file(src, tmp_path, monkeypatch)
    code = out.read_text()
    assert 'layers.Add(name="add")([ea, eb])' in code.replace("embedding_1", "eb").replace(
        "embedding", "ea"
    )
    assert "ops." not in code
    check_ruff(out)
    model = import_path(out).build_model()
    check_structure(graph_of(tmp_path, MERGES), model)
