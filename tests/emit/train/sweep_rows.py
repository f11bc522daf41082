"""The catalogue training sweep's table: for every catalogue layer, the argument
combinations, ranks and data formats of its lowering tests (tests/emit/test_lower_*.py),
shrunk to small shapes. A row is `Row(call, shapes, ...)` (sweep_harness.Row); its
Keras twin is the call read as Python unless the row gives one. Adding a layer means
adding rows here: test_catalogue_training fails for a catalogue layer without one.
"""

from __future__ import annotations

from tests.emit.train.sweep_harness import Row

CF = "channels_first"
CONV = "Conv2D(3, 2, padding=same)"  # before a layer: its input stored channels-first


def rows(calls: list, shape=(5, 3), **common) -> list[Row]:
    """One row per call; a call is a string or (string, {field: value})."""
    out = []
    for call in calls:
        call, fields = (call, {}) if isinstance(call, str) else call
        out.append(Row(call, **{"shapes": (shape,), **common, **fields}))
    return out


# ------------------------------------------------------------------ core and activations

ACTIVATIONS = [
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "sigmoid",
    "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "exponential",
]  # fmt: skip

CORE = [
    *rows(["Dense(4)", "Dense(4, use_bias=false, activation=relu)"]),
    *rows(["Dense(3, activation=tanh)"], shape=(2, 3, 4)),
    *rows(["Dense(3, activation=sigmoid)"], shape=(4,)),
    *rows([f"Activation({a})" for a in ACTIVATIONS], shape=(3, 4)),
    *rows(["Embedding(10, 3)"], shape=(4,), dtype="int64", vocab=10),
    *rows(["Embedding(10, 3)"], shape=(4,), dtype="int32", vocab=10),
    *rows(["Embedding(10, 3)"], shape=(2, 3), dtype="int32", vocab=10),
    *rows(["Embedding(9, 2)"], shape=(4,), dtype="int8", vocab=9),
    *rows(["Embedding(9, 2)"], shape=(4,), dtype="uint8", vocab=9),
    *rows(["Embedding(6, 3, mask_zero=true)"], shape=(5,), dtype="int32", vocab=6),
    *rows(["Embedding(6, 3, mask_zero=true)"], shape=(5,), dtype="int64", vocab=6),
    # rate 0 (deterministic); with a rate, Keras replays ktrans's draws (random=...)
    *rows(["Dropout(0.0)", ("Dropout(0.4)", {"random": "dropout"})], shape=(3, 4)),
    *rows([("Dropout(0.5, noise_shape=[none, 1, 4])", {"random": "dropout"})], shape=(3, 4)),
    *rows(["SpatialDropout1D(0.0)"], shape=(5, 3)),
    *rows([("SpatialDropout1D(0.5)", {"random": "dropout"})], shape=(5, 3)),
    *rows(["SpatialDropout2D(0.0)"], shape=(3, 3, 2)),
    *rows([("SpatialDropout2D(0.5)", {"random": "dropout"})], (3, 3, 2)),
    *rows([("SpatialDropout2D(0.5)", {"random": "dropout"})], (2, 3, 3), fmt=CF),
    *rows(["GaussianNoise(0.0)"], shape=(3, 4)),
    *rows([("GaussianNoise(0.3)", {"random": "gaussian"})], shape=(3, 4)),
]

RELU = [
    "ReLU()", "ReLU(max_value=6.0)", "ReLU(max_value=2.5)", "ReLU(negative_slope=0.1)",
    "ReLU(threshold=0.5)", "ReLU(negative_slope=0.2, max_value=3.0)",
    "ReLU(negative_slope=0.3, threshold=1.0)", "ReLU(threshold=0.5, max_value=6.0)",
    "ReLU(negative_slope=0.1, threshold=0.5, max_value=2.0)",
]  # fmt: skip

ACTIVATION_LAYERS = [
    *rows(RELU, shape=(3, 4)),
    *rows([f"LeakyReLU(negative_slope={s})" for s in (0.3, 0.05, 0.0)], (4,)),
    *rows(["ELU(alpha=1.0)", "ELU(alpha=0.4)"], shape=(2, 4)),
    *rows(["Softmax(axis=-1)", "Softmax(axis=1)", "Softmax(axis=[1, 2])"], (3, 4)),
    *rows(["Softmax(axis=[1, 3])"], shape=(2, 3, 4)),
    *rows(["Softmax()"], shape=(3, 3, 2), pre=(CONV,)),
    *rows(["PReLU()", "PReLU(shared_axes=[1])"], shape=(3, 4)),
    *rows(["PReLU(shared_axes=[1, 2])", "PReLU(shared_axes=[2])"], shape=(4, 3, 2)),
    *rows(["PReLU(shared_axes=[1])"], shape=(4, 4, 2), pre=(CONV,)),
    *rows(["PReLU(shared_axes=[2, 3])"], shape=(2, 4, 4), pre=(CONV,), fmt=CF),
]

# ------------------------------------------------------------------ convolutions

CONVOLUTIONS = [
    *rows(["Conv1D(4, 3)", "Conv1D(4, 3, strides=2, padding=same)"], (7, 3)),
    *rows(["Conv1D(3, 4, padding=same, activation=tanh)"], (6, 2)),
    *rows(["Conv1D(3, 3, padding=causal, dilation_rate=2)"], (7, 3)),
    *rows(["Conv1D(4, 3, groups=2, use_bias=false)"], (6, 4)),
    *rows(["Conv1D(3, 2, strides=3, padding=same)"], (3, 7), fmt=CF),
    *rows(["Conv2D(3, 3)"], (5, 4, 2)),
    *rows(["Conv2D(3, [3, 2], strides=[2, 1], padding=same, activation=relu)"], (5, 4, 2)),
    *rows(["Conv2D(3, 3, strides=2, padding=same)"], (4, 4, 2)),
    *rows(["Conv2D(3, 3, dilation_rate=2, padding=same, activation=softmax)"], (5, 5, 2)),
    *rows(["Conv2D(4, 3, groups=2, padding=same, use_bias=false)"], (4, 4, 4)),
    *rows(["Conv2D(3, [2, 3], strides=2, padding=same, activation=relu)"], (2, 5, 4), fmt=CF),
    *rows(["Conv2D(6, 3, dilation_rate=[1, 2], groups=3)"], (3, 5, 6), fmt=CF),
    *rows(["Conv3D(2, 3, strides=2, padding=same)"], (3, 4, 3, 2)),
    *rows(["Conv3D(2, [2, 3, 1], activation=sigmoid)"], (2, 3, 4, 3), fmt=CF),
    *rows(["Conv1DTranspose(3, 3, strides=2)"], (4, 3)),
    *rows(["Conv1DTranspose(3, 3, strides=2, padding=same)"], (4, 3)),
    *rows(["Conv1DTranspose(3, 1, strides=3)"], (4, 2)),
    *rows(
        ["Conv1DTranspose(3, 4, strides=2, padding=same, output_padding=1)"],
        (3, 4),
        fmt=CF,
    ),
    *rows(
        [
            "Conv2DTranspose(3, 3, strides=2, padding=same, activation=relu)",
            "Conv2DTranspose(3, 4, strides=2, padding=same, use_bias=false)",
            "Conv2DTranspose(3, 3, strides=[2, 3], output_padding=[1, 2])",
            "Conv2DTranspose(2, [3, 2], strides=3, padding=same, output_padding=[2, 0])",
            "Conv2DTranspose(3, 3, dilation_rate=2, padding=same)",
        ],
        (3, 3, 2),
    ),
    *rows(["Conv2DTranspose(3, 2, strides=2)"], (2, 3, 3), fmt=CF),
    *rows(
        [
            "DepthwiseConv2D(3, depth_multiplier=2, padding=same, strides=2)",
            "DepthwiseConv2D([3, 2], dilation_rate=2, use_bias=false, activation=relu6)",
        ],
        (5, 5, 2),
    ),
    *rows(["DepthwiseConv2D(3, depth_multiplier=3, padding=same)"], (2, 4, 4), fmt=CF),
    *rows(
        [
            "SeparableConv2D(3, 3, depth_multiplier=2, padding=same, activation=relu)",
            "SeparableConv2D(3, 3, strides=2, use_bias=false)",
        ],
        (5, 5, 2),
    ),
    *rows(["SeparableConv2D(3, [2, 3], strides=2, padding=same)"], (2, 4, 5), fmt=CF),
]

# ------------------------------------------------------------------ pooling

POOLING = [
    *rows(["MaxPooling1D()", "MaxPooling1D(3, strides=2, padding=same)"], (6, 3)),
    *rows(["MaxPooling1D(2, strides=1, padding=same)"], (3, 5), fmt=CF),
    *rows(["MaxPooling2D(2)", "MaxPooling2D([3, 2], strides=[2, 1], padding=same)"], (5, 4, 2)),
    *rows(["MaxPooling2D(3, strides=2)"], (2, 5, 5), fmt=CF),
    *rows(["MaxPooling3D(2, padding=same)"], (3, 3, 2, 2)),
    *rows(["MaxPooling3D([2, 1, 3], strides=[1, 2, 2])"], (2, 3, 3, 4), fmt=CF),
    *rows(["AveragePooling1D(3)"], (6, 2)),
    *rows(["AveragePooling1D(2, strides=2, padding=same)"], (5, 3)),
    *rows(["AveragePooling2D(3, strides=1, padding=same)"], (4, 4, 2)),
    *rows(["AveragePooling2D([2, 3], strides=[1, 2])"], (2, 4, 5), fmt=CF),
    *rows(["AveragePooling2D(2, padding=same)"], (2, 5, 3), fmt=CF),
    *rows(["AveragePooling3D(2, strides=2, padding=same)"], (3, 3, 2, 2)),
    *rows(["AveragePooling3D(2)"], (2, 2, 3, 4), fmt=CF),
    *rows(["MaxPooling2D(2)"], (4, 4, 3), pre=(CONV,)),
    *rows(["AveragePooling2D(2, padding=same)"], (3, 3, 3), pre=(CONV,)),
]
for _rank in (1, 2, 3):
    _spatial = (4, 3, 2)[:_rank]
    for _kind in ("Max", "Average"):
        for _keep in ("false", "true"):
            _call = f"Global{_kind}Pooling{_rank}D(keepdims={_keep})"
            POOLING += rows([_call], (*_spatial, 3))
            POOLING += rows([_call], (3, *_spatial), fmt=CF)
POOLING += rows(["GlobalAveragePooling2D()"], (3, 3, 2), pre=(CONV,))

# ------------------------------------------------------------------ reshaping

RESHAPING = [
    *rows(["Flatten()"], (3, 2, 2)),
    *rows(["Flatten()"], (3, 2, 2), fmt=CF),
    *rows(["Flatten()"], (4, 2), fmt=CF),
    *rows(["Flatten()"], (3, 4, 2), pre=(CONV,)),
    *rows(["Flatten()"], (2, 3, 4), pre=(CONV,), fmt=CF),
    *rows(["Reshape([6, 4])"], (4, 6)),
    *rows(["Reshape([-1, 2, 3])"], (4, 3, 2)),
    *rows(["Reshape([-1, 3])"], (3, 4, 3), pre=(CONV,)),
    *rows(["Permute([2, 1])"], (4, 3)),
    *rows(["Permute([3, 1, 2])"], (3, 4, 2)),
    *rows(["Permute([3, 1, 2])", "Permute([2, 3, 1])"], (3, 4, 3), pre=(CONV,)),
    *rows(["RepeatVector(3)"], (4,)),
    *rows(["ZeroPadding1D()", "ZeroPadding1D([1, 3])"], (4, 3)),
    *rows(["ZeroPadding1D(2)"], (3, 4), fmt=CF),
    *rows(["ZeroPadding2D([[1, 2], [0, 3]])"], (3, 4, 2)),
    *rows(["ZeroPadding2D([2, 1])"], (2, 3, 4), fmt=CF),
    *rows(["ZeroPadding2D([[0, 1], [2, 0]])"], (3, 4, 3), pre=(CONV,)),
    *rows(["Cropping1D([1, 2])", "Cropping1D([2, 0])"], (6, 3)),
    *rows(["Cropping2D([[1, 0], [2, 1]])"], (4, 5, 2)),
    *rows(["Cropping2D(1)"], (2, 4, 5), fmt=CF),
    *rows(["Cropping2D([[0, 2], [1, 1]])"], (4, 5, 3), pre=(CONV,)),
    *rows(["UpSampling1D(3)", "UpSampling1D()"], (4, 3)),
    *rows(["UpSampling2D([2, 3])"], (3, 2, 2)),
    *rows(["UpSampling2D()"], (2, 3, 2), fmt=CF),
    *rows(["UpSampling2D([2, 3], interpolation=bilinear)"], (3, 2, 2)),
    *rows(["UpSampling2D(3, interpolation=bilinear)"], (2, 3, 2), fmt=CF),
    *rows(["UpSampling2D(interpolation=bilinear)"], (3, 3, 3), pre=(CONV,)),
    *rows(["UpSampling2D([3, 2])"], (3, 3, 3), pre=(CONV,)),
]
