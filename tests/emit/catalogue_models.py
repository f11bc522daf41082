"""One small model per catalogue layer (and per weight layout a layer's lowering can
choose), for the tests that must cover the whole catalogue: Keras-layout recipes, Keras
configs and archives. `CASES` maps a case id to a .kdl model; the first word of the id is
the layer class, and `test_every_catalogue_layer_has_a_case` keeps the table complete.
"""

from __future__ import annotations

IMG = "input x: float32[6, 6, 3]"
SEQ = "input x: float32[5, 4]"
VEC = "input x: float32[6]"
TWO = "input a: float32[4]\n    input b: float32[4]"
VOL = "input x: float32[4, 4, 4, 2]"

# id -> (inputs, body): the body's last value is the model's output
_CASES = {
    "Activation": (VEC, "Activation(tanh)"),
    "Add": (TWO, "output Add()(a, b)"),
    "Average": (TWO, "output Average()(a, b)"),
    "AveragePooling1D": (SEQ, "AveragePooling1D(2)"),
    "AveragePooling2D": (IMG, "AveragePooling2D(2)"),
    "AveragePooling3D": (VOL, "AveragePooling3D(2)"),
    "BatchNormalization-features": (VEC, "BatchNormalization()"),
    "BatchNormalization-after-conv": (IMG, "Conv2D(4, 3)\n    BatchNormalization()"),
    "Bidirectional-LSTM": (SEQ, "Bidirectional(LSTM(3, return_sequences=true))"),
    "Bidirectional-GRU-backward-layer": (
        SEQ,
        "Bidirectional(GRU(2, reset_after=false), merge_mode=sum,\n"
        "                  backward_layer=GRU(2, go_backwards=true, reset_after=false))",
    ),
    "Concatenate": (TWO, "output Concatenate()(a, b)"),
    "Conv1D": (SEQ, "Conv1D(3, 2, padding=causal)"),
    "Conv1DTranspose": (SEQ, "Conv1DTranspose(3, 2, strides=2)"),
    "Conv2D": (IMG, "Conv2D(4, (3, 2), strides=2, padding=same)"),
    "Conv2D-groups": (IMG.replace("3]", "4]"), "Conv2D(6, 3, groups=2, use_bias=false)"),
    "Conv2DTranspose": (IMG, "Conv2DTranspose(2, 3, strides=2)"),
    "Conv3D": (VOL, "Conv3D(3, 2)"),
    "Cropping1D": (SEQ, "Cropping1D(1)"),
    "Cropping2D": (IMG, "Cropping2D(1)"),
    "Dense": (VEC, "Dense(4, activation=relu)"),
    "Dense-no-bias": (VEC, "Dense(3, use_bias=false, trainable=false)"),
    "DepthwiseConv2D": (IMG, "DepthwiseConv2D(3, depth_multiplier=2)"),
    "Dot": ("input a: float32[3, 4]\n    input b: float32[3, 4]", "output Dot(axes=2)(a, b)"),
    "Dropout": (VEC, "Dropout(0.5)"),
    "ELU": (VEC, "ELU(0.5)"),
    "Embedding": ("input x: int64[7]", "Embedding(60, 3)"),
    "Flatten": (IMG, "Flatten()"),
    "GRU": (SEQ, "GRU(3)"),
    "GRU-reset-before": (SEQ, "GRU(3, reset_after=false, return_sequences=true)"),
    "GRU-unrolled": (SEQ, "GRU(3, activation=gelu, reset_after=false)"),
    "GRU-unrolled-reset-after": (SEQ, "GRU(3, recurrent_activation=gelu)"),
    "GaussianNoise": (VEC, "GaussianNoise(0.1)"),
    "GlobalAveragePooling1D": (SEQ, "GlobalAveragePooling1D()"),
    "GlobalAveragePooling2D": (IMG, "GlobalAveragePooling2D()"),
    "GlobalAveragePooling3D": (VOL, "GlobalAveragePooling3D()"),
    "GlobalMaxPooling1D": (SEQ, "GlobalMaxPooling1D()"),
    "GlobalMaxPooling2D": (IMG, "GlobalMaxPooling2D()"),
    "GlobalMaxPooling3D": (VOL, "GlobalMaxPooling3D()"),
    "GroupNormalization": (IMG.replace("3]", "4]"), "GroupNormalization(2)"),
    "LSTM": (SEQ, "LSTM(3)"),
    "LSTM-sequences": (SEQ, "LSTM(2, return_sequences=true, go_backwards=true)"),
    "LSTM-unrolled": (SEQ, "LSTM(3, activation=gelu)"),
    "LayerNormalization": (SEQ, "LayerNormalization()"),
    "LayerNormalization-axes": (IMG, "LayerNormalization(axis=[1, 3])"),
    "LeakyReLU": (VEC, "LeakyReLU(0.1)"),
    "MaxPooling1D": (SEQ, "MaxPooling1D(2)"),
    "MaxPooling2D": (IMG, "MaxPooling2D(2)"),
    "MaxPooling3D": (VOL, "MaxPooling3D(2)"),
    "Maximum": (TWO, "output Maximum()(a, b)"),
    "Minimum": (TWO, "output Minimum()(a, b)"),
    "MultiHeadAttention": (
        "input q: float32[3, 4]\n    input v: float32[5, 4]",
        "output MultiHeadAttention(2, 3, value_dim=2)(q, v)",
    ),
    "Multiply": (TWO, "output Multiply()(a, b)"),
    "PReLU": (IMG, "Conv2D(2, 3)\n    PReLU()"),
    "PReLU-shared-axes": (IMG, "PReLU(shared_axes=[1, 2])"),
    "Permute": (SEQ, "Permute([2, 1])"),
    "ReLU": (VEC, "ReLU(max_value=6.0)"),
    "RepeatVector": (VEC, "RepeatVector(3)"),
    "Reshape": (IMG, "Reshape([-1, 3])"),
    "SeparableConv2D": (IMG, "SeparableConv2D(4, 3, depth_multiplier=2)"),
    "SimpleRNN": (SEQ, "SimpleRNN(3)"),
    "Softmax": (SEQ, "Softmax()"),
    "SpatialDropout1D": (SEQ, "SpatialDropout1D(0.2)"),
    "SpatialDropout2D": (IMG, "SpatialDropout2D(0.2)"),
    "Subtract": (TWO, "output Subtract()(a, b)"),
    "TimeDistributed-Dense": (SEQ, "TimeDistributed(Dense(3))"),
    "TimeDistributed-Conv1D": ("input x: float32[3, 5, 2]", "TimeDistributed(Conv1D(2, 2))"),
    "UpSampling1D": (SEQ, "UpSampling1D(2)"),
    "UpSampling2D": (IMG, "UpSampling2D(2)"),
    "ZeroPadding1D": (SEQ, "ZeroPadding1D(1)"),
    "ZeroPadding2D": (IMG, "ZeroPadding2D(1)"),
}


def _model(inputs: str, body: str) -> str:
    return f"model M {{\n    {inputs}\n    {body}\n}}\n"


CASES: dict[str, str] = {name: _model(*spec) for name, spec in _CASES.items()}


def layer_class(case: str) -> str:
    return case.split("-")[0]
