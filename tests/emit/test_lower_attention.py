"""MultiHeadAttention: ONNX equals Keras 3 (inference): self- and cross-attention, a
separate key, value_dim, no biases, output_shape, use_gate, sliding_window, rank-4 inputs
(attention over both middle axes) and a dynamic sequence length; other attention_axes are
refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.parity import compare

keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(11)


def rand(*shape):
    return RNG.normal(size=(3, *shape)).astype(np.float32)


def dims(shape) -> str:
    return ", ".join(str(d) for d in shape)


def run(tmp_path, args: str, kwargs: dict, shapes: list[tuple], runtime="ort", feed=None):
    """MultiHeadAttention(args) called on inputs of `shapes` (query, value[, key])."""
    names = ["q", "v", "k"][: len(shapes)]
    kdl = (
        "model M {\n"
        + "".join(f" input {n}: float32[{dims(s)}]\n" for n, s in zip(names, shapes))
        + f" output y = MultiHeadAttention({args})({', '.join(names)})\n}}\n"
    )
    ins = [keras.Input(tuple(None if d == "?" else d for d in s)) for s in shapes]
    km = keras.Model(ins, layers.MultiHeadAttention(**kwargs)(*ins))
    feed = feed or {}
    values = {
        n: rand(*(feed.get(n, 5) if d == "?" else d for d in s)) for n, s in zip(names, shapes)
    }
    compare(kdl, km, values, tmp_path, runtime=runtime)


CASES = [
    ("self", "num_heads=2, key_dim=3", {"num_heads": 2, "key_dim": 3}, [(5, 8), (5, 8)]),
    ("cross", "num_heads=3, key_dim=4", {"num_heads": 3, "key_dim": 4}, [(4, 6), (7, 5)]),
    (
        "key",
        "num_heads=2, key_dim=3, value_dim=5",
        {"num_heads": 2, "key_dim": 3, "value_dim": 5},
        [(4, 6), (7, 5), (7, 3)],
    ),
    (
        "no_bias",
        "num_heads=1, key_dim=4, use_bias=false",
        {"num_heads": 1, "key_dim": 4, "use_bias": False},
        [(5, 6), (5, 6)],
    ),
    (
        "output_shape",
        "num_heads=2, key_dim=2, output_shape=[2, 3]",
        {"num_heads": 2, "key_dim": 2, "output_shape": (2, 3)},
        [(4, 6), (5, 6)],
    ),
    (
        "gate",
        "num_heads=2, key_dim=3, use_gate=true, dropout=0.1",
        {"num_heads": 2, "key_dim": 3, "use_gate": True, "dropout": 0.1},
        [(5, 6), (5, 6)],
    ),
    (
        "sliding_window",
        "num_heads=2, key_dim=3, sliding_window=2",
        {"num_heads": 2, "key_dim": 3, "sliding_window": 2},
        [(6, 4), (6, 4)],
    ),
    ("rank4", "num_heads=2, key_dim=3", {"num_heads": 2, "key_dim": 3}, [(2, 3, 4), (3, 2, 5)]),
    (
        "rank4_output_shape",
        "num_heads=2, key_dim=3, output_shape=7",
        {"num_heads": 2, "key_dim": 3, "output_shape": 7},
        [(2, 3, 4), (2, 3, 4)],
    ),
]


@pytest.mark.parametrize(
    ("args", "kwargs", "shapes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_multi_head_attention(tmp_path, args, kwargs, shapes):
    run(tmp_path, args, kwargs, shapes)


def test_dynamic_lengths(tmp_path):
    run(
        tmp_path,
        "num_heads=2, key_dim=3",
        {"num_heads": 2, "key_dim": 3},
        [("?", 4), ("?", 6)],
        feed={"q": 5, "v": 7},
    )


def test_dynamic_sliding_window(tmp_path):
    run(
        tmp_path,
        "num_heads=2, key_dim=2, sliding_window=3",
        {"num_heads": 2, "key_dim": 2, "sliding_window": 3},
        [("?", 4), ("?", 4)],
        feed={"q": 6, "v": 6},
    )


def test_reference_evaluator(tmp_path):
    run(
        tmp_path,
        "num_heads=2, key_dim=3",
        {"num_heads": 2, "key_dim": 3},
        [(4, 6), (5, 6)],
        runtime="reference",
    )


def test_other_attention_axes_are_refused(tmp_path):
    from transpiler.emit.onnx import build_model
    from transpiler.errors import KdlErrors
    from transpiler.graph import load

    src = tmp_path / "m.kdl"
    src.write_text(
        "model M {\n input q: float32[2, 3, 4]\n"
        " output y = MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=[2])(q, q)\n}\n"
    )
    _, graphs = load(str(src))
    with pytest.raises(KdlErrors, match=r"attention_axes=\[2\]: only the default"):
        build_model(next(iter(graphs.values())))
