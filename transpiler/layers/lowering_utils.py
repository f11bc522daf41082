"""Shared pieces of the ONNX lowering of the convolution, pooling and reshaping layers:
Keras's padding rules as explicit ONNX `pads`, and Keras -> ONNX kernel layouts.

Keras's 'same' padding (TensorFlow's rule) pads `total = max((ceil(n / s) - 1) * s + k - n,
0)` per spatial axis, `total // 2` at the start and the rest (the extra pixel) at the end.
The pads are written out explicitly wherever the input length is known; only a dynamic
length with a stride above 1 falls back to `auto_pad=SAME_UPPER`, which is the same rule
(the extra pixel at the end) evaluated at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from transpiler.graph.types import Dim
from transpiler.layers.shapes import dilated, spatial_axes

if TYPE_CHECKING:  # numpy is not imported by `ktrans check`; the arrays bring their methods
    import numpy as np

# ---------------------------------------------------------------- padding


def same_pad(n: Dim, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int] | None:
    """(begin, end) of Keras's 'same' padding for one axis; None if it depends on a
    dynamic length (stride > 1 with an unknown n)."""
    span = dilated(kernel, dilation)
    if stride == 1:
        total = span - 1
    elif isinstance(n, int):
        out = -(-n // stride)
        total = max((out - 1) * stride + span - n, 0)
    else:
        return None
    return total // 2, total - total // 2


def window_pads(
    lengths: Sequence[Dim],
    kernels: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilations: Sequence[int] | None = None,
) -> dict:
    """ONNX attributes for a sliding window (Conv, MaxPool, AveragePool): `pads` (all begins,
    then all ends) for 'valid', 'same' and 'causal'; `auto_pad=SAME_UPPER` when a 'same'
    pad depends on a dynamic length."""
    dilations = dilations or [1] * len(kernels)
    if padding == "valid":
        pairs = [(0, 0)] * len(kernels)
    elif padding == "causal":
        pairs = [(dilated(k, d) - 1, 0) for k, d in zip(kernels, dilations)]
    elif padding == "same":
        pairs = [same_pad(n, k, s, d) for n, k, s, d in zip(lengths, kernels, strides, dilations)]
        if any(p is None for p in pairs):
            return {"auto_pad": "SAME_UPPER"}
    else:
        raise NotImplementedError(f"padding={padding}")
    return {"pads": onnx_pads(pairs)}


def onnx_pads(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """[(begin, end) per axis] -> ONNX's [begin..., end...]."""
    return [int(b) for b, _ in pairs] + [int(e) for _, e in pairs]


def conv_transpose_pads(
    kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int = 1
) -> tuple[int, int, int]:
    """(pad_begin, pad_end, output_padding) of ONNX ConvTranspose for Keras's rule.

    Keras (backend_utils, the JAX formulation) convolves the stride-dilated input padded by
    (left, right) with the flipped kernel; ONNX starts from the full output
    `(n - 1) * s + span` and removes `span - 1 - left` at the start and `span - 1 - right`
    at the end. A negative end removal (Keras padding beyond the full output) becomes
    ONNX output_padding: positions that only get the bias."""
    span = dilated(kernel, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        left, right = span - 1, span - 1 + extra
    else:
        if output_padding is None:
            pad_len = stride + span - 2
        else:
            pad_len = span + span % 2 - 2 + output_padding
        left = min(pad_len // 2 + pad_len % 2, span - 1)
        right = pad_len - left
    begin, end = span - 1 - left, span - 1 - right
    if end < 0:
        return begin, 0, -end
    return begin, end, 0


# ---------------------------------------------------------------- layouts


def spatial_physical_axes(t, data_format: str) -> list[int]:
    """Where the logical spatial axes of LTensor `t` are stored."""
    return [t.physical_axis(a) for a in spatial_axes(t.rank, data_format)]


def conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras (*k, in // groups, out) -> ONNX Conv (out, in // groups, *k)."""
    r = kernel.ndim - 2
    return kernel.transpose(r + 1, r, *range(r))


def conv_transpose_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras (*k, out, in) -> ONNX ConvTranspose (in, out, *k)."""
    r = kernel.ndim - 2
    return kernel.transpose(r + 1, r, *range(r))


def depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras (*k, in, depth_multiplier) -> ONNX group Conv (in * dm, 1, *k); output channel
    c * dm + m is input channel c's m-th filter, as in Keras."""
    *k, n_in, dm = kernel.shape
    r = len(k)
    flat = kernel.reshape(*k, n_in * dm)
    return flat.transpose(r, *range(r))[:, None]


# pure rearrangements of a weight's values: initial weights can be drawn straight into
# the ONNX layout (see transpiler.emit.onnx.model.LazyWeights)
conv_kernel.rearranges_only = True
conv_transpose_kernel.rearranges_only = True
depthwise_kernel.rearranges_only = True
