"""The catalogue training sweep's table, continued: merging, normalization, recurrent
layers and wrappers, attention, and masked inputs (see sweep_rows.py)."""

from __future__ import annotations

from tests.emit.train.sweep_harness import Row, keras_twin
from tests.emit.train.sweep_rows import CF, CONV, rows

MASKING = "Embedding(6, 3, mask_zero=true)"

# ------------------------------------------------------------------ merging

MERGING = [
    *[Row(f"{m}()", shapes=((3, 4), (3, 4))) for m in ("Add", "Subtract", "Multiply")],
    *[Row(f"{m}()", shapes=((3, 4), (3, 4))) for m in ("Average", "Maximum", "Minimum")],
    *[
        Row(f"{m}()", shapes=((3, 4), (1, 4), (3, 1)))
        for m in ("Add", "Multiply", "Average", "Maximum", "Minimum")
    ],
    *[Row(f"{m}()", shapes=((3, 4), (4,))) for m in ("Add", "Average", "Subtract")],
    Row("Concatenate(axis=-1)", shapes=((3, 4), (3, 2), (3, 4))),
    Row("Concatenate(axis=1)", shapes=((3, 4), (2, 4))),
    Row("Concatenate(axis=2)", shapes=((2, 3, 4), (2, 3, 4))),
    Row("Add()", shapes=((3, 3, 2), (3, 3, 2)), pre=(CONV,)),
    Row("Concatenate()", shapes=((3, 3, 2), (3, 3, 2)), pre=(CONV,)),
    *[
        Row(f"Dot(axes={axes}, normalize={norm})", shapes=shapes)
        for axes, norm, shapes in [
            ("1", "false", ((4,), (4,))),
            ("-1", "true", ((4,), (4,))),
            ("[2, 1]", "false", ((3, 4), (4, 5))),
            ("[1, 2]", "true", ((4, 3), (5, 4))),
            ("2", "false", ((3, 4), (5, 4))),
            ("[1, 1]", "false", ((4, 3), (4,))),
            ("[3, 2]", "true", ((2, 3, 4), (3, 4, 2))),
        ]
    ],
]

# ------------------------------------------------------------------ normalization

BN = [
    "BatchNormalization()",
    "BatchNormalization(momentum=0.9, epsilon=0.01)",
    "BatchNormalization(axis=1, center=false)",
    "BatchNormalization(center=false, scale=false)",
    "BatchNormalization(trainable=false)",
]
LN = [
    "LayerNormalization()",
    "LayerNormalization(epsilon=0.1, center=false)",
    "LayerNormalization(axis=[1, 2])",
    "LayerNormalization(rms_scaling=true)",
]
GN = ["GroupNormalization(groups=2)", "GroupNormalization(groups=-1, center=false)"]

NORMALIZATION = [
    *rows(["BatchNormalization()"], (4,)),
    *rows(BN, (3, 4)),
    *rows(["BatchNormalization(axis=-2, scale=false)"], (3, 4, 2)),
    # first on an image: the channel axis stored last (issue 10)
    *rows(["BatchNormalization()", "BatchNormalization(axis=1)"], (3, 3, 2)),
    *rows(["BatchNormalization(momentum=0.8)"], (4, 4, 3), pre=(CONV,)),
    *rows(["BatchNormalization(axis=1)"], (2, 4, 4), pre=(CONV,), fmt=CF),
    *rows(["BatchNormalization()"], (4, 3), pre=("LSTM(3, return_sequences=true)",)),
    *rows(LN, (3, 4)),
    *rows(["LayerNormalization(axis=[-2, -1], scale=false)"], (2, 3, 4)),
    *rows(["LayerNormalization(axis=[1, 3])"], (3, 2, 4)),
    *rows(["LayerNormalization()"], (3, 3, 2), pre=(CONV,)),
    *rows(["LayerNormalization(axis=[1, 2, 3])"], (3, 3, 2), pre=(CONV,)),
    *rows(["GroupNormalization(groups=2)"], (4,)),
    *rows(GN, (3, 4)),
    *rows(["GroupNormalization(groups=1, scale=false)"], (3, 2, 4)),
    *rows(["GroupNormalization(groups=2, axis=1)"], (4, 3, 3)),
    *rows(["GroupNormalization(groups=2, axis=-2, epsilon=0.1)"], (2, 4, 3)),
    *rows(["GroupNormalization(groups=3)"], (3, 3, 2), pre=("Conv2D(6, 2)",)),
    *rows(["GroupNormalization(groups=2, axis=1)"], (2, 4, 4), pre=("Conv2D(4, 2)",), fmt=CF),
]

# ------------------------------------------------------------------ recurrent

RECURRENT_CALLS = [
    "SimpleRNN(3)",
    "SimpleRNN(3, return_sequences=true, go_backwards=true, activation=relu)",
    "SimpleRNN(3, use_bias=false, go_backwards=true)",
    "SimpleRNN(3, activation=gelu)",
    "LSTM(3)",
    "LSTM(3, return_sequences=true)",
    "LSTM(3, return_sequences=true, go_backwards=true)",
    "LSTM(3, go_backwards=true, use_bias=false)",
    "LSTM(3, activation=relu, recurrent_activation=hard_sigmoid, return_sequences=true)",
    "LSTM(3, activation=leaky_relu, unroll=true)",
    "LSTM(3, activation=elu, recurrent_activation=hard_sigmoid)",
    "LSTM(3, activation=linear, recurrent_activation=softsign, return_sequences=true)",
    "LSTM(3, activation=relu6, return_sequences=true)",
    "LSTM(3, recurrent_activation=silu, go_backwards=true, use_bias=false)",
    "GRU(3)",
    "GRU(3, activation=hard_sigmoid)",
    "GRU(3, reset_after=false)",
    "GRU(3, reset_after=false, return_sequences=true, go_backwards=true)",
    "GRU(3, return_sequences=true, go_backwards=true, use_bias=false)",
    "GRU(3, recurrent_activation=hard_sigmoid, activation=softplus)",
    "GRU(3, activation=gelu, return_sequences=true)",
    "GRU(3, recurrent_activation=mish, use_bias=false, return_sequences=true)",
]

STATES = [  # (layer, state count, arguments)
    ("LSTM", 2, "return_sequences=true"),
    ("LSTM", 2, "go_backwards=true"),
    ("GRU", 1, "return_sequences=true, go_backwards=true"),
    ("GRU", 1, "reset_after=false, activation=gelu"),
    ("SimpleRNN", 1, "go_backwards=true"),
]


def _with_initial_state(call: str):
    """Keras's call with initial states: the first tensor is the sequence."""

    def keras_call(keras, fmt, tensors):
        return keras_twin(call, keras, fmt)(tensors[0], initial_state=tensors[1:])

    return keras_call


def _state_rows() -> list[Row]:
    out = []
    for cls, n, args in STATES:
        call = f"{cls}(3, return_state=true, {args})"
        shapes = ((4, 3), *[(3,)] * n)
        keras = _with_initial_state(call)
        out.append(Row(call, shapes, outputs=1 + n, keras=keras, id=f"{call}-initial_state"))
    return out


BIDIRECTIONAL = [
    "Bidirectional(LSTM(3))",
    "Bidirectional(LSTM(3, return_sequences=true))",
    "Bidirectional(GRU(3, return_sequences=true), merge_mode=sum)",
    "Bidirectional(SimpleRNN(3), merge_mode=mul)",
    "Bidirectional(GRU(3, reset_after=false), merge_mode=ave)",
    "Bidirectional(LSTM(3, return_sequences=true, activation=gelu), merge_mode=mul)",
    ("Bidirectional(GRU(3), merge_mode=none)", {"outputs": 2}),
    ("Bidirectional(GRU(3, return_sequences=true), merge_mode=none)", {"outputs": 2}),
    (
        "Bidirectional(LSTM(3, return_sequences=true), backward_layer="
        "LSTM(3, return_sequences=true, go_backwards=true, activation=relu))"
    ),
]

RECURRENT = [
    *rows([c for c in RECURRENT_CALLS if c.startswith("SimpleRNN")], (4, 3)),
    *rows([c for c in RECURRENT_CALLS if c.startswith("LSTM")], (4, 3)),
    *rows([c for c in RECURRENT_CALLS if c.startswith("GRU")], (4, 3)),
    *_state_rows(),
    *rows(BIDIRECTIONAL, (4, 3)),
    *rows(["TimeDistributed(Dense(3, activation=relu))"], (3, 4)),
    *rows(["TimeDistributed(Dense(3))"], (2, 3, 4)),
    *rows(["TimeDistributed(Conv2D(2, 2, padding=same))"], (2, 3, 3, 2)),
    *rows(["TimeDistributed(LSTM(2, return_sequences=true))"], (2, 3, 2)),
    *rows(["TimeDistributed(BatchNormalization())"], (3, 4)),
    *rows(["TimeDistributed(BatchNormalization(axis=1, momentum=0.8))"], (2, 3, 2, 2)),
    *rows(["LSTM(3, return_sequences=true)"], (5, 3), pre=("Conv1D(3, 2, padding=same)",)),
]

# ------------------------------------------------------------------ attention


def _attention(args: str):
    """Keras's MultiHeadAttention takes query, value and key as separate arguments."""

    def keras_call(keras, fmt, tensors):
        return keras_twin(f"MultiHeadAttention({args})", keras, fmt)(*tensors)

    return keras_call


ATTENTION = [
    Row(f"MultiHeadAttention({args})", shapes=shapes, keras=_attention(args), random=random)
    for args, shapes, random in [
        ("num_heads=2, key_dim=2", ((4, 4), (4, 4)), ""),
        ("num_heads=2, key_dim=3", ((3, 4), (5, 3)), ""),
        ("num_heads=2, key_dim=2, value_dim=3", ((3, 4), (4, 3), (4, 2)), ""),
        ("num_heads=1, key_dim=3, use_bias=false", ((4, 4), (4, 4)), ""),
        ("num_heads=2, key_dim=2, output_shape=[2, 3]", ((3, 4), (4, 4)), ""),
        ("num_heads=2, key_dim=2, use_gate=true", ((4, 4), (4, 4)), ""),
        ("num_heads=2, key_dim=2, dropout=0.3", ((4, 4), (3, 4)), "attention"),
        ("num_heads=2, key_dim=2, sliding_window=2", ((5, 3), (5, 3)), ""),
        ("num_heads=2, key_dim=2", ((2, 3, 4), (3, 2, 3)), ""),
        ("num_heads=2, key_dim=2, output_shape=5", ((2, 2, 3), (2, 2, 3)), ""),
    ]
]

# ------------------------------------------------------------------ masked inputs

MASKED = rows(
    [
        "LSTM(3)",
        "GRU(3, go_backwards=true)",
        "SimpleRNN(3, return_sequences=true)",
        "Bidirectional(LSTM(2), merge_mode=sum)",
        "GlobalAveragePooling1D()",
        "TimeDistributed(Dense(2))",
        "Dense(2)",
        "BatchNormalization()",
        "TimeDistributed(BatchNormalization(momentum=0.9))",
    ],
    (5,),
    dtype="int32",
    vocab=6,
    pre=(MASKING,),
)
# The query has no padding: for a query step with nothing to attend to, Keras's torch
# backend (torch's scaled_dot_product_attention with an additive mask) computes the
# uniform average forwards but a gradient as if each masked key had weight 1, not 1/n;
# ktrans differentiates the uniform average it computes.
MASKED.append(
    Row(
        "MultiHeadAttention(num_heads=2, key_dim=2)",
        shapes=((5,), (5,)),
        dtype="int64",
        vocab=6,
        low=(1, 0),
        pre=(MASKING,),
        keras=_attention("num_heads=2, key_dim=2"),
    )
)
