"""VJP rules of Conv and ConvTranspose (1D/2D/3D: strides, dilations, pads, groups).

For a convolution with stride s, dilation d, kernel k (span = (k - 1) * d + 1) and pads
(begin, end) on an axis of input length n and output length m:

- dX is the transposed convolution of dY with the same weights (ConvTranspose, same group,
  strides, dilations and begin pad). Its full output has s * (m - 1) + span positions; the
  begin pad is cropped at the start and whatever lies past n at the end, and when the
  forward conv dropped trailing inputs (n + pads - span not a multiple of s) the missing
  positions come back as output_padding (zeros: those inputs got no gradient).
- dW convolves X with dY, batch and channel axes swapped: X as a (C, N, ...) batch of
  N-channel images, dY as (M, N, ...) filters, the forward stride becoming the dilation
  and the forward dilation the stride; trailing positions past k are sliced off. Groups
  become groups of that convolution (batch-major channels within each group).
- dB sums dY over the batch and spatial axes.

ConvTranspose is the mirror image: dX is a Conv of dY with the same weights, dW the same
kernel-gradient convolution with the roles of X and dY exchanged.
"""

from __future__ import annotations

import numpy as np

from transpiler.emit.train.grad import vjp
from transpiler.emit.train.grad.elementwise import _attr
from transpiler.emit.train.grad.shape import _ints_attr

_CONV_ATTRS = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}
_CONV_TRANSPOSE_ATTRS = _CONV_ATTRS | {"output_padding", "output_shape"}


def check_attrs(node, supported: set[str]) -> None:
    """NotImplementedError naming any attribute the rule does not know."""
    for a in node.attribute:
        if a.name not in supported:
            raise NotImplementedError(f"attribute '{a.name}' is not supported by its gradient")


def static_spatial(g, name: str, what: str) -> list[int]:
    dims = list(g.shape(name)[2:])
    if not all(isinstance(d, int) for d in dims):
        raise NotImplementedError(f"{what} with a dynamic spatial size {tuple(dims)}")
    return dims


def window(g, node, x: str, kernel: list[int]):
    """(strides, dilations, pad begins, pad ends) of a Conv/pooling node, auto_pad resolved
    from the static input lengths."""
    r = len(kernel)
    strides = _ints_attr(node, "strides") or [1] * r
    dilations = _ints_attr(node, "dilations") or [1] * r
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = _ints_attr(node, "pads") or [0] * (2 * r)
        return strides, dilations, pads[:r], pads[r:]
    if auto_pad == "VALID":
        return strides, dilations, [0] * r, [0] * r
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise NotImplementedError(f"attribute auto_pad='{auto_pad}'")
    lengths = static_spatial(g, x, f"auto_pad={auto_pad}")
    begins, ends = [], []
    for n, k, s, d in zip(lengths, kernel, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        begins.append(begin)
        ends.append(end)
    return strides, dilations, begins, ends


def transpose_crop(n_in, n_out, k, s, d, begin):
    """ConvTranspose `pads` end and `output_padding` that give back exactly n_in positions
    from n_out, for a window that starts `begin` before the first input."""
    full = s * (n_out - 1) + (k - 1) * d + 1
    end = full - begin - n_in
    return (end, 0) if end >= 0 else (0, -end)


def spatial_slice(g, t: str, lengths: list[int]) -> str:
    """t[:, :, :lengths[0], :lengths[1], ...]."""
    r = len(lengths)
    return g.op(
        "Slice",
        [t, g.ints([0] * r, "starts"), g.ints(lengths, "ends"), g.ints(range(2, 2 + r))],
    )


def _swap_batch_channels(g, t: str, groups: int, as_filters: bool) -> str:
    """(N, G*C, *sp) -> (C, G*N, *sp), a batch of grouped images (as_filters=False), or
    -> (G*C, N, *sp), grouped filters (as_filters=True)."""
    rank = g.rank(t)
    sp = list(range(3, rank + 1))
    if groups == 1:
        return g.op("Transpose", [t], perm=[1, 0, *range(2, rank)])
    spatial = static_spatial(g, t, "grouped convolution gradient")
    c = g.shape(t)[1]
    if not isinstance(c, int):
        raise NotImplementedError("grouped convolution gradient with a dynamic channel count")
    cg = c // groups
    split = g.op("Reshape", [t, g.ints([0, groups, cg, *spatial], "shape")])
    if as_filters:
        moved = g.op("Transpose", [split], perm=[1, 2, 0, *sp])
        return g.op("Reshape", [moved, g.ints([c, -1, *spatial], "shape")])
    moved = g.op("Transpose", [split], perm=[2, 1, 0, *sp])
    return g.op("Reshape", [moved, g.ints([cg, -1, *spatial], "shape")])


def kernel_grad(g, a, b, groups, strides, dilations, begins, ends, kernel):
    """R[g*Cb + j, i, k] = sum_{n, o} B[n, g*Cb + j, o] * A[n, g*Ca + i, o*dil + k*strd - begin]
    (A zero-padded): the weight gradient of a convolution that read A with `strides`
    (here the stride of o) and `dilations` (here the step of k). A is (N, G*Ca, ...), B is
    (N, G*Cb, ...); the result is (G*Cb, Ca, *kernel)."""
    images = _swap_batch_channels(g, a, groups, as_filters=False)
    filters = _swap_batch_channels(g, b, groups, as_filters=True)
    r = len(kernel)
    out = g.op(
        "Conv",
        [images, filters],
        group=groups,
        strides=list(dilations),
        dilations=list(strides),
        pads=[*begins, *ends],
    )
    a_len = g.shape(a)[2:]
    b_len = g.shape(b)[2:]
    produced = [
        (n + p0 + p1 - (m - 1) * s - 1) // d + 1
        if isinstance(n, int) and isinstance(m, int)
        else None
        for n, m, s, d, p0, p1 in zip(a_len, b_len, strides, dilations, begins, ends)
    ]
    if produced != list(kernel):
        out = spatial_slice(g, out, list(kernel))
    return g.op("Transpose", [out], perm=[1, 0, *range(2, 2 + r)])


MAX_PATCH_KERNEL = 49  # kernel elements up to 7x7 take the patch-matrix route


def patch_kernel_grad(g, x, dy, kernel, strides, dilations, begins, ends, n_out):
    """dW of an ungrouped 2-D Conv as matrix products over a patch tensor: a grouped Conv
    of X with one-hot kernels (one output channel per input channel and kernel offset)
    writes each sample's (C*kh*kw, oh*ow) patch matrix, a batched MatMul multiplies it by
    that sample's dY as (oh*ow, F), and the samples are summed.

    The same sum as `kernel_grad`, but onnxruntime runs these shapes faster than a Conv
    whose "kernel" is the whole (oh, ow) gradient image (113 ms -> 90 ms for mnist_cnn's
    second layer at batch 128 on 2 CPU threads), and the one-hot Conv builds the patches
    in one pass where k*k Slices and a Concat took two: mnist_cnn's training step went
    from 0.87-1.08x PyTorch's speed to 1.21-1.43x (bench/train_speed.py)."""
    c, f = g.shape(x)[1], g.shape(dy)[1]
    taps = kernel[0] * kernel[1]
    if taps == 1 and set(strides) == {1} and not any([*begins, *ends]):
        patches = x  # a 1x1 convolution's patches are its input
    else:
        one_hot = np.zeros((c * taps, 1, *kernel), np.float32)
        for channel in range(c):
            for tap in range(taps):
                one_hot[channel * taps + tap, 0, tap // kernel[1], tap % kernel[1]] = 1.0
        patches = g.op(
            "Conv",
            [x, g.const(one_hot, name="one_hot")],
            group=c,
            kernel_shape=list(kernel),
            strides=list(strides),
            dilations=list(dilations),
            pads=[*begins, *ends],
        )  # (N, C*k*k, oh, ow)
    patches = g.op("Reshape", [patches, g.ints([0, c * taps, -1], "shape")])
    dy_rows = g.op("Reshape", [dy, g.ints([0, f, -1], "shape")])
    dy_rows = g.op("Transpose", [dy_rows], perm=[0, 2, 1])  # (N, oh*ow, F)
    per_sample = g.op("MatMul", [patches, dy_rows])  # (N, C*k*k, F)
    summed = g.op("ReduceSum", [per_sample, g.ints([0], "axes")], keepdims=0)
    dw = g.op("Transpose", [summed], perm=[1, 0])  # (F, C*k*k)
    return g.op("Reshape", [dw, g.ints([f, c, *kernel], "shape")])


def _bias_grad(g, dy: str) -> str:
    return g.op("ReduceSum", [dy, g.ints([0, *range(2, g.rank(dy))])], keepdims=0)


@vjp("Conv")
def _conv(g, node, grads):
    check_attrs(node, _CONV_ATTRS)
    x, w = node.input[0], node.input[1]
    y = node.output[0]
    dy = g.record(grads[0], y)  # (an accumulated gradient may have no shape recorded)
    kernel = [int(v) for v in g.shape(w)[2:]]
    groups = _attr(node, "group", 1)
    strides, dilations, begins, ends = window(g, node, x, kernel)
    n_in = static_spatial(g, x, "Conv gradient")
    n_out = static_spatial(g, y, "Conv gradient")
    crop_end, extra = [], []
    for n, m, k, s, d, b0 in zip(n_in, n_out, kernel, strides, dilations, begins):
        e, p = transpose_crop(n, m, k, s, d, b0)
        crop_end.append(e)
        extra.append(p)
    dx = g.op(
        "ConvTranspose",
        [dy, w],
        group=groups,
        kernel_shape=kernel,
        strides=strides,
        dilations=dilations,
        pads=[*begins, *crop_end],
        output_padding=extra if any(extra) else None,
    )
    channels = g.shape(x)[1]
    if (
        len(kernel) == 2
        and groups == 1
        and isinstance(channels, int)
        and kernel[0] * kernel[1] <= MAX_PATCH_KERNEL
    ):
        dw = patch_kernel_grad(g, x, dy, kernel, strides, dilations, begins, ends, n_out)
    else:
        dw = kernel_grad(g, x, dy, groups, strides, dilations, begins, ends, kernel)
    out = [dx, dw]
    if len(node.input) > 2 and node.input[2]:
        out.append(_bias_grad(g, dy))
    return out


@vjp("ConvTranspose")
def _conv_transpose(g, node, grads):
    check_attrs(node, _CONV_TRANSPOSE_ATTRS)
    if _ints_attr(node, "output_shape"):
        raise NotImplementedError("attribute 'output_shape' (write explicit pads instead)")
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise NotImplementedError(f"attribute auto_pad='{auto_pad}' (write explicit pads)")
    x, w = node.input[0], node.input[1]
    dy = g.record(grads[0], node.output[0])
    kernel = [int(v) for v in g.shape(w)[2:]]
    r = len(kernel)
    groups = _attr(node, "group", 1)
    strides = _ints_attr(node, "strides") or [1] * r
    dilations = _ints_attr(node, "dilations") or [1] * r
    pads = _ints_attr(node, "pads") if auto_pad == "NOTSET" else None
    pads = pads or [0] * (2 * r)
    begins, ends = pads[:r], pads[r:]
    extra = _ints_attr(node, "output_padding") or [0] * r
    n_in = static_spatial(g, x, "ConvTranspose gradient")
    # dX[i] = sum_k dY[i*s + k*d - begin] W[k]: a Conv of dY padded by `begin` (the
    # output_padding positions are part of dY, so the end needs less); n_in windows
    # unless output_padding - end >= stride
    ends_dx = [max(e - p, 0) for e, p in zip(ends, extra)]
    dx = g.op(
        "Conv",
        [dy, w],
        group=groups,
        kernel_shape=kernel,
        strides=strides,
        dilations=dilations,
        pads=[*begins, *ends_dx],
    )
    if any(p - e >= s for p, e, s in zip(extra, ends, strides)):
        dx = spatial_slice(g, dx, n_in)
    dw = kernel_grad(g, dy, x, groups, strides, dilations, begins, ends, kernel)
    out = [dx, dw]
    if len(node.input) > 2 and node.input[2]:
        out.append(_bias_grad(g, dy))
    return out
