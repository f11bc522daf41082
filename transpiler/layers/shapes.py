"""Shape formulas shared by the convolution, pooling and reshaping layers.

Each function takes one axis length (`Dim`: an int, a symbolic name, or None) and returns
the output length. Arithmetic on a symbolic or unknown length gives None (unknown), except
where the formula is the identity (e.g. `padding=same` with stride 1), which keeps the
symbol: the output axis then is exactly the input axis.

The formulas are Keras 3's (`compute_conv_output_shape`, `compute_pooling_output_shape`,
`compute_conv_transpose_output_shape`); they may return a non-positive length, which the
caller reports as an error (see `bad_lengths`).
"""

from __future__ import annotations

from collections.abc import Sequence

from transpiler.graph.types import Dim


def dilated(kernel: int, dilation: int) -> int:
    """The span a dilated kernel covers: (kernel - 1) * dilation + 1."""
    return (kernel - 1) * dilation + 1


def conv_length(n: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """Output length of a convolution: padding 'valid', 'same' or 'causal'."""
    span = dilated(kernel, dilation)
    if padding == "valid":
        if span == 1 and stride == 1:
            return n
        if not isinstance(n, int):
            return None
        return (n - span) // stride + 1
    if stride == 1:
        return n
    if not isinstance(n, int):
        return None
    return (n - 1) // stride + 1


def conv_transpose_length(
    n: Dim,
    kernel: int,
    stride: int,
    padding: str,
    output_padding: int | None = None,
    dilation: int = 1,
) -> Dim:
    """Output length of a transposed convolution (Keras's TF-style padding rule)."""
    span = dilated(kernel, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        if stride == 1 and span == 1 and extra == 0:
            return n
        if not isinstance(n, int):
            return None
        return (n - 1) * stride + span + extra
    if output_padding is None:
        return scaled(n, stride)
    if not isinstance(n, int):
        return None
    return (n - 1) * stride + span % 2 + output_padding


def pool_length(n: Dim, pool: int, stride: int, padding: str) -> Dim:
    """Output length of a pooling window: padding 'valid' or 'same'."""
    if padding == "valid":
        if pool == 1 and stride == 1:
            return n
        if not isinstance(n, int):
            return None
        return (n - pool) // stride + 1
    if stride == 1:
        return n
    if not isinstance(n, int):
        return None
    return (n - 1) // stride + 1


def scaled(n: Dim, factor: int) -> Dim:
    """n * factor (upsampling, transposed convolution with padding 'same')."""
    if factor == 1:
        return n
    return n * factor if isinstance(n, int) else None


def padded(n: Dim, before: int, after: int) -> Dim:
    """n + before + after (zero padding); negative amounts crop."""
    if before + after == 0:
        return n
    return n + before + after if isinstance(n, int) else None


def product(dims: Sequence[Dim]) -> Dim:
    """The number of elements of the given axes; one unknown axis makes it unknown.

    A single axis keeps its symbol (flattening one axis does not change it)."""
    if len(dims) == 1:
        return dims[0]
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        total *= d
    return total


def spatial_axes(rank: int, data_format: str) -> list[int]:
    """Indices of the spatial axes of a (batch, ..., channels) or (batch, channels, ...)
    tensor of the given total rank."""
    if data_format == "channels_first":
        return list(range(2, rank))
    return list(range(1, rank - 1))


def channel_axis(rank: int, data_format: str) -> int:
    return 1 if data_format == "channels_first" else rank - 1


def bad_lengths(lengths: Sequence[Dim]) -> bool:
    """Whether any known output length is zero or negative."""
    return any(isinstance(d, int) and d <= 0 for d in lengths)


def layout(names: Sequence[str], data_format: str) -> str:
    """'height, width, channels' or 'channels, height, width' for error hints."""
    if data_format == "channels_first":
        return ", ".join(["channels", *names])
    return ", ".join([*names, "channels"])


SPATIAL_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def spatial_layout(rank: int, data_format: str) -> str:
    """Layout text for a layer with `rank` spatial axes."""
    return layout(SPATIAL_NAMES[rank], data_format)
