"""What the merged language brought to the generated module: keyword call arguments
(`initial_state=`, `mask=`, `attention_mask=`, `use_causal_mask=`) written as the
module's own calls and computing what Keras computes, the seq2seq example against its
Keras twin, the merge helpers (`add([a, b])`...) giving the very code of the merge
layers, Keras's autocast of float64/float16 inputs to float32, and Dropout's noise_shape
with `none` entries.

The ONNX-side tables of these (tests/emit/test_call_keywords.py, test_merge_helpers.py)
also run against this target in test_layers_match_keras.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.emit.torch.harness import (
    compare_torch,
    compare_with_keras_target,
    load_graph,
    run_torch,
    torch_model,
)

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
L = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[3]
RNG = np.random.default_rng(5)


def ruff(tmp_path, code: str) -> None:
    from tests.emit.test_codegen_keras import check_ruff

    path = tmp_path / "generated_torch.py"
    path.write_text(code)
    check_ruff(path)


# ---------------------------------------------------------------- keyword call arguments


def test_keyword_calls_are_the_modules_own_calls(tmp_path):
    """tests/emit/test_call_keywords.py's file (encoder states into a decoder with a
    mask=, attention with attention_mask= and use_causal_mask=): the module passes them
    as the helper modules' keyword arguments, the float mask= becomes bool (nonzero
    keeps) once, and the outputs equal the Keras target's model on the same weights."""
    from tests.emit.parity import randomize_keras
    from tests.emit.test_call_keywords import CODEGEN

    program, graph, src = load_graph(CODEGEN.replace("bool[4]", "float32[4]"), tmp_path)
    code, _ = compare_with_keras_target(program, graph, str(src), randomize_keras, batch=3)
    assert "_, lstm_h, lstm_c = self.lstm(enc)" in code
    assert "steps_mask = steps != 0" in code
    assert "(dec, mask=steps_mask, initial_state=[lstm_h, lstm_c])" in code
    assert "attention_mask=m," in code
    assert "use_causal_mask=True," in code
    ruff(tmp_path, code)


def test_explicit_masks_with_a_dropped_feature_mask(tmp_path):
    """A float mask= (0/1) on layers whose input already carries a Keras mask: the call's
    mask replaces it (for the layer and what it passes on); with initial states and no
    mask= the input's mask goes unused but travels on with the returned sequence."""
    kdl = """model M {
    input ids: int64[6]
    input m: float32[6]
    input h: float32[4]
    input g: float32[2]
    e = ids |> Embedding(10, 3, mask_zero=true)
    a = LSTM(4, return_sequences=true)(e, mask=m)
    b = GRU(4, return_sequences=true)(e, initial_state=h)
    c = Bidirectional(GRU(2))(a, initial_state=[g, g], mask=m)
    output y = Concatenate()(GlobalAveragePooling1D()(a), GlobalAveragePooling1D()(b), c)
}
"""

    def model():
        ids, m = keras.Input((6,), dtype="int64"), keras.Input((6,))
        h, g = keras.Input((4,)), keras.Input((2,))
        e = L.Embedding(10, 3, mask_zero=True)(ids)
        a = L.LSTM(4, return_sequences=True)(e, mask=m)
        b = L.GRU(4, return_sequences=True)(e, initial_state=h)
        c = L.Bidirectional(L.GRU(2))(a, initial_state=[g, g], mask=m)
        pooled = [L.GlobalAveragePooling1D()(a), L.GlobalAveragePooling1D()(b)]
        return keras.Model([ids, m, h, g], L.Concatenate()([*pooled, c]))

    ids = RNG.integers(1, 10, size=(3, 6))
    ids[0, 4:] = 0
    ids[1, :2] = 0
    m = (RNG.random((3, 6)) < 0.7).astype(np.float32)
    m[:, 0] = 1.0
    inputs = {
        "ids": ids,
        "m": m,
        "h": RNG.normal(size=(3, 4)).astype(np.float32),
        "g": RNG.normal(size=(3, 2)).astype(np.float32),
    }
    compare_torch(kdl, model(), inputs, tmp_path)


def test_a_mask_given_to_a_channels_first_tensor(tmp_path):
    """A conv output (stored channels-first) read with mask= by two layers and plainly by
    a third: each gets the permute it needs once, the mask only where it was given."""
    kdl = """model M {
    input x: float32[7, 3]
    input m: bool[7]
    c = x |> Conv1D(4, 3, padding=same)
    a = GlobalAveragePooling1D()(c, mask=m)
    b = LSTM(2)(c, mask=m)
    output y = Concatenate()(a, b, GlobalAveragePooling1D()(c), Flatten()(c))
}
"""

    def model():
        x, m = keras.Input((7, 3)), keras.Input((7,), dtype="bool")
        c = L.Conv1D(4, 3, padding="same")(x)
        a = L.GlobalAveragePooling1D()(c, mask=m)
        b = L.LSTM(2)(c, mask=m)
        rest = [L.GlobalAveragePooling1D()(c), L.Flatten()(c)]
        return keras.Model([x, m], L.Concatenate()([a, b, *rest]))

    m = RNG.random((3, 7)) < 0.6
    m[:, 0] = True
    inputs = {"x": RNG.normal(size=(3, 7, 3)).astype(np.float32), "m": m}
    compare_torch(kdl, model(), inputs, tmp_path)
    from tests.emit.torch.test_codegen_torch import _permutes

    program, graph, src = load_graph(kdl, tmp_path)
    _, code = torch_model(graph, program, str(src))
    assert _permutes(code) == 2  # to channels-first for the conv, back once


@pytest.mark.parametrize(("len_in", "len_out"), [(7, 5), (3, 9)])
def test_seq2seq_example_matches_its_keras_twin(tmp_path, len_in, len_out):
    """examples/lstm_seq2seq.kdl against the Keras example's model (tests/test_examples.py)
    at two pairs of run-time lengths: the decoder starts from the encoder's states. The
    weights are the examples' (Glorot kernels, random biases): N(0, 0.5) kernels would
    saturate 256 units and a softmax over 93, and compare rounding more than meaning."""
    from tests.emit.test_lower_examples import randomize
    from tests.test_examples import keras_lstm_seq2seq

    text = (ROOT / "examples" / "lstm_seq2seq.kdl").read_text()
    inputs = {
        "encoder_inputs": np.eye(71, dtype=np.float32)[RNG.integers(0, 71, (2, len_in))],
        "decoder_inputs": np.eye(93, dtype=np.float32)[RNG.integers(0, 93, (2, len_out))],
    }
    twin = keras_lstm_seq2seq()
    randomize(twin)
    ours, _ = compare_torch(text, twin, inputs, tmp_path, randomize=False)
    assert ours[0].shape == (2, len_out, 93)
    program, graph, src = load_graph(text, tmp_path)
    _, code = torch_model(graph, program, str(src))
    assert "_, lstm_h, lstm_c = self.lstm(encoder_inputs)" in code
    assert "initial_state=[lstm_h, lstm_c]" in code


# ---------------------------------------------------------------- merge helpers

EXPLICIT = {
    "add([ea, eb])": "Add()(ea, eb)",
    "maximum([ea, eb])": "Maximum()(ea, eb)",
    "multiply([ea, eb])": "Multiply()(ea, eb)",
    "average([ea, eb])": "Average()(ea, eb)",
    "subtract([ea, eb])": "Subtract()(ea, eb)",
    "minimum([ea, eb])": "Minimum()(ea, eb)",
    "concatenate([s, mx, p, av, d, mn], axis=-1)": "Concatenate(axis=-1)(s, mx, p, av, d, mn)",
    "concatenate([s, mn], axis=1)": "Concatenate(axis=1)(s, mn)",
    "dot([ea, eb], axes=2)": "Dot(axes=2)(ea, eb)",
    "[s, mn] |> add": "Add()(s, mn)",
}


def test_merge_helpers_write_the_merge_layers_code(tmp_path):
    """tests/emit/test_merge_helpers.py's file and the same model with the merge layers
    spelled out give the same module, character for character (their outputs against
    Keras, masks included, run in test_layers_match_keras.py)."""
    from tests.emit.test_merge_helpers import MERGES

    spelled = MERGES
    for helper, layer in EXPLICIT.items():
        assert helper in spelled
        spelled = spelled.replace(helper, layer)
    codes = []
    for text in (MERGES, spelled):
        program, graph, src = load_graph(text, tmp_path)
        codes.append(torch_model(graph, program, None)[1])
    assert codes[0] == codes[1]
    assert "self.add = Add()" in codes[0] and "self.add_1 = Add()" in codes[0]
    assert "self.concatenate_1 = Concatenate(dim=1)" in codes[0]


def test_tensors_by_name_give_the_code_of_tensors_by_position(tmp_path):
    by_name = """model M {
    input x: float32[5, 3]
    input h: float32[4]
    a = Dense(3)(inputs=x)
    b = LSTM(4, return_sequences=true)(sequences=a, initial_state=[h, h])
    output y = Add()(inputs=[b, MultiHeadAttention(2, 2)(value=b, query=b)])
}
"""
    by_position = (
        by_name.replace("(inputs=x)", "(x)")
        .replace("(sequences=a, initial_state=[h, h])", "(a, h, h)")
        .replace("(value=b, query=b)", "(b, b)")
        .replace("(inputs=[b, M", "(b, M")
        .replace("b)])", "b))")
    )
    assert by_position != by_name
    codes = []
    for text in (by_name, by_position):
        program, graph, _ = load_graph(text, tmp_path)
        codes.append(torch_model(graph, program, None)[1])
    assert codes[0] == codes[1]


# ---------------------------------------------------------------- dtypes

AUTOCAST = """model M {
    input x: %(dtype)s[5, 3]
    input z: %(dtype)s[5, 3]
    d = x |> Dense(4)
    c = x |> Conv1D(2, 3, padding=same)
    r = z * 2.0 |> LSTM(3, return_sequences=true)
    n = Activation(tanh)(z)
    output y = Concatenate()(d, c, r, n, z)
}
"""


def keras_autocast(dtype: str):
    x, z = keras.Input((5, 3), dtype=dtype), keras.Input((5, 3), dtype=dtype)
    d = L.Dense(4)(x)
    c = L.Conv1D(2, 3, padding="same")(x)
    r = L.LSTM(3, return_sequences=True)(z * 2.0)
    n = L.Activation("tanh")(z)
    return keras.Model([x, z], L.Concatenate()([d, c, r, n, z]))


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_float_inputs_are_cast_to_float32_as_keras_does(tmp_path, dtype):
    """Every layer gets float32: x, read by layers only, is cast once (`x = x.float()`);
    z is read by an expression too (`z * 2.0`, a Keras op, keeps the input's precision),
    so each layer reading it casts it. The output is float32, as Keras's."""
    kdl = AUTOCAST % {"dtype": dtype}
    inputs = {
        "x": RNG.normal(size=(3, 5, 3)).astype(dtype),
        "z": RNG.normal(size=(3, 5, 3)).astype(dtype),
    }
    ours, theirs = compare_torch(kdl, keras_autocast(dtype), inputs, tmp_path)
    assert ours[0].dtype == theirs[0].dtype == np.float32
    program, graph, src = load_graph(kdl, tmp_path)
    _, code = torch_model(graph, program, str(src))
    assert "x = x.float()\n        dense = self.dense(x)\n" in code
    assert code.count(".float()") == 4  # x; z * 2.0 for the LSTM; z for Activation, Concatenate


def test_bfloat16_inputs_are_cast_too(tmp_path):
    """numpy has no bfloat16: the module takes a torch tensor, as a PyTorch user has."""
    kdl = "model M {\n    input x: bfloat16[3]\n    Dense(2)\n}\n"
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    x = torch.randn(4, 3).to(torch.bfloat16)
    y = net(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, net.dense(x.float()))


# ---------------------------------------------------------------- Dropout's noise_shape


@pytest.mark.parametrize(
    ("noise", "shared"), [("[none, 1, 4]", (1,)), ("[none, 6, 1]", (2,)), ("[1, none, 4]", (0,))]
)
def test_dropout_noise_shape_with_none_entries(tmp_path, noise, shared):
    """none takes the input's size on that axis, 1 shares the mask along it; at
    inference the layer equals Keras's (the identity)."""
    kdl = f"model M {{\n    input x: float32[6, 4]\n    Dropout(0.5, noise_shape={noise})\n}}\n"
    program, graph, src = load_graph(kdl, tmp_path)
    net, _ = torch_model(graph, program, str(src))
    net.train()
    torch.manual_seed(0)
    y = net(torch.ones(16, 6, 4))
    kept = y != 0
    for axis in range(3):
        first = kept.narrow(axis, 0, 1)
        assert (kept == first).all().item() == (axis in shared), axis
    assert torch.allclose(y[kept], torch.tensor(2.0))
    assert 0.3 < kept.float().mean().item() < 0.7

    net.eval()
    x = RNG.normal(size=(3, 6, 4)).astype(np.float32)
    inp = keras.Input((6, 4))
    keras_noise = [None if n == "none" else int(n) for n in noise.strip("[]").split(", ")]
    model = keras.Model(inp, L.Dropout(0.5, noise_shape=keras_noise)(inp))
    (ours,) = run_torch(net, graph, {"x": x})
    np.testing.assert_array_equal(ours, model(x, training=False))
