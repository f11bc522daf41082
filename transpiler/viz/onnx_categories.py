"""Which colour group each ONNX op type belongs to, and the fill each group is drawn with.

The groups are few and broad (conv, pool, gemm, norm, activation, math, shape, control,
other) so that a glance at a diagram tells convolutions from reshapes from arithmetic.
"""

from __future__ import annotations

# (category, fill colour, op types); first match wins, unknown ops are "other"
_CATEGORIES: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "conv",
        "#a9c7ef",
        frozenset({"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"}),
    ),
    (
        "pool",
        "#b9e2b0",
        frozenset(
            {
                "MaxPool",
                "AveragePool",
                "LpPool",
                "GlobalAveragePool",
                "GlobalMaxPool",
                "GlobalLpPool",
                "MaxRoiPool",
                "MaxUnpool",
                "RoiAlign",
            }
        ),
    ),
    (
        "gemm",
        "#cdbdea",
        frozenset({"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "Einsum", "FusedMatMul"}),
    ),
    (
        "norm",
        "#f7d59c",
        frozenset(
            {
                "BatchNormalization",
                "InstanceNormalization",
                "LayerNormalization",
                "GroupNormalization",
                "RMSNormalization",
                "SkipLayerNormalization",
                "LpNormalization",
                "MeanVarianceNormalization",
                "LRN",
                "Dropout",
            }
        ),
    ),
    (
        "activation",
        "#f3aaa2",
        frozenset(
            {
                "Relu",
                "LeakyRelu",
                "PRelu",
                "Sigmoid",
                "HardSigmoid",
                "Tanh",
                "Softmax",
                "LogSoftmax",
                "Hardmax",
                "Elu",
                "Selu",
                "Celu",
                "Gelu",
                "Softplus",
                "Softsign",
                "ThresholdedRelu",
                "HardSwish",
                "Mish",
                "Swish",
                "Clip",
                "FastGelu",
                "QuickGelu",
                "BiasGelu",
            }
        ),
    ),
    (
        "math",
        "#fff3b0",
        frozenset(
            {
                "Add",
                "Sub",
                "Mul",
                "Div",
                "Pow",
                "Mod",
                "Sqrt",
                "Exp",
                "Log",
                "Abs",
                "Neg",
                "Reciprocal",
                "Floor",
                "Ceil",
                "Round",
                "Sign",
                "Erf",
                "Min",
                "Max",
                "Mean",
                "Sum",
                "And",
                "Or",
                "Xor",
                "Not",
                "Equal",
                "Greater",
                "Less",
                "GreaterOrEqual",
                "LessOrEqual",
                "Where",
                "IsNaN",
                "IsInf",
                "Sin",
                "Cos",
                "Tan",
                "Asin",
                "Acos",
                "Atan",
                "Sinh",
                "Cosh",
                "Asinh",
                "Acosh",
                "Atanh",
                "BitShift",
                "BitwiseAnd",
                "BitwiseOr",
                "BitwiseXor",
                "BitwiseNot",
                "CumSum",
                "ArgMax",
                "ArgMin",
                "TopK",
                "Det",
            }
        ),
    ),
    (
        "shape",
        "#dedede",
        frozenset(
            {
                "Reshape",
                "Flatten",
                "Squeeze",
                "Unsqueeze",
                "Transpose",
                "Concat",
                "Split",
                "Slice",
                "Gather",
                "GatherElements",
                "GatherND",
                "Scatter",
                "ScatterElements",
                "ScatterND",
                "Shape",
                "Size",
                "Expand",
                "Tile",
                "Pad",
                "Identity",
                "Constant",
                "ConstantOfShape",
                "Cast",
                "CastLike",
                "Resize",
                "Upsample",
                "DepthToSpace",
                "SpaceToDepth",
                "Range",
                "NonZero",
                "OneHot",
                "Trilu",
                "Compress",
                "ReverseSequence",
                "EyeLike",
                "CenterCropPad",
                "SplitToSequence",
                "ConcatFromSequence",
                "SequenceConstruct",
                "SequenceAt",
                "SequenceInsert",
                "SequenceErase",
                "SequenceEmpty",
                "SequenceLength",
            }
        ),
    ),
    ("control", "#f1bce0", frozenset({"If", "Loop", "Scan", "SequenceMap"})),
)
OTHER_FILL = "#ffffff"
_FILLS = {name: colour for name, colour, _ in _CATEGORIES}


def category(op_type: str) -> str:
    """The colour group of an op type: conv, pool, gemm, norm, activation, math, shape,
    control or other."""
    for name, _, ops in _CATEGORIES:
        if op_type in ops:
            return name
    return "math" if op_type.startswith("Reduce") else "other"


def fill(op_type: str) -> str:
    """The fill colour of an op type's box."""
    return _FILLS.get(category(op_type), OTHER_FILL)
