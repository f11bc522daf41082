"""Keyword arguments in layer calls, as Keras's call() takes them:
`LSTM(8)(x, initial_state=[h, c])` (GRU, SimpleRNN, Bidirectional too),
`MultiHeadAttention(...)(query=q, value=v, key=k, attention_mask=m, use_causal_mask=true)`,
`mask=` for the layers whose Keras call takes one.

Checked here: the checker's errors (exact message, line:col, suggestions), the graph's
representation (Node.inputs and Node.call), the ONNX outputs against Keras 3 on the same
weights (tests/emit/parity.py), the Keras code `codegen --target keras` writes (the same
call, computing what the ONNX model computes), and the diagram's edge labels. Training is
in tests/emit/train/test_call_keywords_training.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare
from transpiler.errors import KdlErrors
from transpiler.graph import load

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(0)


def graph_of(tmp_path, text: str):
    path = tmp_path / "m.kdl"
    path.write_text(text)
    _, graphs = load(path)
    return next(iter(graphs.values()))


def floats(*shape) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def booleans(*shape, keep: float = 0.7) -> np.ndarray:
    out = RNG.random(shape) < keep
    out[..., 0] = True  # every row keeps a step (a row with none is a separate case)
    return out


# ---------------------------------------------------------------- the checker

SEQ = (
    "model M {\n    input x: float32[5, 3]\n    input h: float32[4]\n    input c: float32[4]\n"
    "%s\n}\n"
)
ATT = (
    "model M {\n    input q: float32[4, 8]\n    input v: float32[6, 8]\n    input m: bool[4, 6]\n"
    "%s\n}\n"
)

ERRORS = [
    # (id, source, line, column, message fragment, hint fragment)
    (
        "unknown-keyword",
        SEQ % "    y = LSTM(4)(x, inital_state=[h, c])",
        5,
        20,
        "LSTM's call has no argument 'inital_state'",
        "did you mean 'initial_state'?",
    ),
    (
        "attention-typo",
        ATT % "    y = MultiHeadAttention(2, 4)(q, v, atention_mask=m)",
        5,
        40,
        "MultiHeadAttention's call has no argument 'atention_mask'",
        "did you mean 'attention_mask'?",
    ),
    (
        "training",
        SEQ % "    y = LSTM(4)(x, training=true)",
        5,
        20,
        "LSTM's call has no argument 'training'",
        "`ktrans train` runs every layer in training mode",
    ),
    (
        "dense-keywords",
        SEQ % "    y = Dense(4)(x, mask=h)",
        5,
        21,
        "Dense's call has no argument 'mask'",
        "Dense's call takes: inputs",
    ),
    (
        "given-twice",
        SEQ % "    y = LSTM(4)(x, h, c, initial_state=[h, c])",
        5,
        26,
        "LSTM: 'initial_state' is given twice, by position and by name",
        None,
    ),
    (
        "query-twice",
        ATT % "    y = MultiHeadAttention(2, 4)(q, v, query=q)",
        5,
        40,
        "MultiHeadAttention: 'query' is given twice",
        None,
    ),
    (
        "missing-value",
        ATT % "    y = MultiHeadAttention(2, 4)(query=q, key=v)",
        5,
        9,
        "MultiHeadAttention's call needs 'value'",
        "pass it by position or as value=...",
    ),
    (
        "one-state",
        SEQ % "    y = LSTM(4)(x, initial_state=[h])",
        5,
        34,
        "LSTM takes 2 initial states (h, c); got 1",
        "pass every state, initial_state=[h, c], or none",
    ),
    (
        "one-state-by-position",
        SEQ % "    y = LSTM(4)(x, h)",
        5,
        9,
        "LSTM takes 2 initial states (h, c); got 1",
        "initial_state=[h, c]",
    ),
    (
        "state-shape",
        SEQ % "    y = GRU(5)(x, initial_state=h)",
        5,
        33,
        "GRU: initial state h should have shape (None, 5); got (None, 4)",
        "a state has one row of 5 units per sample",
    ),
    (
        "keyword-not-a-tensor",
        SEQ % "    y = LSTM(4)(sequences=3)",
        5,
        27,
        "expected a tensor; got 3",
        None,
    ),
    (
        "flag-not-bool",
        ATT % "    y = MultiHeadAttention(2, 4)(q, v, use_causal_mask=2)",
        5,
        56,
        "MultiHeadAttention: use_causal_mask expected true or false",
        None,
    ),
    (
        "attention-mask-shape",
        (ATT % "    y = MultiHeadAttention(2, 4)(q, v, attention_mask=h)").replace(
            "input m: bool[4, 6]", "input m: bool[4, 6]\n    input h: bool[6, 4]"
        ),
        6,
        55,
        "attention_mask should have shape (None, 4, 6) (batch, query steps, value steps); "
        "got (None, 6, 4)",
        "query step i may attend to value step j",
    ),
    (
        "attention-mask-rank-4",
        "model M {\n    input q: float32[2, 4, 8]\n    input m: bool[2, 4, 4]\n"
        "    y = MultiHeadAttention(2, 4)(q, q, attention_mask=m)\n}\n",
        4,
        55,
        "attention_mask with inputs of rank 4 is not supported",
        None,
    ),
    (
        "mask-shape",
        SEQ % "    y = LSTM(4)(x, mask=h)",
        5,
        25,
        "LSTM: mask should have shape (None, 5) (the input (None, 5, 3) without its last "
        "axis); got (None, 4)",
        "nonzero (or true) keeps the step",
    ),
    (
        "too-many-positional",
        ATT % "    y = MultiHeadAttention(2, 4)(q, v, v, m)",
        5,
        9,
        "MultiHeadAttention takes at most 3 positional tensors (query, value, key); got 4",
        "pass the others by name",
    ),
    (
        "block-keywords",
        "block B() {\n    input x\n    Dense(2)\n}\n" + SEQ % "    y = B()(x=x)",
        9,
        13,
        "a block's call takes only its input tensors; 'x=' is not supported",
        "in the order of the block's `input` statements",
    ),
]


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "hint"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_errors(tmp_path, source, line, column, message, hint):
    path = tmp_path / "m.kdl"
    path.write_text(source)
    with pytest.raises(KdlErrors) as info:
        load(path)
    error = info.value.errors[0]
    assert message in error.message
    if hint is not None:
        assert hint in (error.hint or "")
    assert (error.span.line, error.span.column) == (line, column)


# ---------------------------------------------------------------- the graph


def test_the_graph_holds_positional_tensors_then_keyword_tensors(tmp_path):
    graph = graph_of(
        tmp_path,
        ATT % "    k = Dense(8)(v)\n"
        "    y = MultiHeadAttention(2, 4)(key=k, value=v, query=q, attention_mask=m,"
        " use_causal_mask=true)",
    )
    node = graph.nodes[-1]
    names = [v.name for v in node.inputs]
    assert names == ["q", "v", "dense", "m"]  # query, value, key, then attention_mask
    assert [v.name for v in node.positional] == ["q", "v", "dense"]
    assert list(node.call.tensors) == ["attention_mask"]
    assert node.call.tensors["attention_mask"] is node.inputs[-1]
    assert node.call.options == {"use_causal_mask": True}


def test_initial_states_are_positional_inputs(tmp_path):
    a = graph_of(tmp_path, SEQ % "    y = LSTM(4)(x, initial_state=[h, c])")
    b = graph_of(tmp_path, SEQ % "    y = LSTM(4)(x, h, c)")
    c = graph_of(tmp_path, SEQ % "    y = LSTM(4)(sequences=x, initial_state=[h, c])")
    for graph in (a, b, c):
        (node,) = graph.nodes
        assert [v.name for v in node.inputs] == ["x", "h", "c"]
        assert not node.call.tensors and not node.call.options


# ---------------------------------------------------------------- ONNX against Keras


def test_recurrent_initial_state_keywords_match_keras(tmp_path):
    kdl = """model M {
    input x: float32[5, 3]
    input h: float32[4]
    input c: float32[4]
    a = LSTM(4, return_sequences=true)(x, initial_state=[h, c])
    b = GRU(4)(sequences=a, initial_state=h)
    d = SimpleRNN(4)(a, initial_state=[h])
    e = Bidirectional(LSTM(4))(a, initial_state=[h, c, c, h])
    output y = Concatenate()(b, d, e)
}
"""

    def model():
        x, h, c = keras.Input((5, 3)), keras.Input((4,)), keras.Input((4,))
        a = L.LSTM(4, return_sequences=True)(x, initial_state=[h, c])
        b = L.GRU(4)(a, initial_state=h)
        d = L.SimpleRNN(4)(a, initial_state=[h])
        e = L.Bidirectional(L.LSTM(4))(a, initial_state=[h, c, c, h])
        return keras.Model([x, h, c], L.Concatenate()([b, d, e]))

    inputs = {"x": floats(3, 5, 3), "h": floats(3, 4), "c": floats(3, 4)}
    compare(kdl, model(), inputs, tmp_path)


ATTENTION = """model M {
    input q: float32[%(tq)s, 8]
    input v: float32[%(tv)s, 8]
    input m: %(mask)s
    a = MultiHeadAttention(num_heads=2, key_dim=4%(extra)s)(query=q, value=v, key=v,
                                                            attention_mask=m)
    b = MultiHeadAttention(num_heads=2, key_dim=4%(extra)s)(q, q, use_causal_mask=true)
    c = MultiHeadAttention(2, 4%(extra)s)(q, v, attention_mask=m, use_causal_mask=true)
    output y = Concatenate()(a, b, c)
}
"""


@pytest.mark.parametrize(
    ("tq", "tv", "dropout", "mask_dtype"),
    [
        (4, 6, 0.0, "bool"),  # Keras's fused attention (a large negative bias)
        (4, 6, 0.1, "bool"),  # its explicit masked softmax (dropout, inactive here)
        ("?", "?", 0.0, "bool"),  # lengths known at run time only: masks built then
        (4, 6, 0.0, "float32"),  # a 0/1 float mask: nonzero keeps, as Keras casts it
    ],
    ids=["fused", "explicit", "dynamic", "float-mask"],
)
def test_attention_masks_match_keras(tmp_path, tq, tv, dropout, mask_dtype):
    extra = f", dropout={dropout}" if dropout else ""
    mask_type = f"{mask_dtype}[{tq}, {tv}]"
    kdl = ATTENTION % {"tq": tq, "tv": tv, "mask": mask_type, "extra": extra}
    n_q, n_v = 4, 6

    def model():
        q = keras.Input((None if tq == "?" else n_q, 8))
        v = keras.Input((None if tv == "?" else n_v, 8))
        m = keras.Input((None if tq == "?" else n_q, None if tv == "?" else n_v), dtype=mask_dtype)
        a = L.MultiHeadAttention(2, 4, dropout=dropout)(q, v, v, attention_mask=m)
        b = L.MultiHeadAttention(2, 4, dropout=dropout)(q, q, use_causal_mask=True)
        c = L.MultiHeadAttention(2, 4, dropout=dropout)(
            q, v, attention_mask=m, use_causal_mask=True
        )
        return keras.Model([q, v, m], L.Concatenate()([a, b, c]))

    mask = booleans(3, n_q, n_v)
    inputs = {"q": floats(3, n_q, 8), "v": floats(3, n_v, 8), "m": mask.astype(mask_dtype)}
    compare(kdl, model(), inputs, tmp_path)


def test_attention_mask_with_a_row_that_attends_to_nothing(tmp_path):
    """Keras's fused attention makes such a row uniform; so does the ONNX model."""
    kdl = ATTENTION % {"tq": 4, "tv": 6, "mask": "bool[4, 6]", "extra": ""}

    def model():
        q, v = keras.Input((4, 8)), keras.Input((6, 8))
        m = keras.Input((4, 6), dtype="bool")
        a = L.MultiHeadAttention(2, 4)(q, v, v, attention_mask=m)
        b = L.MultiHeadAttention(2, 4)(q, q, use_causal_mask=True)
        c = L.MultiHeadAttention(2, 4)(q, v, attention_mask=m, use_causal_mask=True)
        return keras.Model([q, v, m], L.Concatenate()([a, b, c]))

    mask = booleans(2, 4, 6)
    mask[0, 1] = False  # query step 1 of sample 0 sees nothing
    compare(kdl, model(), {"q": floats(2, 4, 8), "v": floats(2, 6, 8), "m": mask}, tmp_path)


def test_attention_mask_combines_with_keras_masks(tmp_path):
    kdl = """model M {
    input ids: int64[5]
    input m: bool[5, 5]
    e = ids |> Embedding(10, 8, mask_zero=true)
    a = MultiHeadAttention(2, 4)(e, e, attention_mask=m, use_causal_mask=true)
    output y = GlobalAveragePooling1D()(a)
}
"""

    def model():
        ids, m = keras.Input((5,), dtype="int64"), keras.Input((5, 5), dtype="bool")
        e = L.Embedding(10, 8, mask_zero=True)(ids)
        a = L.MultiHeadAttention(2, 4)(e, e, attention_mask=m, use_causal_mask=True)
        return keras.Model([ids, m], L.GlobalAveragePooling1D()(a))

    ids = RNG.integers(1, 10, size=(3, 5))
    ids[0, 3:] = 0
    ids[1, :1] = 0
    compare(kdl, model(), {"ids": ids, "m": booleans(3, 5, 5)}, tmp_path)


def test_explicit_masks_match_keras(tmp_path):
    """mask= is the mask the layer uses and passes on, as Keras's previous_mask; with
    initial states too (Keras ignores only the automatic mask then)."""
    kdl = """model M {
    input x: float32[6, 3]
    input m: bool[6]
    input h: float32[4]
    a = LSTM(4, return_sequences=true)(x, mask=m)
    c = Bidirectional(SimpleRNN(2, return_sequences=true))(a, mask=m)
    b = GRU(4)(a, initial_state=h, mask=m)
    d = GlobalAveragePooling1D()(c)          # the mask LSTM a passed on to c
    e = GlobalAveragePooling1D()(x, mask=m)
    output y = Concatenate()(b, d, e)
}
"""

    def model():
        x, m, h = keras.Input((6, 3)), keras.Input((6,), dtype="bool"), keras.Input((4,))
        a = L.LSTM(4, return_sequences=True)(x, mask=m)
        c = L.Bidirectional(L.SimpleRNN(2, return_sequences=True))(a, mask=m)
        b = L.GRU(4)(a, initial_state=h, mask=m)
        d = L.GlobalAveragePooling1D()(c)
        e = L.GlobalAveragePooling1D()(x, mask=m)
        return keras.Model([x, m, h], L.Concatenate()([b, d, e]))

    inputs = {"x": floats(3, 6, 3), "m": booleans(3, 6), "h": floats(3, 4)}
    compare(kdl, model(), inputs, tmp_path)


# ---------------------------------------------------------------- Keras code, diagrams

CODEGEN = """model Calls {
    input enc: float32[6, 5]
    input dec: float32[4, 7]
    input m: bool[4, 6]
    input steps: bool[4]
    _, h, c = LSTM(8, return_state=true)(enc)
    d = LSTM(8, return_sequences=true)(dec, initial_state=[h, c], mask=steps)
    a = MultiHeadAttention(num_heads=2, key_dim=4)(query=d, value=enc, attention_mask=m)
    b = MultiHeadAttention(num_heads=2, key_dim=4)(d, d, use_causal_mask=true)
    output y = Dense(7, activation=softmax)(Concatenate()(a, b))
}
"""


def test_keras_code_writes_the_same_calls(tmp_path, monkeypatch):
    from tests.emit.test_codegen_keras import (
        check_ruff,
        check_structure,
        compare_with_onnx,
        generate_file,
        import_path,
    )

    src = tmp_path / "calls.kdl"
    src.write_text(CODEGEN)
    graph = graph_of(tmp_path, CODEGEN)
    out = generate_file(src, tmp_path, monkeypatch)
    code = out.read_text()
    assert "(dec, initial_state=[lstm_h, lstm_c], mask=steps)" in code
    assert "(lstm_1, enc, attention_mask=m)" in code
    assert "(lstm_1, lstm_1, use_causal_mask=True)" in code
    assert "_, lstm_h, lstm_c = " in code  # the encoder's unused output
    check_ruff(out)
    model = import_path(out).build_model()
    check_structure(graph, model)
    compare_with_onnx(graph, model, tmp_path)


def test_diagram_labels_the_keyword_tensors(tmp_path):
    from transpiler.viz.model_graph import model_digraph

    source = model_digraph(graph_of(tmp_path, CODEGEN)).source
    assert 'lstm -> lstm_1 [label="initial_state (None, 8)"]' in source
    assert '"input/m" -> multi_head_attention [label=attention_mask]' in source
    assert '"input/steps" -> lstm_1 [label=mask]' in source
